"""What `--since` and `--until` take: a point in the log an investigator names.

An event position (`120`), a time ago (`90s`, `30m`, `2h`, `7d`, `1w`), a day
(`today`, `yesterday`: its start, 00:00 UTC), `now`, or an ISO 8601 time
(`2026-12-07`, `2026-12-07T14:03:05Z`, `+02:00`; naive means UTC). A dozen lines
of parsing, so no library (dateparser would bring regex tables and locales for
words nobody types here). Pure: `now` is given, so a test fixes it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ledger.errors import InvalidInput

#: seconds in each unit of a time ago
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_AGO = re.compile(r"(\d{1,9})\s*([smhdw])")
EXPECTED = (
    "expected a position (120), a time ago (30m, 2h, 7d), today, yesterday, now"
    " or an ISO 8601 time"
)


@dataclass(frozen=True)
class Bound:
    """One end of a range of the log: a position or a time, never both."""

    position: int | None = None
    moment: datetime | None = None


def parse_time(text: str, what: str = "time") -> datetime:
    """An ISO 8601 time (`2025-01-31`, `...T10:00:00Z`, `+02:00`) in UTC; naive
    means UTC."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        raise InvalidInput(what, text, EXPECTED) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def parse_bound(text: str, what: str, now: datetime) -> Bound:
    """`text` as a position or a UTC time; anything else refused (exit 2)."""
    word = text.strip().lower()
    if word.isdigit():
        return Bound(position=int(word))
    midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    days = {"now": None, "today": midnight, "yesterday": midnight - timedelta(days=1)}
    if word in days:
        return Bound(moment=days[word] or now.astimezone(UTC))
    ago = _AGO.fullmatch(word)
    if ago:
        try:
            back = timedelta(seconds=int(ago[1]) * UNITS[ago[2]])
            return Bound(moment=now.astimezone(UTC) - back)
        except OverflowError:
            raise InvalidInput(what, text, "further back than the calendar") from None
    if not word or word.startswith("-"):
        raise InvalidInput(what, text, EXPECTED)
    return Bound(moment=parse_time(text, what))
