"""The routing tree: Alertmanager's depth-first, first-match search, inheritance and group keys."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from modelfleet.alerts.routing import MAX_GROUP_KEY, RouteMatch, group_key, route
from modelfleet.config.alerting import AlertRoutingSpec


def tree(**spec: Any) -> AlertRoutingSpec:
    return AlertRoutingSpec.model_validate({"receiver": "default", **spec})


TREE = tree(
    group_by=["alertname", "region"],
    routes=[
        {
            "matchers": ['severity="critical"'],
            "receiver": "pager",
            "group_wait": "10s",
            "routes": [
                {"matchers": ['team="db"'], "receiver": "db-pager", "repeat_interval": "1h"},
                {"matchers": ['team=~"web|api"'], "group_by": ["team"]},
            ],
        },
        {"matchers": ['severity="critical"'], "receiver": "never"},
        {"matchers": ['tenant="acme"'], "receiver": "acme-audit", "continue": True},
        {"matchers": ['region!~"eu-.*"'], "receiver": "outside-eu", "group_by": ["..."]},
        {"matchers": ['tenant="acme"'], "receiver": "acme", "group_by": []},
    ],
)


def receivers(labels: dict[str, str]) -> list[str]:
    return [m.receiver for m in route(TREE, labels)]


def test_an_alert_no_child_matches_is_handled_by_the_root() -> None:
    (match,) = route(TREE, {"alertname": "HighLatency", "region": "eu-west"})
    assert match == RouteMatch(
        path=(),
        receiver="default",
        group_by=("alertname", "region"),
        group_wait=timedelta(seconds=30),
        group_interval=timedelta(minutes=5),
        repeat_interval=timedelta(hours=4),
    )


def test_a_tree_without_routes_sends_everything_to_its_receiver() -> None:
    assert [m.receiver for m in route(tree(), {})] == ["default"]
    assert route(tree(), {"alertname": "X"})[0].group_by == ("alertname",)


def test_the_first_matching_child_takes_the_alert_and_later_siblings_are_not_tried() -> None:
    labels = {"alertname": "ModelDown", "severity": "critical", "region": "us-east"}
    assert receivers(labels) == ["pager"]  # not "never", nor "outside-eu" further down


def test_the_deepest_matching_node_handles_the_alert() -> None:
    labels = {"alertname": "ModelDown", "severity": "critical", "team": "db", "region": "eu-1"}
    (match,) = route(TREE, labels)
    assert (match.path, match.receiver) == ((0, 0), "db-pager")


def test_a_child_with_continue_lets_the_search_go_on_to_its_siblings() -> None:
    labels = {"alertname": "QuotaNear", "tenant": "acme", "region": "eu-west"}
    assert [(m.path, m.receiver) for m in route(TREE, labels)] == [
        ((2,), "acme-audit"),
        ((4,), "acme"),
    ]
    outside = {"alertname": "QuotaNear", "tenant": "acme", "region": "us-east"}
    assert receivers(outside) == ["acme-audit", "outside-eu"]  # "acme" is not tried


def test_children_inherit_what_they_leave_unset_from_their_parent() -> None:
    labels = {"alertname": "ModelDown", "severity": "critical", "team": "db", "region": "eu-1"}
    (db,) = route(TREE, labels)
    assert db.group_by == ("alertname", "region")  # the root's, through "pager"
    assert db.group_wait == timedelta(seconds=10)  # "pager"'s
    assert db.group_interval == timedelta(minutes=5)  # the root's
    assert db.repeat_interval == timedelta(hours=1)  # its own
    (web,) = route(TREE, {**labels, "team": "web"})
    assert (web.path, web.receiver, web.group_by) == ((0, 1), "pager", ("team",))
    assert web.group_wait == timedelta(seconds=10)


def test_a_regex_matcher_is_anchored_and_a_missing_label_matches_as_empty() -> None:
    labels = {"alertname": "ModelDown", "severity": "critical", "team": "webapp"}
    assert receivers(labels) == ["pager"]  # web|api does not match "webapp"
    # No region: the empty value does not match eu-.*, so region!~"eu-.*" matches.
    assert receivers({"alertname": "X"}) == ["outside-eu"]


def test_group_by_dots_groups_by_every_label_and_an_empty_list_by_none() -> None:
    labels = {"alertname": "X", "region": "us-east", "model": "digits"}
    (everything,) = route(TREE, labels)
    assert everything.group_by is None
    assert group_key(everything, labels)[1] == labels
    _, nothing = route(TREE, {"alertname": "X", "tenant": "acme", "region": "eu-1"})
    assert nothing.group_by == ()
    assert group_key(nothing, {"alertname": "X", "tenant": "acme"})[1] == {}


def test_group_labels_are_the_grouped_labels_the_alert_carries() -> None:
    (match,) = route(TREE, {"alertname": "X", "region": "eu-1"})
    key, labels = group_key(match, {"alertname": "X", "region": "eu-1", "model": "digits"})
    assert labels == {"alertname": "X", "region": "eu-1"}
    assert key == '/:default:{alertname="X",region="eu-1"}'
    _, partial = group_key(match, {"region": "eu-1"})
    assert partial == {"region": "eu-1"}


def test_alerts_of_one_group_share_a_key_and_other_groups_do_not() -> None:
    def key(labels: dict[str, str]) -> str:
        return group_key(route(TREE, labels)[0], labels)[0]

    a = {"alertname": "HighLatency", "region": "eu-1", "model": "digits"}
    b = {"model": "faces", "region": "eu-1", "alertname": "HighLatency"}
    assert key(a) == key(b)
    keys = {
        key(a),
        key({**a, "region": "eu-2"}),  # another grouped value
        key({**a, "alertname": "Errors"}),
        key({**a, "severity": "critical"}),  # another node and receiver
        key({**a, "severity": "critical", "team": "db"}),
    }
    assert len(keys) == 5


def test_one_alert_routed_to_two_nodes_joins_two_groups() -> None:
    labels = {"alertname": "QuotaNear", "tenant": "acme", "region": "eu-1"}
    first, second = (group_key(m, labels)[0] for m in route(TREE, labels))
    assert first != second


def test_a_key_too_long_for_the_store_carries_a_hash_of_its_labels() -> None:
    (match,) = route(TREE, {"region": "us"})
    long = {"region": "us", **{f"label_{i}": "v" * 40 for i in range(20)}}
    key, labels = group_key(match, long)
    assert len(key) <= MAX_GROUP_KEY
    assert key.startswith("/3:outside-eu:#")
    assert labels == long
    assert group_key(match, {**long, "label_0": "w"})[0] != key


values = st.text(max_size=8)


@given(
    grouped=st.fixed_dictionaries({"alertname": values, "region": values}),
    other=st.dictionaries(st.sampled_from(["model", "tenant", "version"]), values),
    other_too=st.dictionaries(st.sampled_from(["model", "tenant", "version"]), values),
)
def test_a_group_key_depends_only_on_the_grouped_labels(
    grouped: dict[str, str], other: dict[str, str], other_too: dict[str, str]
) -> None:
    (match,) = route(tree(group_by=["alertname", "region"]), grouped)
    assert group_key(match, {**other, **grouped}) == group_key(match, {**grouped, **other_too})
