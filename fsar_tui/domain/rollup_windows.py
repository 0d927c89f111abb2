"""Which rollup rows cover a time window: pure, so it is property-tested.

Rollup rows (revision 0013) come in grains: hours (grain −1, kept for the last
HOUR_HORIZON) and blocks of 2^k whole UTC days aligned on the Unix epoch (grain k,
k = 0…MAX_GRAIN). A window [start, end) is covered by:
- hour rows for its partial days, where they are still kept (a window ending now reads
  today's day row instead of today's hours: nothing has finished after now);
- for whole days, the fewest aligned blocks (greedy, largest first), so 30 days
  cost ~8 block reads instead of 30 day reads — the profile query's cost depends on
  the number of (block × bucket) rows it adds up, not on the number of tasks.
Before the hour horizon a partial first or last day is widened to the whole day:
windows are exact to the hour for recent data and to the day for old data.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

HOUR = -1
MAX_GRAIN = 5  # blocks of up to 32 days
HOUR_HORIZON = timedelta(days=3)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def floor_hour(t: datetime) -> datetime:
    return t.replace(minute=0, second=0, microsecond=0)


def floor_day(t: datetime) -> datetime:
    return t.replace(hour=0, minute=0, second=0, microsecond=0)


def block_start(day: datetime, grain: int) -> datetime:
    n = (day - EPOCH).days
    return EPOCH + timedelta(days=n - n % (1 << grain))


def cover(start: datetime, end: datetime, now: datetime) -> list[tuple[int, datetime]]:
    """(grain, row start) pairs whose rows exactly tile [start', end'): start floored to
    the hour and end raised to the hour (to the day, before now − HOUR_HORIZON)."""
    if end <= start:
        return []
    horizon = floor_day(now - HOUR_HORIZON)
    start = floor_hour(start)
    if start < horizon:
        start = floor_day(start)
    pieces: list[tuple[int, datetime]] = []
    first_day = floor_day(start) if start == floor_day(start) else floor_day(start) + DAY
    last_day = floor_day(end)  # whole days are [first_day, last_day)
    if last_day < end and (last_day < horizon or end >= now):
        # An old partial last day is widened; so is today when the window ends now:
        # today's day row holds exactly what finished since midnight.
        last_day += DAY
    if first_day >= last_day:  # no whole day inside: hours only
        return [(HOUR, t) for t in _hours(start, end)]
    pieces += [(HOUR, t) for t in _hours(start, first_day)]
    day = first_day
    while day < last_day:
        n = (day - EPOCH).days
        grain = MAX_GRAIN
        while grain > 0 and (n % (1 << grain) or day + (1 << grain) * DAY > last_day):
            grain -= 1
        pieces.append((grain, day))
        day += (1 << grain) * DAY
    pieces += [(HOUR, t) for t in _hours(last_day, end)]
    return pieces


def _hours(start: datetime, end: datetime) -> list[datetime]:
    out, t = [], floor_hour(start)
    while t < end:
        out.append(t)
        t += timedelta(hours=1)
    return out


def span(grain: int) -> timedelta:
    return timedelta(hours=1) if grain == HOUR else (1 << grain) * DAY


def as_stored(pieces: list[tuple[int, datetime]], sketched_until: date) -> list[tuple[int, datetime, bool]]:
    """The cover's pieces as the database holds them (revision 0015): 2–32-day blocks that
    end after `sketched_until` (UTC day) are not materialised yet and become their days;
    `sketched` marks pieces that may be read from their sketch (hours never are)."""
    boundary = datetime(sketched_until.year, sketched_until.month, sketched_until.day, tzinfo=UTC)
    out: list[tuple[int, datetime, bool]] = []
    for grain, start in pieces:
        if grain >= 1 and start + span(grain) > boundary:
            out.extend((0, start + i * DAY, start + (i + 1) * DAY <= boundary) for i in range(1 << grain))
        else:
            out.append((grain, start, grain >= 0 and start + span(grain) <= boundary))
    return out
