"""Quiet hours: ``quiet_end`` gives the first moment that is not quiet, so that the one release
job of a held notification never fires while it is still quiet (a daily window ending on a
quiet weekend, a weekend ending inside the daily window), in the person's own time zone and
across DST changes. A table of cases, a property test against a minute-by-minute reference,
and the API's answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from hypothesis import given, settings
from hypothesis import strategies as st

from esn.clock import frozen_at
from esn.realtime.models import QuietHours
from esn.realtime.notifications import quiet_end
from tests.conftest import ApiClient, make_user

NIGHT = (22 * 60, 7 * 60)  # 22:00 to 07:00


def hours(start: int, end: int, weekends: bool) -> QuietHours:
    return QuietHours(user_id=1, start_minute=start, end_minute=end, weekends=weekends)


def local(zone: str, *parts: int, fold: int = 0) -> datetime:
    """A local wall time in ``zone``, as the UTC instant it is."""
    return datetime(*parts, tzinfo=ZoneInfo(zone), fold=fold).astimezone(UTC)  # type: ignore[misc]


PARIS = "Europe/Paris"
# March 2026: Fri 27, Sat 28, Sun 29 (DST starts at 02:00 -> 03:00), Mon 30.
# October 2026: Sat 24, Sun 25 (DST ends at 03:00 -> 02:00), Mon 26.
# Another week: Fri 6, Sat 7, Sun 8, Mon 9 February 2026.
CASES = [
    # (name, zone, (start, end, weekends), moment, expected end or None)
    ("Friday 23:00, weekends on", PARIS, (*NIGHT, True),
     local(PARIS, 2026, 2, 6, 23, 0), local(PARIS, 2026, 2, 9, 7, 0)),
    ("Friday 22:00 (the start is quiet)", PARIS, (*NIGHT, True),
     local(PARIS, 2026, 2, 6, 22, 0), local(PARIS, 2026, 2, 9, 7, 0)),
    ("Friday 21:59 is not quiet", PARIS, (*NIGHT, True), local(PARIS, 2026, 2, 6, 21, 59), None),
    ("Saturday noon", PARIS, (*NIGHT, True),
     local(PARIS, 2026, 2, 7, 12, 0), local(PARIS, 2026, 2, 9, 7, 0)),
    ("Sunday 23:30", PARIS, (*NIGHT, True),
     local(PARIS, 2026, 2, 8, 23, 30), local(PARIS, 2026, 2, 9, 7, 0)),
    ("Monday 06:00", PARIS, (*NIGHT, True),
     local(PARIS, 2026, 2, 9, 6, 0), local(PARIS, 2026, 2, 9, 7, 0)),
    ("Monday 06:59:30", PARIS, (*NIGHT, True),
     local(PARIS, 2026, 2, 9, 6, 59, 30), local(PARIS, 2026, 2, 9, 7, 0)),
    ("Monday 07:00 (the end is not quiet)", PARIS, (*NIGHT, True),
     local(PARIS, 2026, 2, 9, 7, 0), None),
    ("weekends off: Friday 23:00 ends on Saturday", PARIS, (*NIGHT, False),
     local(PARIS, 2026, 2, 6, 23, 0), local(PARIS, 2026, 2, 7, 7, 0)),
    ("weekends off: Saturday noon is not quiet", PARIS, (*NIGHT, False),
     local(PARIS, 2026, 2, 7, 12, 0), None),
    ("weekends off: Sunday 23:30", PARIS, (*NIGHT, False),
     local(PARIS, 2026, 2, 8, 23, 30), local(PARIS, 2026, 2, 9, 7, 0)),
    # A DST-change weekend in Paris: the offset is +01:00 on Friday, +02:00 on Monday.
    ("DST starts: Friday 23:00", PARIS, (*NIGHT, True),
     local(PARIS, 2026, 3, 27, 23, 0), datetime(2026, 3, 30, 5, 0, tzinfo=UTC)),
    ("DST starts: Sunday 23:30", PARIS, (*NIGHT, True),
     local(PARIS, 2026, 3, 29, 23, 30), datetime(2026, 3, 30, 5, 0, tzinfo=UTC)),
    ("DST starts, weekends off: 07:00 on Sunday is 05:00 UTC", PARIS, (*NIGHT, False),
     local(PARIS, 2026, 3, 28, 23, 0), datetime(2026, 3, 29, 5, 0, tzinfo=UTC)),
    ("DST starts: an end at 02:30 is skipped, reached at 03:00", PARIS, (22 * 60, 150, False),
     local(PARIS, 2026, 3, 28, 23, 0), datetime(2026, 3, 29, 1, 0, tzinfo=UTC)),
    ("DST ends: Saturday noon", PARIS, (*NIGHT, True),
     local(PARIS, 2026, 10, 24, 12, 0), datetime(2026, 10, 26, 6, 0, tzinfo=UTC)),
    ("DST ends: 02:10 the first time ends at the first 02:30", PARIS, (22 * 60, 150, False),
     local(PARIS, 2026, 10, 25, 2, 10), datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),
    ("DST ends: 02:10 the second time ends at the second 02:30", PARIS, (22 * 60, 150, False),
     local(PARIS, 2026, 10, 25, 2, 10, fold=1), datetime(2026, 10, 25, 1, 30, tzinfo=UTC)),
    # Zones with an offset: the local weekday and clock count, not UTC's.
    ("Kolkata (+05:30): Friday 23:00", "Asia/Kolkata", (*NIGHT, True),
     local("Asia/Kolkata", 2026, 2, 6, 23, 0), datetime(2026, 2, 9, 1, 30, tzinfo=UTC)),
    ("New York: Friday 23:00 is Saturday in UTC", "America/New_York", (*NIGHT, True),
     datetime(2026, 2, 7, 4, 0, tzinfo=UTC), datetime(2026, 2, 9, 12, 0, tzinfo=UTC)),
    ("New York: Friday 20:00 is Saturday in UTC but not quiet", "America/New_York",
     (*NIGHT, True), datetime(2026, 2, 7, 1, 0, tzinfo=UTC), None),
    ("Auckland: Monday 06:00 is Sunday in UTC", "Pacific/Auckland", (*NIGHT, True),
     local("Pacific/Auckland", 2026, 2, 9, 6, 0), datetime(2026, 2, 8, 18, 0, tzinfo=UTC)),
    # No daily window (start == end).
    ("no daily window, weekends: Saturday noon ends at Monday 00:00", PARIS, (0, 0, True),
     local(PARIS, 2026, 2, 7, 12, 0), local(PARIS, 2026, 2, 9, 0, 0)),
    ("no daily window, weekends: Friday 23:00 is not quiet", PARIS, (420, 420, True),
     local(PARIS, 2026, 2, 6, 23, 0), None),
    ("no daily window, no weekends", PARIS, (420, 420, False),
     local(PARIS, 2026, 2, 7, 12, 0), None),
    # A window within one day.
    ("daytime window, weekends: Saturday 13:00 ends at Monday 00:00", PARIS,
     (12 * 60, 14 * 60, True), local(PARIS, 2026, 2, 7, 13, 0), local(PARIS, 2026, 2, 9, 0, 0)),
    ("from midnight, weekends: the weekend runs into the window", PARIS, (0, 7 * 60, True),
     local(PARIS, 2026, 2, 8, 23, 30), local(PARIS, 2026, 2, 9, 7, 0)),
    ("daytime window, Monday 13:00", PARIS, (12 * 60, 14 * 60, True),
     local(PARIS, 2026, 2, 9, 13, 0), local(PARIS, 2026, 2, 9, 14, 0)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("zone", "window", "moment", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_quiet_end(
    zone: str, window: tuple[int, int, bool], moment: datetime, expected: datetime | None
) -> None:
    found = quiet_end(hours(*window), zone, moment)
    assert found == expected
    if found is not None:
        assert found.tzinfo is not None and found.utcoffset() == timedelta(0)
        assert quiet_end(hours(*window), zone, found) is None


def test_no_quiet_hours() -> None:
    assert quiet_end(None, PARIS, datetime(2026, 2, 7, 12, 0, tzinfo=UTC)) is None


def is_quiet(quiet: QuietHours, zone: ZoneInfo, instant: datetime) -> bool:
    """The definition, minute by minute, written independently of the implementation."""
    here = instant.astimezone(zone)
    if quiet.weekends and here.weekday() >= 5:
        return True
    minute, start, end = here.hour * 60 + here.minute, quiet.start_minute, quiet.end_minute
    if start == end:
        return False
    if start < end:
        return start <= minute < end
    return minute >= start or minute < end


ZONES = ["Europe/Paris", "Asia/Kolkata", "Asia/Kathmandu", "America/New_York",
         "Pacific/Auckland", "Australia/Lord_Howe", "UTC"]  # fmt: skip
# Moments near DST changes of those zones (2026), and ordinary ones.
NEAR = [datetime(2026, m, d, tzinfo=UTC) for m, d in
        [(3, 8), (3, 29), (4, 5), (9, 27), (10, 4), (10, 25), (11, 1), (6, 12)]]  # fmt: skip
minutes = st.integers(min_value=0, max_value=24 * 60 - 1)


@settings(max_examples=60, deadline=None)
@given(
    start=minutes,
    end=minutes,
    weekends=st.booleans(),
    zone=st.sampled_from(ZONES),
    near=st.sampled_from(NEAR),
    offset=st.integers(min_value=-4 * 86400, max_value=4 * 86400),
)
def test_quiet_end_is_the_first_moment_that_is_not_quiet(
    start: int, end: int, weekends: bool, zone: str, near: datetime, offset: int
) -> None:
    quiet = hours(start, end, weekends)
    tz = ZoneInfo(zone)
    moment = near + timedelta(seconds=offset)
    found = quiet_end(quiet, zone, moment)
    if not is_quiet(quiet, tz, moment):
        assert found is None
        return
    assert found is not None and found > moment
    assert not is_quiet(quiet, tz, found)
    # Quiet all along until then: each local minute starts on a whole UTC minute (offsets are
    # whole minutes), so checking every UTC minute checks every local one.
    step = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while step < found:
        assert is_quiet(quiet, tz, step), (step, found)
        step += timedelta(minutes=1)


def test_the_api_says_quiet_until_the_end_of_the_weekend_and_the_night(app: Flask) -> None:
    make_user("paris@example.org", time_zone=PARIS)
    client = ApiClient(app)
    assert client.sign_in("paris@example.org").status_code == 200
    with frozen_at(local(PARIS, 2026, 3, 27, 23, 0)):  # Friday night before DST starts
        out = client.put(
            "/api/v1/me/quiet-hours", json={"start": "22:00", "end": "07:00", "weekends": True}
        ).get_json()
    assert out["quiet_now"] is True
    assert out["until"] == "2026-03-30T05:00:00Z"  # Monday 07:00 in Paris (summer time)
