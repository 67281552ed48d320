"""Silences: created, listed and expired in the store (SQLite and PostgreSQL), and matched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from modelfleet.alerts.labels import Matcher
from modelfleet.alerts.silences import (
    Silence,
    create_silence,
    expire_silence,
    list_silences,
    silencing,
)
from modelfleet.errors import InvalidInput, InvalidSilence, NotFound, UnknownSilence
from modelfleet.store import Store

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def add(store: Store, *matchers: str, start: datetime = T0, hours: int = 2) -> Silence:
    with store.begin() as conn:
        return create_silence(
            conn,
            matchers=list(matchers),
            starts_at=start,
            ends_at=start + hours * HOUR,
            created_by="ana",
            comment="maintenance of eu-west",
        )


def listed(store: Store, at: datetime | None = None, *, include_expired: bool = False) -> list[int]:
    with store.begin() as conn:
        return [s.id for s in list_silences(conn, at=at, include_expired=include_expired)]


def test_a_created_silence_is_listed_as_it_was_given(store: Store) -> None:
    created = add(store, 'region="eu-west"', 'model=~"digits|faces"', 'note!="say \\"hi\\""')
    with store.begin() as conn:
        (found,) = list_silences(conn)
    assert found == created
    assert found.matchers == [
        Matcher("region", "=", "eu-west"),
        Matcher("model", "=~", "digits|faces"),
        Matcher("note", "!=", 'say "hi"'),
    ]
    assert (found.starts_at, found.ends_at) == (T0, T0 + 2 * HOUR)
    assert (found.created_by, found.comment) == ("ana", "maintenance of eu-west")


def test_a_silence_is_active_from_its_start_until_its_end_excluded(store: Store) -> None:
    silence = add(store, 'region="eu-west"')
    assert not silence.active(T0 - timedelta(microseconds=1))
    assert silence.active(T0)
    assert silence.active(T0 + 2 * HOUR - timedelta(microseconds=1))
    assert not silence.active(T0 + 2 * HOUR)


def test_listing_at_a_time_leaves_out_expired_silences_unless_asked(store: Store) -> None:
    first = add(store, 'region="eu-west"', hours=1)
    second = add(store, 'region="us-east"', hours=3)
    pending = add(store, 'region="ap-south"', start=T0 + 5 * HOUR)
    assert listed(store) == [first.id, second.id, pending.id]
    assert listed(store, at=T0 + HOUR) == [second.id, pending.id]  # ends_at is excluded
    assert listed(store, at=T0 + HOUR, include_expired=True) == [first.id, second.id, pending.id]
    assert listed(store, at=T0 + 10 * HOUR) == []


def test_expiring_a_silence_ends_it_at_the_given_time(store: Store) -> None:
    silence = add(store, 'region="eu-west"')
    at = T0 + 30 * timedelta(minutes=1)
    with store.begin() as conn:
        expired = expire_silence(conn, silence.id, at)
    assert (expired.starts_at, expired.ends_at) == (T0, at)
    assert not expired.active(at)
    assert listed(store, at=at) == []
    with store.begin() as conn:
        assert list_silences(conn, at=at, include_expired=True) == [expired]


def test_expiring_an_expired_silence_changes_nothing(store: Store) -> None:
    silence = add(store, 'region="eu-west"')
    with store.begin() as conn:
        first = expire_silence(conn, silence.id, T0 + HOUR)
        again = expire_silence(conn, silence.id, T0 + 5 * HOUR)
    assert first == again
    assert again.ends_at == T0 + HOUR


def test_expiring_a_pending_silence_ends_it_before_it_starts(store: Store) -> None:
    silence = add(store, 'region="eu-west"', start=T0 + 5 * HOUR)
    with store.begin() as conn:
        expired = expire_silence(conn, silence.id, T0)
        (stored,) = list_silences(conn)
    assert (expired.starts_at, expired.ends_at) == (T0, T0)
    assert stored == expired
    assert not any(expired.active(T0 + k * HOUR) for k in range(10))


def test_expiring_an_unknown_silence_says_which(store: Store) -> None:
    with store.begin() as conn, pytest.raises(UnknownSilence, match="silence '42' not found"):
        expire_silence(conn, 42, T0)
    assert issubclass(UnknownSilence, NotFound)


@pytest.mark.parametrize(
    ("matchers", "message"),
    [
        ([], "at least one matcher"),
        (["region=eu-west"], "not a matcher"),
        (['model=~"("'], "regular expression is invalid"),
        (['region=~".*"'], "would silence every alert"),
        (['region=""', 'model!="digits"', 'tenant!~"acme"'], "would silence every alert"),
    ],
)
def test_a_silence_that_would_mute_everything_or_cannot_be_read_is_refused(
    store: Store, matchers: list[str], message: str
) -> None:
    with store.begin() as conn, pytest.raises(InvalidSilence, match=message):
        create_silence(
            conn, matchers=matchers, starts_at=T0, ends_at=T0 + HOUR, created_by="a", comment=""
        )
    assert listed(store) == []


def test_a_silence_must_end_after_it_starts_and_after_now(store: Store) -> None:
    def create(starts_at: datetime, ends_at: datetime, now: datetime | None = None) -> Silence:
        with store.begin() as conn:
            return create_silence(
                conn,
                matchers=['region="eu"'],
                starts_at=starts_at,
                ends_at=ends_at,
                created_by="ana",
                comment="",
                now=now,
            )

    with pytest.raises(InvalidSilence, match="ends after it starts"):
        create(T0, T0)
    with pytest.raises(InvalidSilence, match="already passed"):
        create(T0, T0 + HOUR, now=T0 + HOUR)
    with pytest.raises(InvalidSilence, match="timezone-aware"):
        create(datetime(2026, 11, 2, 9, 0), T0 + HOUR)
    later = create(T0 + HOUR, T0 + 2 * HOUR, now=T0)  # created now, for later
    assert listed(store) == [later.id]
    assert issubclass(InvalidSilence, InvalidInput)


@pytest.mark.parametrize(
    ("matcher", "muted", "kept"),
    [
        ('region="eu-west"', {"region": "eu-west"}, {"region": "eu-west-2"}),
        ('region!="eu-west"', {"region": "us-east"}, {"region": "eu-west"}),
        ('region=~"eu-.*"', {"region": "eu-west"}, {"region": "xeu-west"}),
        ('region!~"eu-.*"', {"region": "us-east"}, {"region": "eu-north"}),
    ],
)
def test_each_operator_matches_as_alertmanager_does(
    store: Store, matcher: str, muted: dict[str, str], kept: dict[str, str]
) -> None:
    silence = add(store, 'alertname="HighLatency"', matcher)
    assert silence.silences({"alertname": "HighLatency", **muted})
    assert not silence.silences({"alertname": "HighLatency", **kept})
    assert not silence.silences(muted)  # alertname missing


def test_silencing_names_the_active_silences_that_match(store: Store) -> None:
    eu = add(store, 'region="eu-west"', hours=1)
    digits = add(store, 'model="digits"', hours=4)
    later = add(store, 'region=~"eu-.+"', start=T0 + 2 * HOUR)
    other = add(store, 'region="us-east"')
    with store.begin() as conn:
        everything = list_silences(conn)
    labels = {"alertname": "HighLatency", "region": "eu-west", "model": "digits"}
    assert silencing(everything, labels, T0) == [eu.id, digits.id]
    assert silencing(everything, labels, T0 + HOUR) == [digits.id]
    assert silencing(everything, labels, T0 + 3 * HOUR) == [digits.id, later.id]
    assert silencing(everything, labels, T0 + 6 * HOUR) == []
    assert silencing(everything, {"region": "us-east"}, T0 + HOUR) == [other.id]
