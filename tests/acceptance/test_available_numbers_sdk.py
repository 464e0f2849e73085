"""AvailablePhoneNumbers search and buying from the inventory, through the real `twilio` SDK;
the operator loads the inventory with `pigeon inventory import`. Every response is checked
against Twilio's OpenAPI description of AvailablePhoneNumbers."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
from twilio.base.exceptions import TwilioException

from tests.acceptance.conftest import Server
from tests.acceptance.spec_check import Spec
from tests.acceptance.support import fresh_number, new_tenant, raises_twilio

pytestmark = pytest.mark.acceptance

V = "/2010-04-01/Accounts/{AccountSid}/AvailablePhoneNumbers"
COUNTRIES, COUNTRY = V + ".json", V + "/{CountryCode}.json"
LOCAL, TOLL_FREE, MOBILE = (
    V + "/{CountryCode}/Local.json",
    V + "/{CountryCode}/TollFree.json",
    V + "/{CountryCode}/Mobile.json",
)

HEADER = "phone_number,iso_country,number_type,locality,region,postal_code,lata,rate_center,latitude,longitude,sms,mms"


def inventory_cli(server: Server, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """`pigeon inventory ...` against the server's store (the module the `pigeon` command mounts)."""
    return subprocess.run(
        [sys.executable, "-m", "pigeon.cli_inventory", *args],
        env=server.env,
        cwd=server.workdir,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def stock_csv(server: Server, tmp_path: Path, lines: list[str]) -> dict[str, list[str]]:
    path = tmp_path / "numbers.csv"
    path.write_text("\n".join([HEADER, *lines]) + "\n")
    done = inventory_cli(server, "import", str(path), "--json")
    assert done.returncode == 0, done.stderr
    report: dict[str, list[str]] = json.loads(done.stdout)
    return report


@pytest.fixture
def spec(shared_server: Server) -> Spec:
    return Spec("twilio_api_v2010_available_phone_numbers.json", shared_server.base_url)


def test_search_and_buy(shared_server: Server, spec: Spec, tmp_path: Path) -> None:
    tenant = new_tenant(shared_server, numbers=0)
    client = spec.client(tenant.sid, tenant.auth_token)
    # Numbers no other test uses: one exchange of the 628 area code, seen through Contains.
    exchange = str(random.choice([x for x in range(200, 1000) if x != 555]))
    a, b, c = (f"+1628{exchange}{line}" for line in ("7867", "0100", "0101"))  # 7867 spells STOP
    report = stock_csv(
        shared_server,
        tmp_path,
        [
            f"{a},US,local,San Francisco,CA,94103,722,SNFC CA,37.77,-122.41,true,true",
            f"{b},US,local,San Francisco,CA,94103,722,SNFC CA,37.77,-122.41,true,false",
            f"{c},US,local,Oakland,CA,94607,722,OKLD CA,37.80,-122.27,false,false",
        ],
    )
    assert sorted(report["added"]) == sorted([a, b, c])

    us = client.available_phone_numbers("US")
    found = us.local.list(area_code=628, contains=f"+1628{exchange}%")
    assert [n.phone_number for n in found] == [b, c, a]
    first = found[0]
    assert first.friendly_name == f"(628) {exchange}-0100"
    assert (first.iso_country, first.region, first.locality, first.postal_code) == (
        "US",
        "CA",
        "San Francisco",
        "94103",
    )
    assert (first.lata, first.rate_center, first.address_requirements, first.beta) == ("722", "SNFC CA", "none", False)
    assert first.capabilities == {"fax": False, "mms": False, "sms": True, "voice": True}
    assert float(first.latitude) == pytest.approx(37.77) and float(first.longitude) == pytest.approx(-122.41)
    assert [n.phone_number for n in us.local.list(contains=f"+1628{exchange}STOP$")] == [a]
    assert [n.phone_number for n in us.local.list(contains=f"+1628{exchange}%", sms_enabled=True)] == [b, a]
    assert [n.phone_number for n in us.local.list(contains=f"+1628{exchange}%", mms_enabled=True)] == [a]
    assert [n.phone_number for n in us.local.list(contains=f"+1628{exchange}%", in_locality="oakland")] == [c]
    assert [n.phone_number for n in us.local.list(contains=f"+1628{exchange}%", page_size=1, limit=2)] == [b, c]
    assert us.toll_free.list(contains=f"+1628{exchange}%") == []
    with pytest.raises(TwilioException):
        us.local.list(contains="5")  # too short: a list page fails as Twilio's does
    assert any(cc.country_code == "US" for cc in client.available_phone_numbers.list())
    country = client.available_phone_numbers("US").fetch()
    assert country.country == "United States"
    assert country.subresource_uris["local"] == f"/2010-04-01/Accounts/{tenant.sid}/AvailablePhoneNumbers/US/Local.json"

    # Buying takes the number out of the inventory and puts it on the account.
    bought = client.incoming_phone_numbers.create(
        phone_number=first.phone_number, sms_url="https://app.example.com/sms"
    )
    assert (bought.phone_number, bought.account_sid, bought.sms_url) == (b, tenant.sid, "https://app.example.com/sms")
    assert bought.capabilities == {"fax": False, "mms": False, "sms": True, "voice": True}
    assert [n.phone_number for n in us.local.list(contains=f"+1628{exchange}%")] == [c, a]
    assert [n.phone_number for n in client.incoming_phone_numbers.list()] == [b]
    raises_twilio(lambda: client.incoming_phone_numbers.create(phone_number=b), 21422, 400)
    other = new_tenant(shared_server, numbers=0).client()
    raises_twilio(lambda: other.incoming_phone_numbers.create(phone_number=b), 21422, 400)
    raises_twilio(lambda: client.incoming_phone_numbers.create(phone_number=fresh_number()), 21422, 400)
    raises_twilio(lambda: client.incoming_phone_numbers.toll_free.create(phone_number=a), 21422, 400)
    assert client.incoming_phone_numbers.local.create(phone_number=a).phone_number == a

    # Releasing puts it back, free for anyone to buy.
    client.incoming_phone_numbers(bought.sid).delete()
    assert b in [n.phone_number for n in us.local.list(contains=f"+1628{exchange}%")]
    assert other.incoming_phone_numbers.create(phone_number=b).phone_number == b

    spec.assert_conforms(
        {
            ("GET", COUNTRIES, 200),
            ("GET", COUNTRY, 200),
            ("GET", LOCAL, 200),
            ("GET", TOLL_FREE, 200),
            ("GET", LOCAL, 400),
        }
    )


def test_buy_by_area_code_and_other_countries(shared_server: Server, spec: Spec, tmp_path: Path) -> None:
    tenant = new_tenant(shared_server, numbers=0)
    client = spec.client(tenant.sid, tenant.auth_token)
    # An area code only this test stocks (the sample inventory has none in 283).
    area = "283"
    lines = [f"+1283555{n:04d},US,local,,,,,,,,true,true" for n in (4102, 4101)]
    mobile = f"+447700900{random.randint(400, 999)}"
    lines.append(f"{mobile},GB,mobile,,,,,,,,true,false")
    stock_csv(shared_server, tmp_path, lines)

    first = client.incoming_phone_numbers.create(area_code=area)
    assert first.phone_number == "+12835554101"  # the first free number in the area code
    assert client.incoming_phone_numbers.create(area_code=area).phone_number == "+12835554102"
    raises_twilio(lambda: client.incoming_phone_numbers.create(area_code=area), 21452, 400)
    raises_twilio(lambda: client.incoming_phone_numbers.create(area_code="28"), 21451, 400)

    gb = client.available_phone_numbers("GB")
    assert mobile in [n.phone_number for n in gb.mobile.list(contains=mobile[-6:] + "$")]
    item = gb.mobile.list(contains=mobile[-6:] + "$")[0]
    assert (item.friendly_name, item.latitude, item.region) == (mobile, None, None)
    # A country numbers are sold in but not stocked: an empty search. One they are not sold
    # in: no such resource, its search as the country itself (Twilio's 20404).
    assert client.available_phone_numbers("FR").local.list() == []
    with pytest.raises(TwilioException) as refused:  # the SDK's list raises this for any error page
        client.available_phone_numbers("ZZ").local.list()
    page = refused.value.args[1]
    assert (page.status_code, json.loads(page.text)["code"]) == (404, 20404)
    raises_twilio(lambda: client.available_phone_numbers("ZZ").fetch(), 20404, 404)
    bought = client.incoming_phone_numbers.mobile.create(phone_number=mobile)
    assert bought.phone_number == mobile
    assert client.incoming_phone_numbers(bought.sid).fetch().type == "mobile"
    assert bought.capabilities == {"fax": False, "mms": False, "sms": True, "voice": True}

    spec.assert_conforms({("GET", MOBILE, 200), ("GET", LOCAL, 200), ("GET", LOCAL, 404), ("GET", COUNTRY, 404)})


def test_inventory_cli(shared_server: Server, tmp_path: Path) -> None:
    bad = inventory_cli(shared_server, "import", "-", stdin="phone_number,sms\n+16285550100,perhaps\nnonsense,true\n")
    assert bad.returncode == 1
    assert "line 2: sms 'perhaps' is not true or false" in bad.stderr
    assert "line 3: phone_number 'nonsense' is not a valid phone number" in bad.stderr
    number = f"+1628555{random.randint(2000, 9999)}"
    good = inventory_cli(shared_server, "import", "-", stdin=f"phone_number,locality\n{number},Nowhere\n")
    assert good.returncode == 0 and "1 added" in good.stdout
    listed = inventory_cli(shared_server, "list", "--country", "us", "--json", "--limit", "100000")
    rows = {r["phone_number"]: r for r in json.loads(listed.stdout)}
    assert rows[number]["locality"] == "Nowhere" and rows[number]["number_type"] == "local"
    assert "+16285550100" not in rows  # the bad file imported nothing


def test_a_bought_number_as_twilio_shows_it(shared_server: Server, tmp_path: Path) -> None:
    """Bought: Twilio's name for it, origin "twilio", the inventory's address requirement; its
    location finds its neighbours; released, it is stocked as it was. A number that cannot take
    SMS refuses SMS settings (21407) and Messaging Services (21715)."""
    tenant = new_tenant(shared_server, numbers=0)
    client = tenant.client()
    exchange = str(random.choice([x for x in range(200, 1000) if x != 555]))
    held, near, voice = (f"+1628{exchange}{line}" for line in ("0200", "0201", "0202"))
    header = HEADER + ",voice,address_requirements"
    place = "San Francisco,CA,94103,722,SNFC CA,37.77,-122.41"
    lines = [f"{held},US,local,{place},true,true,true,local", f"{near},US,local,{place},true,true,true,none"]
    lines.append(f"{voice},US,local,Oakland,CA,94607,722,OKLD CA,37.80,-122.27,false,false,true,none")
    path = tmp_path / "numbers.csv"
    path.write_text("\n".join([header, *lines]) + "\n")
    assert inventory_cli(shared_server, "import", str(path)).returncode == 0

    us = client.available_phone_numbers("US").local
    [before] = us.list(contains=held[1:] + "$")
    bought = client.incoming_phone_numbers.create(phone_number=held)
    assert (bought.friendly_name, bought.origin, bought.address_requirements) == (
        f"(628) {exchange}-0200",
        "twilio",
        "local",
    )
    # Its location, kept with it, answers searches by its number (Twilio: "given a phone number").
    assert [n.phone_number for n in us.list(in_postal_code=held, contains=f"+1628{exchange}%")] == [near]
    assert [n.phone_number for n in us.list(near_number=held, distance=1, contains=f"+1628{exchange}%")] == [near]
    assert [n.phone_number for n in client.incoming_phone_numbers.list(origin="twilio")] == [held]
    assert client.incoming_phone_numbers.list(origin="hosted") == []

    client.incoming_phone_numbers(bought.sid).delete()
    [after] = us.list(contains=held[1:] + "$")
    assert (after.locality, after.postal_code, after.latitude, after.address_requirements) == (
        before.locality,
        before.postal_code,
        before.latitude,
        "local",
    )

    raises_twilio(
        lambda: client.incoming_phone_numbers.create(phone_number=voice, sms_url="https://app.example.com/sms"),
        21407,
        400,
    )
    no_texts = client.incoming_phone_numbers.create(phone_number=voice)
    raises_twilio(lambda: client.incoming_phone_numbers(no_texts.sid).update(sms_method="GET"), 21407, 400)
    service = client.messaging.v1.services.create(friendly_name="pool")
    raises_twilio(lambda: client.messaging.v1.services(service.sid).phone_numbers.create(no_texts.sid), 21715, 400)
    assert client.messaging.v1.services(service.sid).phone_numbers.list() == []
