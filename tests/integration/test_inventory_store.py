"""The number inventory on SQLite and PostgreSQL: the sample, searching, buying, releasing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pigeon.app import accounts as account_use
from pigeon.app import inventory as use
from pigeon.app import numbers as number_use
from pigeon.app.inventory_csv import InventoryFileError, import_csv
from pigeon.domain.errors import ApiError
from pigeon.store import inventory as store
from pigeon.store.engine import Database
from pigeon.testing import FrozenClock


def _search(db: Database, country: str, resource: str, **params: str) -> list[str]:
    with db.read() as conn:
        return [r["phone_number"] for r in use.search(conn, country, resource, params, offset=0, limit=100)]


def _code(fn: Callable[..., Any], *args: Any, **kw: Any) -> int:
    with pytest.raises(ApiError) as info:
        fn(*args, **kw)
    return info.value.code


@pytest.fixture
def seeded(db: Database, clock: FrozenClock) -> Database:
    with db.write() as conn:
        assert use.seed_default(conn, clock.now()) == 63
        assert use.seed_default(conn, clock.now()) == 0  # a second call adds nothing
    return db


def test_the_sample_inventory(seeded: Database) -> None:
    with seeded.read() as conn:
        countries = use.countries(conn)
    assert countries == {
        "CA": ["local"],
        "DE": ["local", "mobile"],
        "GB": ["local", "mobile"],
        "US": ["local", "toll_free"],
    }
    local = _search(seeded, "US", "Local")
    assert len(local) == 34 and local == sorted(local)
    assert len(_search(seeded, "US", "TollFree")) == 8
    assert _search(seeded, "US", "Mobile") == [] and _search(seeded, "US", "Voip") == []


def test_search_filters(seeded: Database) -> None:
    sf = _search(seeded, "US", "Local", AreaCode="415")
    assert len(sf) == 10 and all(n.startswith("+1415") for n in sf)
    assert _search(seeded, "US", "Local", AreaCode="415", Contains="0167") == ["+14155550167"]
    assert _search(seeded, "US", "Local", Contains="+1212%79$") == ["+12125550179"]
    # SmsEnabled: the last number of each area code in the sample is voice-only.
    assert "+14155550190" in sf and "+14155550190" not in _search(seeded, "US", "Local", SmsEnabled="true")
    assert _search(seeded, "US", "Local", AreaCode="415", SmsEnabled="false") == ["+14155550190"]
    assert len(_search(seeded, "US", "Local", InRegion="tx")) == 8
    assert len(_search(seeded, "US", "Local", InLocality="Chicago", InPostalCode="60601")) == 8
    assert _search(seeded, "US", "Local", InLocality="Chicago", InRegion="NY") == []
    # AreaCode applies to North America only; elsewhere it is ignored, as Twilio does.
    assert len(_search(seeded, "GB", "Mobile", AreaCode="415")) == 4
    # Address requirements: GB geographic numbers need one.
    assert len(_search(seeded, "GB", "Local")) == 5
    assert _search(seeded, "GB", "Local", ExcludeAllAddressRequired="true") == []
    assert len(_search(seeded, "DE", "Local", ExcludeForeignAddressRequired="true")) == 3
    assert _search(seeded, "DE", "Local", ExcludeLocalAddressRequired="true") == []
    # Near a point: San Francisco's numbers are within 25 miles of Oakland, New York's are not.
    near = _search(seeded, "US", "Local", NearLatLong="37.8044,-122.2712")
    assert near == sf
    assert _search(seeded, "US", "Local", NearNumber="+14155550101", Distance="5") == sf
    assert _search(seeded, "US", "Local", NearNumber="+19995550101") == []


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"AreaCode": "41"}, 21451),
        ({"Contains": "5"}, 20422),
        ({"Contains": "5$5"}, 20422),
        ({"SmsEnabled": "sometimes"}, 20422),
        ({"NearLatLong": "north"}, 20422),
        ({"NearLatLong": "37,-122", "Distance": "501"}, 20422),
        ({"NearLatLong": "37,-122", "Distance": "\u00b2"}, 20422),  # a digit to isdigit(), not to int(): was a 500
    ],
)
def test_bad_search_parameters(seeded: Database, params: dict[str, str], code: int) -> None:
    with seeded.read() as conn:
        assert _code(use.search, conn, "US", "Local", params, offset=0, limit=10) == code


def test_buying_takes_a_number_out_and_releasing_puts_it_back(seeded: Database, clock: FrozenClock) -> None:
    with seeded.write() as conn:
        account = account_use.create_account(conn, friendly_name="buyer", now=clock.now())["sid"]
        bought = use.buy(conn, account_sid=account, now=clock.now(), phone_number="+1 (212) 555-0102")
        by_area = use.buy(conn, account_sid=account, now=clock.now(), area_code="512")
        gb = use.buy(conn, account_sid=account, now=clock.now(), phone_number="+447700900100", number_type="mobile")
    assert (bought["phone_number"], bought["number_type"], bought["iso_country"]) == ("+12125550102", "local", "US")
    assert by_area["phone_number"] == "+15125550104"  # the first free number in the area code
    assert (gb["number_type"], gb["mms_capable"], gb["sms_capable"]) == ("mobile", False, True)
    assert "+12125550102" not in _search(seeded, "US", "Local", AreaCode="212")

    with seeded.write() as conn:
        codes = [
            _code(use.buy, conn, account_sid=account, now=clock.now(), phone_number="+12125550102"),  # taken
            _code(use.buy, conn, account_sid=account, now=clock.now(), phone_number="+16285550100"),  # never stocked
            _code(use.buy, conn, account_sid=account, now=clock.now(), phone_number="12ab"),
            _code(use.buy, conn, account_sid=account, now=clock.now(), area_code="999"),
            _code(use.buy, conn, account_sid=account, now=clock.now(), area_code="99"),
            _code(use.buy, conn, account_sid=account, now=clock.now()),
            # A toll-free number is not for sale as a Local one.
            _code(
                use.buy, conn, account_sid=account, now=clock.now(), phone_number="+18005550105", number_type="local"
            ),
            _code(
                use.buy,
                conn,
                account_sid=account,
                now=clock.now(),
                phone_number="+18005550105",
                settings={"sms_fallback_url": "https://backup.example.com"},
            ),
        ]
    assert codes == [21422, 21422, 21421, 21452, 21451, 21421, 21422, 21406]
    assert "+18005550105" in _search(seeded, "US", "TollFree")  # refusals left it in stock

    with seeded.write() as conn:
        number_use.release(conn, account, bought["sid"], "/x", clock.now())
    assert "+12125550102" in _search(seeded, "US", "Local", AreaCode="212")
    with seeded.read() as conn:
        back = store.get(conn, "+12125550102")
    assert back is not None and (back["friendly_name"], back["sms_capable"]) == ("(212) 555-0102", True)


def test_a_number_on_an_account_is_never_offered(seeded: Database, clock: FrozenClock) -> None:
    with seeded.write() as conn:
        account = account_use.create_account(conn, friendly_name="operator", now=clock.now())["sid"]
        # An operator provisions a number straight onto an account while it is still in stock.
        number_use.provision(conn, account_sid=account, phone_number="+14155550101", now=clock.now())
        assert _code(use.buy, conn, account_sid=account, now=clock.now(), phone_number="+14155550101") == 21422
    assert "+14155550101" not in _search(seeded, "US", "Local", AreaCode="415")
    with seeded.read() as conn:
        assert "CA" in use.countries(conn)


def test_import_updates_and_skips(db: Database, clock: FrozenClock) -> None:
    with db.write() as conn:
        account = account_use.create_account(conn, friendly_name="operator", now=clock.now())["sid"]
        number_use.provision(conn, account_sid=account, phone_number="+14155550177", now=clock.now())
        first = import_csv(conn, "phone_number,locality\n+14155550100,Here\n+14155550177,There\n", clock.now())
        again = import_csv(conn, "phone_number,locality,sms\n+14155550100,Elsewhere,false\n", clock.now())
    assert (first.added, first.updated, first.skipped_owned) == (["+14155550100"], [], ["+14155550177"])
    assert (again.added, again.updated) == ([], ["+14155550100"])
    with db.read() as conn:
        row = store.get(conn, "+14155550100")
    assert row is not None and (row["locality"], row["sms_capable"]) == ("Elsewhere", False)
    with db.write() as conn, pytest.raises(InventoryFileError):
        import_csv(conn, "phone_number\n+14155550101\nbogus\n", clock.now())
    with db.read() as conn:
        assert store.get(conn, "+14155550101") is None  # a bad file changes nothing
