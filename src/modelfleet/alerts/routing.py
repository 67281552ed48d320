"""The routing tree: which receivers an alert goes to, grouped how, on which timers.

Prometheus Alertmanager's semantics (`dispatch/route.go`): every alert enters the root, which
matches everything. At each node the children are tried in order, depth first; the first
child that matches takes the alert and the search among its siblings stops, unless that child
says `continue: true`. A node none of whose children match handles the alert itself. A child
inherits whatever it leaves unset (receiver, group_by, group_wait, group_interval,
repeat_interval) from its parent, and `group_by: ['...']` groups by every label.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta

from modelfleet.alerts.labels import Labels, Matcher, matches_all
from modelfleet.config.alerting import AlertRoutingSpec, Route

GROUP_BY_ALL = "..."
# The `alert_groups.key` column's width: longer keys carry a hash of their labels instead.
MAX_GROUP_KEY = 600


@dataclass(frozen=True)
class RouteMatch:
    """A node that handles an alert, with the settings it has after inheritance.

    path: the child indexes from the root to the node; `()` is the root.
    group_by: the label names alerts are grouped by, sorted; None groups by every label.
    """

    path: tuple[int, ...]
    receiver: str
    group_by: tuple[str, ...] | None
    group_wait: timedelta
    group_interval: timedelta
    repeat_interval: timedelta


def route(tree: AlertRoutingSpec, labels: Labels) -> list[RouteMatch]:
    """The nodes that handle an alert with `labels`, in tree order (at least the root)."""
    root = RouteMatch(
        path=(),
        receiver=tree.receiver,
        group_by=_group_by(tree.group_by),
        group_wait=tree.group_wait,
        group_interval=tree.group_interval,
        repeat_interval=tree.repeat_interval,
    )
    return _match(root, tree.routes, labels)


def _match(node: RouteMatch, children: Sequence[Route], labels: Labels) -> list[RouteMatch]:
    found: list[RouteMatch] = []
    for index, child in enumerate(children):
        if not matches_all([Matcher.parse(m) for m in child.matchers], labels):
            continue
        found.extend(_match(_inherit(node, index, child), child.routes, labels))
        if not child.continue_:
            break
    return found or [node]


def _inherit(parent: RouteMatch, index: int, child: Route) -> RouteMatch:
    return replace(
        parent,
        path=(*parent.path, index),
        receiver=child.receiver if child.receiver is not None else parent.receiver,
        group_by=_group_by(child.group_by) if child.group_by is not None else parent.group_by,
        group_wait=child.group_wait if child.group_wait is not None else parent.group_wait,
        group_interval=(
            child.group_interval if child.group_interval is not None else parent.group_interval
        ),
        repeat_interval=(
            child.repeat_interval if child.repeat_interval is not None else parent.repeat_interval
        ),
    )


def _group_by(names: Sequence[str]) -> tuple[str, ...] | None:
    # Alertmanager admits `...` only alone; fleet.yaml is not stricter, so `...` anywhere wins.
    return None if GROUP_BY_ALL in names else tuple(sorted(set(names)))


def group_labels(match: RouteMatch, labels: Labels) -> dict[str, str]:
    """The labels an alert's group is named by: its `group_by` labels that it carries."""
    if match.group_by is None:
        return dict(sorted(labels.items()))
    return {name: labels[name] for name in match.group_by if name in labels}


def group_key(match: RouteMatch, labels: Labels) -> tuple[str, dict[str, str]]:
    """A stable key for the aggregation group an alert joins at `match`, and its group labels.

    The key reads `/0/1:receiver:{label="value",...}` (route path, receiver, grouped labels):
    equal for every alert of one group, whatever the order of their labels, and different for
    different nodes, receivers or grouped values. Past `MAX_GROUP_KEY` characters the labels
    part is replaced by a hash of it, so the key still fits the store.
    """
    grouped = group_labels(match, labels)
    path = "/" + "/".join(str(i) for i in match.path)
    rendered = "{" + ",".join(f"{k}={_quote(v)}" for k, v in grouped.items()) + "}"
    key = f"{path}:{match.receiver}:{rendered}"
    if len(key) > MAX_GROUP_KEY:
        digest = hashlib.sha256(rendered.encode()).hexdigest()
        key = f"{path}:{match.receiver}:#{digest}"
    return key, grouped


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
