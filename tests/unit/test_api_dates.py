"""Twilio's date format in API responses: the direct text must be `format_datetime`'s."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime

from pigeon.api.schemas import rfc2822


def test_utc_times_read_as_format_datetime_writes_them() -> None:
    rng = random.Random(7)
    start = datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC)
    for _ in range(5000):
        value = start + timedelta(seconds=rng.randrange(40 * 365 * 86400), microseconds=rng.randrange(10**6))
        assert rfc2822(value) == format_datetime(value)
    assert rfc2822(datetime(2023, 8, 24, 5, 1, 45, tzinfo=UTC)) == "Thu, 24 Aug 2023 05:01:45 +0000"


def test_other_zones_and_none_keep_their_meaning() -> None:
    paris = datetime(2026, 3, 29, 1, 30, tzinfo=timezone(timedelta(hours=2)))
    assert rfc2822(paris) == format_datetime(paris) == "Sun, 29 Mar 2026 01:30:00 +0200"
    naive = datetime(2026, 1, 2, 3, 4, 5)
    assert rfc2822(naive) == format_datetime(naive)
    assert rfc2822(None) is None
