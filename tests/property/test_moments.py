"""`--since`/`--until` bounds (`ledger.moments`): what each spelling means, for any
clock, and that nothing else gets through."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.errors import InvalidInput
from ledger.moments import UNITS, parse_bound

NOWS = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.just(UTC),
)


@given(NOWS, st.integers(min_value=0, max_value=10_000), st.sampled_from(sorted(UNITS)))
def test_a_time_ago_is_that_long_before_now(now, amount, unit):
    at = parse_bound(f"{amount}{unit}", "--since", now)
    assert at.position is None
    assert at.moment == now - timedelta(seconds=amount * UNITS[unit])


@given(NOWS)
def test_today_and_yesterday_are_the_starts_of_those_days(now):
    today = parse_bound("today", "--since", now).moment
    yesterday = parse_bound("Yesterday", "--since", now).moment
    assert today is not None
    assert yesterday is not None
    assert today <= now < today + timedelta(days=1)
    assert (today.hour, today.minute, today.second, today.microsecond) == (0, 0, 0, 0)
    assert today - yesterday == timedelta(days=1)
    assert parse_bound("now", "--until", now).moment == now


@given(NOWS, st.integers(min_value=0, max_value=10**12))
def test_digits_are_a_position_whatever_the_clock(now, position):
    at = parse_bound(f" {position} ", "--until", now)
    assert (at.position, at.moment) == (position, None)


@given(NOWS, st.datetimes(timezones=st.just(UTC)))
def test_an_iso_time_is_itself_in_utc(now, moment):
    assert parse_bound(moment.isoformat(), "--since", now).moment == moment
    naive = moment.replace(tzinfo=None).isoformat()
    assert parse_bound(naive, "--since", now).moment == moment  # naive is UTC


@given(
    NOWS,
    st.text(min_size=1, max_size=12).filter(
        lambda t: not t.strip().isdigit() and t.strip().lower() not in {"now", "today"}
    ),
)
def test_anything_else_is_refused_or_an_iso_time(now, text):
    """Whatever is typed, the answer is a UTC time or a refusal: never a crash."""
    try:
        at = parse_bound(text, "--since", now)
    except InvalidInput as refused:
        assert "--since" in str(refused)  # noqa: PT017 - any text: try, not raises
        return
    assert at.moment is not None
    assert at.moment.tzinfo is UTC


@pytest.mark.parametrize("text", ["-5", "2 fortnights", "", "h2", "9999999999w"])
def test_these_are_refused(text):
    with pytest.raises(InvalidInput, match="--until"):
        parse_bound(text, "--until", datetime(2026, 12, 7, tzinfo=UTC))
