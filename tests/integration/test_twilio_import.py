"""pigeon.app.twilio_import on each store: records as Twilio's API returns them come onto a
Pigeon account; what Pigeon refuses is skipped with its reason and leaves nothing behind."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from pigeon.app.twilio_import import Snapshot, Step, import_snapshot, same_account
from pigeon.domain.errors import ApiError
from pigeon.store import numbers as number_store
from pigeon.store import services as service_store
from pigeon.store.accounts import create_account
from pigeon.store.engine import Database
from pigeon.store.tables import accounts
from pigeon.testing import FrozenClock

NUMBER = {
    "phone_number": "+14155550170",
    "friendly_name": "Main",
    "capabilities": {"sms": True, "mms": False, "voice": True, "fax": False},
    "sms_url": "https://app.example.com/sms",
    "sms_method": "POST",
    "sms_fallback_url": None,
    "status_callback": "",
}
SHORT_CODE = {"short_code": "89898", "friendly_name": "Alerts", "sms_url": "https://app.example.com/sc"}
BROKEN = {"phone_number": "+14155550171", "sms_url": "ftp://nowhere", "capabilities": {"sms": True}}
APPLICATION = {"phone_number": "+14155550172", "sms_application_sid": "AP" + "a" * 32, "capabilities": {"sms": True}}
SERVICE = {"friendly_name": "Pool", "sticky_sender": True, "validity_period": 300, "usecase": "notifications"}


def snapshot(*, alphas: tuple[str, ...] = ("Acme", "no.dots")) -> Snapshot:
    return Snapshot.from_api(
        incoming_numbers=[NUMBER, BROKEN, APPLICATION],
        short_codes=[SHORT_CODE],
        services=[
            (
                SERVICE,
                [{"phone_number": "+14155550170"}, {"phone_number": "+19995550000"}],
                [{"short_code": "89898", "country_code": "US"}],
                [{"alpha_sender": a} for a in alphas],
            )
        ],
    )


def test_records_come_over_and_refused_ones_are_skipped(db: Database, clock: FrozenClock) -> None:
    with db.write() as conn:
        account = str(create_account(conn, friendly_name="into", now=clock.now())["sid"])
        steps = import_snapshot(conn, account, snapshot(), now=clock.now())
    assert steps == [
        Step("number", "+14155550170", "made"),
        Step("number", "+14155550171", "skipped", "SmsUrl 'ftp://nowhere' is not a valid http or https URL."),
        Step("number", "+14155550172", "skipped", steps[2].why),
        Step("number", "89898", "made"),
        Step("service", "Pool", "made"),
        Step("pool number", "Pool: +14155550170", "made"),
        Step("pool number", "Pool: +19995550000", "skipped", "the number is not on this account"),
        Step("pool number", "Pool: 89898", "made"),
        Step("alpha sender", "Pool: Acme", "made"),
        Step("alpha sender", "Pool: no.dots", "skipped", steps[-1].why),
    ]
    assert "AlphaSender 'no.dots' is not valid" in steps[-1].why
    assert steps[2].why.startswith("SmsApplicationSid is not supported")
    with db.read() as conn:
        main = number_store.find_by_number(conn, "+14155550170")
        code = number_store.find_by_number(conn, "89898")
        assert number_store.find_by_number(conn, "+14155550171") is None  # the skipped one left nothing
        [pool] = service_store.list_services(conn, account)
    assert main is not None and code is not None
    assert (main["friendly_name"], main["sms_url"], main["mms_capable"], main["voice_capable"]) == (
        "Main",
        "https://app.example.com/sms",
        False,
        True,
    )
    assert (code["number_type"], code["sid"][:2], code["sms_url"]) == ("short_code", "SC", "https://app.example.com/sc")
    assert (pool["sticky_sender"], pool["validity_period"], pool["usecase"]) == (True, 300, "notifications")
    assert main["messaging_service_sid"] == code["messaging_service_sid"] == pool["sid"]

    # Run again: everything is here already, and nothing changes.
    with db.write() as conn:
        again = import_snapshot(conn, account, snapshot(alphas=("Acme",)), now=clock.now())
    assert {(s.what, s.action) for s in again if s.action != "skipped"} == {
        ("number", "here already"),
        ("service", "here already"),
        ("pool number", "here already"),
        ("alpha sender", "here already"),
    }
    with db.read() as conn:
        assert len(service_store.list_services(conn, account)) == 1


def test_nothing_comes_into_a_closed_account(db: Database, clock: FrozenClock) -> None:
    with db.write() as conn:
        account = str(create_account(conn, friendly_name="gone", now=clock.now())["sid"])
        conn.execute(sa.update(accounts).where(accounts.c.sid == account).values(status="closed"))
    with db.write() as conn, pytest.raises(ApiError) as refused:
        import_snapshot(conn, account, snapshot(), now=clock.now())
    assert refused.value.code == 21479


def test_the_same_account_is_made_once_and_never_overwritten(db: Database, clock: FrozenClock) -> None:
    sid, token = "AC" + "ab" * 16, "0123456789abcdef" * 2
    with db.write() as conn:
        assert same_account(conn, sid=sid, auth_token=token, friendly_name="Acme", now=clock.now()) == Step(
            "account", sid, "made"
        )
        assert same_account(conn, sid=sid, auth_token=token, friendly_name="Acme", now=clock.now()).action == (
            "here already"
        )
        with pytest.raises(ApiError, match="here already with another auth token"):
            same_account(conn, sid=sid, auth_token="f" * 32, friendly_name="Acme", now=clock.now())
        for bad_sid, bad_token in [("AC123", token), (sid, "short"), ("SK" + "0" * 32, token)]:
            with pytest.raises(ApiError, match="is not valid"):
                same_account(conn, sid=bad_sid, auth_token=bad_token, friendly_name="x", now=clock.now())
    with db.read() as conn:
        account = conn.execute(sa.select(accounts).where(accounts.c.sid == sid)).mappings().one()
    assert (account["friendly_name"], account["auth_token"], account["owner_account_sid"]) == ("Acme", token, sid)


def test_services_of_one_name_and_short_code_countries(db: Database, clock: FrozenClock) -> None:
    snap = Snapshot.from_api(
        incoming_numbers=[],
        short_codes=[{"short_code": "89898"}],
        services=[
            ({"friendly_name": "Alerts"}, [], [{"short_code": "89898", "country_code": "CA"}], []),
            ({"friendly_name": "Alerts", "sticky_sender": False}, [], [], [{"alpha_sender": "Other"}]),
        ],
    )
    with db.write() as conn:
        account = str(create_account(conn, friendly_name="into", now=clock.now())["sid"])
        steps = import_snapshot(conn, account, snap, now=clock.now())
        code = number_store.find_by_number(conn, "89898")
    assert [(s.what, s.action) for s in steps] == [
        ("number", "made"),
        ("service", "made"),
        ("pool number", "made"),
        ("service", "skipped"),  # not merged into the first
    ]
    assert "another service of this name" in steps[-1].why
    assert code is not None and code["iso_country"] == "CA"  # from the pool that names it


def test_a_voice_only_number_comes_over_without_twilios_default_sms_methods(db: Database, clock: FrozenClock) -> None:
    """Twilio shows sms_method POST on every number, voice-only ones too: that sets nothing,
    and is not taken for an SMS setting, which such a number refuses (21407)."""
    voice = {
        "phone_number": "+14155550173",
        "capabilities": {"sms": False, "mms": False, "voice": True},
        "sms_url": "",
        "sms_method": "POST",
        "sms_fallback_method": "POST",
    }
    with db.write() as conn:
        account = str(create_account(conn, friendly_name="into", now=clock.now())["sid"])
        source = Snapshot.from_api(incoming_numbers=[voice], short_codes=[], services=[])
        assert import_snapshot(conn, account, source, now=clock.now()) == [Step("number", "+14155550173", "made")]
        made = number_store.find_by_number(conn, "+14155550173")
    assert made is not None and not made["sms_capable"]
