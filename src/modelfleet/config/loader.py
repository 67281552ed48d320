"""Reads fleet files into validated resources, keeping the line of every YAML node.

Validation collects every problem before refusing, so a person fixes a file in one pass:
YAML syntax, duplicate keys, unknown kinds and fields, values, and duplicate resources.
Each problem is reported at the node that caused it (`file:line:column: field: message`),
located from PyYAML's node marks rather than guessed from text.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from modelfleet.config.schema import KINDS, Deployment, Model, ModelVersion, Resource, Tenant
from modelfleet.errors import ConfigIssue, FleetConfigError

FieldPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Mark:
    line: int  # 1-based
    column: int  # 1-based


@dataclass(frozen=True)
class Source:
    """Where one document came from, with the position of every value and key in it."""

    file: str
    directory: Path
    start: Mark
    values: Mapping[FieldPath, Mark]
    keys: Mapping[FieldPath, Mark]

    def issue(self, path: FieldPath, message: str, *, at_key: bool = False) -> ConfigIssue:
        """A problem at `path`, located at the deepest part of the path present in the file."""
        mark = self._deepest(path, prefer_key=at_key)
        return ConfigIssue(self.file, mark.line, mark.column, dotted(path), message)

    def _deepest(self, path: FieldPath, *, prefer_key: bool) -> Mark:
        for end in range(len(path), 0, -1):
            prefix = path[:end]
            if prefer_key and end == len(path) and prefix in self.keys:
                return self.keys[prefix]
            if prefix in self.values:
                return self.values[prefix]
        return self.start


@dataclass(frozen=True)
class Document:
    """One validated resource and the place it was declared."""

    resource: Resource
    source: Source

    @property
    def identity(self) -> tuple[str, ...]:
        r = self.resource
        if isinstance(r, ModelVersion):
            return (r.kind, *r.key)
        return (r.kind, r.metadata.name)


@dataclass(frozen=True)
class Fleet:
    """Every resource of one or more fleet files, in the order they were declared."""

    documents: list[Document] = field(default_factory=list)

    def of_kind(self, kind: type[Resource]) -> list[Document]:
        return [d for d in self.documents if isinstance(d.resource, kind)]

    @property
    def tenants(self) -> list[Tenant]:
        return [d.resource for d in self.documents if isinstance(d.resource, Tenant)]

    @property
    def models(self) -> list[Model]:
        return [d.resource for d in self.documents if isinstance(d.resource, Model)]

    @property
    def versions(self) -> list[ModelVersion]:
        return [d.resource for d in self.documents if isinstance(d.resource, ModelVersion)]

    @property
    def deployments(self) -> list[Deployment]:
        return [d.resource for d in self.documents if isinstance(d.resource, Deployment)]


def dotted(path: FieldPath) -> str:
    """`("spec", "features", 0, "dtype")` -> `spec.features[0].dtype`."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def load_fleet(paths: Sequence[str | Path]) -> Fleet:
    """Read and validate fleet files; raise FleetConfigError listing every problem."""
    texts: list[tuple[str, str, Path]] = []
    problems: list[ConfigIssue] = []
    for p in paths:
        path = Path(p)
        try:
            texts.append((str(p), path.read_text(encoding="utf-8"), path.resolve().parent))
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(ConfigIssue(str(p), 1, 1, "", f"cannot read file: {exc}"))
    if problems:
        raise FleetConfigError(problems)
    return _validate(texts)


def load_fleet_text(text: str, file: str = "<fleet>", directory: Path | None = None) -> Fleet:
    """Validate fleet YAML held in memory (`file` names it in errors)."""
    return _validate([(file, text, directory or Path.cwd())])


def _validate(texts: Iterable[tuple[str, str, Path]]) -> Fleet:
    documents: list[Document] = []
    problems: list[ConfigIssue] = []
    for file, text, directory in texts:
        for source, data in _parse(file, text, directory, problems):
            doc = _validate_document(source, data, problems)
            if doc is not None:
                documents.append(doc)
    problems.extend(_duplicates(documents))
    if problems:
        raise FleetConfigError(problems)
    return Fleet(documents)


def _parse(
    file: str, text: str, directory: Path, problems: list[ConfigIssue]
) -> Iterator[tuple[Source, Any]]:
    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problems.append(ConfigIssue(file, line, col, "", f"invalid YAML: {exc.problem}"))
        return
    except yaml.YAMLError as exc:
        problems.append(ConfigIssue(file, 1, 1, "", f"invalid YAML: {exc}"))
        return
    documents = [n for n in nodes if not _is_null(n)]
    if not documents:
        problems.append(ConfigIssue(file, 1, 1, "", "the file declares no resources"))
    for node in documents:
        values: dict[FieldPath, Mark] = {}
        keys: dict[FieldPath, Mark] = {}
        start = _mark(node)
        data = _construct(node, (), values, keys, file, problems)
        yield Source(file, directory, start, values, keys), data


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _mark(node: yaml.Node) -> Mark:
    return Mark(node.start_mark.line + 1, node.start_mark.column + 1)


_SCALARS = yaml.SafeLoader("")


