"""Matchers: how routes, silences, inhibition rules and runbooks select alerts by their labels.

As Prometheus Alertmanager writes them: `name="v"`, `!=`, `=~`, `!~`. Regular expressions are
anchored, and a missing label matches as the empty string. They are part of the fleet.yaml
language, so they live here, where every package that reads fleet.yaml can use them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

Labels = Mapping[str, str]
Op = Literal["=", "!=", "=~", "!~"]

_MATCHER = re.compile(r'^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*$')


@dataclass(frozen=True)
class Matcher:
    label: str
    op: Op
    value: str

    @classmethod
    def parse(cls, text: str) -> Matcher:
        """`severity="critical"` and the like; raises ValueError on anything else."""
        match = _MATCHER.match(text)
        if match is None:
            raise ValueError(f'not a matcher (label="value", !=, =~, !~): {text!r}')
        value = match[3].replace('\\"', '"').replace("\\\\", "\\")
        return cls(match[1], match[2], value)  # type: ignore[arg-type]

    def matches(self, labels: Labels) -> bool:
        actual = labels.get(self.label, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        found = re.fullmatch(self.value, actual) is not None
        return found if self.op == "=~" else not found

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.label}{self.op}"{escaped}"'


def parse_matchers(texts: Iterable[str]) -> list[Matcher]:
    return [Matcher.parse(t) for t in texts]


def matches_all(matchers: Sequence[Matcher], labels: Labels) -> bool:
    """Whether every matcher matches (an empty list matches everything)."""
    return all(m.matches(labels) for m in matchers)
