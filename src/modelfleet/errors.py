"""The exceptions modelfleet raises, as one tree.

    ModelfleetError
    ├── InvalidInput                 a person gave something wrong: exit code 2, HTTP 4xx
    │   ├── FleetConfigError         fleet.yaml refused, with every error's file:line:column
    │   ├── NotFound                 no such tenant, model, version, deployment or key
    │   └── ImmutableVersion         a registered version asked to change its artifact
    └── StoreError                   the store could not be reached or migrated: exit code 1

The CLI and the HTTP layer each turn these into exit codes and status codes in one place.
"""

from __future__ import annotations

from dataclasses import dataclass


class ModelfleetError(Exception):
    """Base of every error modelfleet raises on purpose."""


class InvalidInput(ModelfleetError):
    """Something a person supplied is wrong; retrying the same input fails the same way."""


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a fleet file, located at the YAML node that caused it."""

    file: str
    line: int
    column: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


class FleetConfigError(InvalidInput):
    """A fleet file was refused whole; `issues` holds every problem found."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = sorted(issues, key=lambda i: (i.file, i.line, i.column, i.field))
        super().__init__("\n".join(str(i) for i in self.issues))


class NotFound(InvalidInput):
    """A named tenant, model, version, deployment or key does not exist."""

    def __init__(self, kind: str, name: str) -> None:
        self.kind = kind
        self.name = name
        super().__init__(f"{kind} {name!r} not found")


class ImmutableVersion(InvalidInput):
    """A registered model version may not change what it serves."""


class StoreError(ModelfleetError):
    """The store could not be opened, reached or migrated."""