def _construct(
    node: yaml.Node,
    path: FieldPath,
    values: dict[FieldPath, Mark],
    keys: dict[FieldPath, Mark],
    file: str,
    problems: list[ConfigIssue],
) -> Any:
    values[path] = _mark(node)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _SCALARS.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                problems.append(_at(file, key_node, dotted(path), f"key {key!r} must be a string"))
                continue
            if key in out:
                field_name = dotted((*path, key))
                problems.append(_at(file, key_node, field_name, f"duplicate key {key!r}"))
                continue
            keys[(*path, key)] = _mark(key_node)
            out[key] = _construct(value_node, (*path, key), values, keys, file, problems)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [
            _construct(item, (*path, i), values, keys, file, problems)
            for i, item in enumerate(node.value)
        ]
    return _SCALARS.construct_object(node, deep=True)


def _at(file: str, node: yaml.Node, field_name: str, message: str) -> ConfigIssue:
    m = _mark(node)
    return ConfigIssue(file, m.line, m.column, field_name, message)


def _validate_document(source: Source, data: Any, problems: list[ConfigIssue]) -> Document | None:
    if not isinstance(data, dict):
        problems.append(source.issue((), "a resource must be a mapping with kind, metadata, spec"))
        return None
    kind = data.get("kind")
    if kind is None:
        problems.append(source.issue(("kind",), "field required"))
        return None
    cls = KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        known = ", ".join(KINDS)
        problems.append(source.issue(("kind",), f"unknown kind {kind!r}; expected one of {known}"))
        return None
    try:
        resource = cls.model_validate(data)
    except ValidationError as exc:
        problems.extend(_issues(source, data, exc))
        return None
    return Document(resource, source)


def _issues(source: Source, data: Any, exc: ValidationError) -> list[ConfigIssue]:
    """Translate pydantic errors to located issues.

    Errors from a union (e.g. `tenants: all | [names]`) carry the member's name in their
    location; those parts are dropped, and of one union's errors only the deepest are kept
    (an error inside the list beats "is not 'all'"), merged with "or" when equally deep.
    """
    resolved: list[tuple[FieldPath, bool, str, str]] = []
    for err in exc.errors(include_url=False):
        path, via_union = _resolve(data, err["loc"])
        resolved.append((path, via_union, err["type"], _message(err)))

    kept: dict[FieldPath, list[str]] = {}
    at_key: set[FieldPath] = set()
    at_parent_key: set[FieldPath] = set()
    union_paths = [p for p, via, _, _ in resolved if via]
    for path, via_union, kind, message in resolved:
        if via_union and any(len(o) > len(path) and o[: len(path)] == path for o in union_paths):
            continue
        kept.setdefault(path, [])
        if message not in kept[path]:
            kept[path].append(message)
        if kind == "extra_forbidden":
            at_key.add(path)
        if kind == "missing":
            at_parent_key.add(path)
    return [
        _located(source, path, _either(messages), path in at_key, path in at_parent_key)
        for path, messages in kept.items()
    ]


def _located(
    source: Source, path: FieldPath, message: str, at_key: bool, at_parent_key: bool
) -> ConfigIssue:
    """Unknown fields point at their key; missing ones at the key of the mapping lacking them."""
    if at_parent_key and path[:-1] in source.keys:
        mark = source.keys[path[:-1]]
        return ConfigIssue(source.file, mark.line, mark.column, dotted(path), message)
    return source.issue(path, message, at_key=at_key)


def _either(messages: list[str]) -> str:
    """Join the alternatives of a union: "Input should be 'all' or a valid list"."""
    first, *rest = messages
    prefix = "Input should be "
    if first.startswith(prefix):
        rest = [m.removeprefix(prefix) for m in rest]
    return " or ".join([first, *rest])


def _resolve(data: Any, loc: Sequence[str | int]) -> tuple[FieldPath, bool]:
    path: list[str | int] = []
    via_union = False
    current = data
    for part in loc:
        if _holds(current, part):
            current = current[part]
            path.append(part)
        elif isinstance(current, dict) and isinstance(part, str) and part.isidentifier():
            path.append(part)  # a missing or unknown field: report at its parent
            current = None
        else:
            via_union = True  # a union member's tag, not part of the document
    return tuple(path), via_union


def _holds(container: Any, part: str | int) -> bool:
    if isinstance(container, dict):
        return part in container
    return isinstance(container, list) and isinstance(part, int) and 0 <= part < len(container)


def _message(err: Mapping[str, Any]) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown field"
    if err["type"] == "missing":
        return "field required"
    if err["type"] == "string_pattern_mismatch":
        return (
            "must be 1-63 lowercase letters, digits, '.', '_' or '-', "
            "starting and ending with a letter or digit"
        )
    msg = str(err["msg"])
    if err["type"] == "string_type" and isinstance(err.get("input"), bool):
        # YAML 1.1 reads yes/no/on/off/true/false unquoted as booleans
        msg += f"; YAML read this as {str(err['input']).lower()}: put it in quotes"
    return msg.removeprefix("Value error, ")


def _duplicates(documents: list[Document]) -> list[ConfigIssue]:
    seen: dict[tuple[str, ...], Document] = {}
    problems: list[ConfigIssue] = []
    for doc in documents:
        first = seen.setdefault(doc.identity, doc)
        if first is not doc:
            where = f"{first.source.file}:{first.source.values[('metadata', 'name')].line}"
            problems.append(
                doc.source.issue(
                    ("metadata", "name"),
                    f"{doc.resource.kind} {'/'.join(doc.identity[1:])!r} is already declared at {where}",
                )
            )
    return problems
