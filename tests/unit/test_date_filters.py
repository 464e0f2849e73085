"""The date filters of the 2010-04-01 lists (pigeon.api.query.date_filter): `DateSent` on
Messages and `DateCreated` on Media read alike, a day, on or before, on or after."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pigeon.api.query import DateFilter, date_filter
from pigeon.domain.errors import ApiError

DAY = datetime(2024, 1, 2, tzinfo=UTC)
LAST = datetime(2024, 1, 2, 23, 59, 59, 999999, tzinfo=UTC)


def test_nothing_asked_is_no_bound() -> None:
    assert date_filter({"To": "+14155552671"}, "DateCreated") == DateFilter()
    assert date_filter({"DateCreated": ""}, "DateCreated") == DateFilter()


@pytest.mark.parametrize("raw", ["2024-01-02", "2024-01-02T00:00:00Z", "2024-01-02T15:30:00Z"])
def test_the_name_alone_is_the_whole_gmt_day(raw: str) -> None:
    assert date_filter({"DateCreated": raw}, "DateCreated").on == (DAY, datetime(2024, 1, 3, tzinfo=UTC))


def test_before_and_after_are_inclusive_and_kept_in_order_for_the_paging_uris() -> None:
    params = {"DateSent<": "2024-01-02T00:00:00Z", "DateSent>": "2024-01-02", "DateSent": "2024-01-02"}
    f = date_filter(params, "DateSent")
    assert (f.after, f.before) == (DAY, LAST)
    assert f.kept == (("DateSent", "2024-01-02"), ("DateSent>", "2024-01-02"), ("DateSent<", "2024-01-02T00:00:00Z"))
    assert date_filter({"DateSent<": "2024-01-02T11:00:00Z"}, "DateSent").before == datetime(2024, 1, 2, 11, tzinfo=UTC)


@pytest.mark.parametrize("name", ["DateCreated", "DateCreated<", "DateCreated>"])
def test_a_value_that_is_no_date_is_refused_with_20422_naming_the_parameter(name: str) -> None:
    with pytest.raises(ApiError) as raised:
        date_filter({name: "garbage"}, "DateCreated")
    assert raised.value.code == 20422 and raised.value.message.startswith(f"{name}:")
