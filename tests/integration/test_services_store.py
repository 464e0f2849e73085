"""Messaging Services and their sender pools, through the use cases, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Connection

from pigeon.app import accounts as account_use
from pigeon.app import numbers as number_use
from pigeon.app import services as use
from pigeon.app import short_codes
from pigeon.domain.errors import ApiError
from pigeon.domain.sids import Prefix, is_sid, new_sid
from pigeon.store import numbers as number_store
from pigeon.store import services as store
from pigeon.store.engine import Database
from pigeon.testing import FrozenClock
from tests.integration.lock_waits import while_held

PATH = "/v1/Services/x"


def _account(db: Database, clock: FrozenClock) -> str:
    with db.write() as conn:
        return str(account_use.create_account(conn, friendly_name="services", now=clock.now())["sid"])


def _number(db: Database, clock: FrozenClock, account: str, number: str, **kw: Any) -> dict[str, Any]:
    clock.advance(1)  # pools list in the order numbers joined the account
    with db.write() as conn:
        return number_use.provision(conn, account_sid=account, phone_number=number, now=clock.now(), **kw)


def _code(fn: Any, *args: Any, **kw: Any) -> int:
    with pytest.raises(ApiError) as info:
        fn(*args, **kw)
    return info.value.code


def test_service_crud(db: Database, clock: FrozenClock) -> None:
    account = _account(db, clock)
    with db.write() as conn:
        created = use.create(
            conn,
            account,
            {
                "FriendlyName": "Alerts",
                "InboundRequestUrl": "https://app.example.com/in",
                "InboundMethod": "get",
                "StickySender": "false",
                "ValidityPeriod": "600",
                "Usecase": "notifications",
                "OptOutReply": "You are out.",
                "Unknown": "ignored",
            },
            clock.now(),
        )
    assert is_sid(created["sid"], Prefix.SERVICE)
    assert (created["friendly_name"], created["inbound_method"], created["sticky_sender"]) == ("Alerts", "GET", False)
    assert (created["validity_period"], created["usecase"], created["opt_out_reply"]) == (
        600,
        "notifications",
        "You are out.",
    )
    # Defaults as Twilio's: POST, sticky sender and smart encoding on, 36000 s, undeclared.
    assert (created["fallback_method"], created["smart_encoding"], created["scan_message_content"]) == (
        "POST",
        True,
        "inherit",
    )

    clock.advance(5)
    with db.write() as conn:
        second = use.create(conn, account, {"FriendlyName": "Second"}, clock.now())
        updated = use.update(
            conn, account, created["sid"], PATH, {"FriendlyName": "Renamed", "InboundRequestUrl": ""}, clock.now()
        )
    assert (updated["friendly_name"], updated["inbound_request_url"]) == ("Renamed", None)
    assert updated["date_updated"] > created["date_updated"]
    assert (second["validity_period"], second["usecase"], second["sticky_sender"]) == (36000, "undeclared", True)

    with db.read() as conn:
        listed = use.list_for_account(conn, account, offset=0, limit=10)
        assert [s["sid"] for s in listed] == [created["sid"], second["sid"]]
        assert [s["sid"] for s in use.list_for_account(conn, account, offset=1, limit=10)] == [second["sid"]]
        # Another account sees none of them.
        other = account_use.create_account(conn, friendly_name="other", now=clock.now())["sid"]
        assert use.list_for_account(conn, other, offset=0, limit=10) == []
        assert _code(use.fetch, conn, other, created["sid"], PATH) == 20404

    with db.write() as conn:
        use.delete(conn, account, created["sid"], PATH, clock.now())
    with db.read() as conn:
        assert _code(use.fetch, conn, account, created["sid"], PATH) == 20404
        assert _code(use.fetch, conn, account, "not-a-sid", PATH) == 20404


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({}, 20001),
        ({"FriendlyName": "  "}, 20001),
        ({"FriendlyName": "x" * 65}, 20422),
        ({"FriendlyName": "ok", "ValidityPeriod": "0"}, 21624),
        ({"FriendlyName": "ok", "ValidityPeriod": "36001"}, 21624),
        ({"FriendlyName": "ok", "ValidityPeriod": "soon"}, 21624),
        ({"FriendlyName": "ok", "InboundMethod": "PUT"}, 21403),
        ({"FriendlyName": "ok", "FallbackMethod": "delete"}, 21403),
        ({"FriendlyName": "ok", "InboundRequestUrl": "ftp://x.example.com"}, 21402),
        ({"FriendlyName": "ok", "StatusCallback": "not a url"}, 21402),
        ({"FriendlyName": "ok", "StickySender": "maybe"}, 20422),
        ({"FriendlyName": "ok", "Usecase": "spam"}, 21713),
        ({"FriendlyName": "ok", "ScanMessageContent": "always"}, 20422),
    ],
)
def test_bad_service_parameters_change_nothing(
    db: Database, clock: FrozenClock, params: dict[str, str], code: int
) -> None:
    account = _account(db, clock)
    with db.write() as conn:
        assert _code(use.create, conn, account, params, clock.now()) == code
    with db.read() as conn:
        assert use.list_for_account(conn, account, offset=0, limit=10) == []


def test_sender_pool_rules(db: Database, clock: FrozenClock) -> None:
    account = _account(db, clock)
    number = _number(db, clock, account, "+14155550100")
    voice_only = _number(db, clock, account, "+14155550101", sms=False)
    short = _number(db, clock, account, "12345", iso_country="US")
    assert is_sid(number["sid"], Prefix.PHONE_NUMBER) and is_sid(short["sid"], Prefix.SHORT_CODE)
    now = clock.now()
    with db.write() as conn:
        one = use.create(conn, account, {"FriendlyName": "One"}, now)["sid"]
        two = use.create(conn, account, {"FriendlyName": "Two"}, now)["sid"]
        added = use.add_number(conn, account, one, number["sid"], short_code=False, path=PATH, now=now)
        use.add_number(conn, account, one, voice_only["sid"], short_code=False, path=PATH, now=now)
        use.add_number(conn, account, one, short["sid"], short_code=True, path=PATH, now=now)
        alpha = use.add_alpha_sender(conn, account, one, "Pigeon Co", now)
    assert added["messaging_service_sid"] == one and is_sid(alpha["sid"], Prefix.ALPHA_SENDER)

    with db.read() as conn:
        pool = use.list_numbers(conn, account, one, short_codes=False, offset=0, limit=10)
        assert [n["phone_number"] for n in pool] == ["+14155550100", "+14155550101"]
        codes = use.list_numbers(conn, account, one, short_codes=True, offset=0, limit=10)
        assert [c["phone_number"] for c in codes] == ["12345"]
        assert [a["alpha_sender"] for a in use.list_alpha_senders(conn, account, one, offset=0, limit=10)] == [
            "Pigeon Co"
        ]
        # What sending uses: the SMS-capable numbers and short codes, unchanged.
        assert sorted(n["phone_number"] for n in store.sender_numbers(conn, one)) == ["+14155550100", "12345"]
        assert use.fetch_number(conn, account, one, short["sid"], short_code=True, path=PATH)["sid"] == short["sid"]
        assert _code(use.fetch_number, conn, account, two, number["sid"], short_code=False, path=PATH) == 20404
        # A PN sid is not a short code, and an SC sid is not a phone number.
        assert _code(use.fetch_number, conn, account, one, short["sid"], short_code=False, path=PATH) == 20404
        assert _code(use.fetch_alpha_sender, conn, account, two, alpha["sid"], PATH) == 20404

    with db.write() as conn:
        refusals = {
            "same service": _code(
                use.add_number, conn, account, one, number["sid"], short_code=False, path=PATH, now=now
            ),
            "other service": _code(
                use.add_number, conn, account, two, number["sid"], short_code=False, path=PATH, now=now
            ),
            "not in pool": _code(
                use.remove_number, conn, account, two, number["sid"], short_code=False, path=PATH, now=now
            ),
            "unknown number": _code(
                use.add_number, conn, account, one, new_sid(Prefix.PHONE_NUMBER), short_code=False, path=PATH, now=now
            ),
            "no sid": _code(use.add_number, conn, account, one, None, short_code=True, path=PATH, now=now),
            "bad service sid": _code(
                use.add_number, conn, account, "MG123", number["sid"], short_code=False, path=PATH, now=now
            ),
            "no such service": _code(
                use.add_number,
                conn,
                account,
                new_sid(Prefix.SERVICE),
                number["sid"],
                short_code=False,
                path=PATH,
                now=now,
            ),
            "alpha again": _code(use.add_alpha_sender, conn, account, one, "pigeon co", now),
            "alpha digits": _code(use.add_alpha_sender, conn, account, one, "12345", now),
            "alpha long": _code(use.add_alpha_sender, conn, account, one, "ABCDEFGHIJKL", now),
            "alpha dot": _code(use.add_alpha_sender, conn, account, one, "Pigeon.Co", now),
            "alpha missing": _code(use.add_alpha_sender, conn, account, one, "", now),
            "alpha elsewhere": _code(use.remove_alpha_sender, conn, account, two, alpha["sid"], PATH),
        }
    assert refusals == {
        "same service": 21710,
        "other service": 21712,
        "not in pool": 21711,
        "unknown number": 20404,
        "no sid": 20001,
        "bad service sid": 21705,
        "no such service": 21701,
        "alpha again": 21710,
        "alpha digits": 21709,
        "alpha long": 21709,
        "alpha dot": 21709,
        "alpha missing": 20001,
        "alpha elsewhere": 21711,
    }

    with db.write() as conn:
        use.remove_number(conn, account, one, voice_only["sid"], short_code=False, path=PATH, now=now)
        use.remove_alpha_sender(conn, account, one, alpha["sid"], PATH)
        use.add_number(conn, account, two, voice_only["sid"], short_code=False, path=PATH, now=now)
    with db.read() as conn:
        assert number_store.get_number(conn, voice_only["sid"])["messaging_service_sid"] == two  # type: ignore[index]
        assert use.list_alpha_senders(conn, account, one, offset=0, limit=10) == []

    # Deleting a service empties its pool: numbers stay on the account, out of any service.
    with db.write() as conn:
        use.add_alpha_sender(conn, account, one, "Again", now)
        use.delete(conn, account, one, PATH, now)
    with db.read() as conn:
        for sid in (number["sid"], short["sid"]):
            row = number_store.get_number(conn, sid)
            assert row is not None and row["messaging_service_sid"] is None
        assert store.list_alpha_senders(conn, one) == []
        assert store.sender_numbers(conn, one) == []


def test_pool_size_limit(db: Database, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(use, "MAX_POOL_SIZE", 2)
    account = _account(db, clock)
    numbers = [_number(db, clock, account, f"+1415555010{i}") for i in range(2)]
    now = clock.now()
    with db.write() as conn:
        sid = use.create(conn, account, {"FriendlyName": "Small"}, now)["sid"]
        use.add_number(conn, account, sid, numbers[0]["sid"], short_code=False, path=PATH, now=now)
        use.add_alpha_sender(conn, account, sid, "Brand", now)
        assert (
            _code(use.add_number, conn, account, sid, numbers[1]["sid"], short_code=False, path=PATH, now=now) == 21714
        )


def _service(db: Database, clock: FrozenClock) -> tuple[str, str]:
    account = _account(db, clock)
    with db.write() as conn:
        return account, str(use.create(conn, account, {"FriendlyName": "Brands"}, clock.now())["sid"])


def _alphas(db: Database, service: str) -> list[str]:
    with db.read() as conn:
        return [a["alpha_sender"] for a in store.list_alpha_senders(conn, service)]


def test_a_pool_holds_one_alpha_sender(db: Database, clock: FrozenClock) -> None:
    """As on Twilio: one alphanumeric sender per service; another is 21714 until it is removed,
    the same one in another case 21710."""
    account, service = _service(db, clock)
    now = clock.now()
    with db.write() as conn:
        brand = use.add_alpha_sender(conn, account, service, "Brand", now)
        assert _code(use.add_alpha_sender, conn, account, service, "BRAND", now) == 21710
        assert _code(use.add_alpha_sender, conn, account, service, "Other", now) == 21714
    assert _alphas(db, service) == ["Brand"]
    with db.write() as conn:
        use.remove_alpha_sender(conn, account, service, brand["sid"], PATH)
        use.add_alpha_sender(conn, account, service, "Other", now)
    assert _alphas(db, service) == ["Other"]


def test_a_pool_with_several_alpha_senders_keeps_them(db: Database, clock: FrozenClock) -> None:
    """A store written before the rule may hold several in one pool: they stay, and go on
    being listed and removed; the pool only takes no new one."""
    account, service = _service(db, clock)
    now = clock.now()
    with db.write() as conn:
        for i, text in enumerate(("Brand", "Promo")):  # a second apart: listed in the order added
            at = now + timedelta(seconds=i)
            store.add_alpha_sender(conn, account_sid=account, service_sid=service, alpha_sender=text, now=at)
        assert _code(use.add_alpha_sender, conn, account, service, "Third", now) == 21714
        assert _code(use.add_alpha_sender, conn, account, service, "promo", now) == 21710
        listed = use.list_alpha_senders(conn, account, service, offset=0, limit=10)
        assert [a["alpha_sender"] for a in listed] == ["Brand", "Promo"]
        use.remove_alpha_sender(conn, account, service, listed[0]["sid"], PATH)
        assert _code(use.add_alpha_sender, conn, account, service, "Third", now) == 21714
    assert _alphas(db, service) == ["Promo"]


def test_an_alpha_sender_the_checks_missed_is_21710_not_a_crash(
    db: Database, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The table's unique constraint, hit by a writer that did not take the service's lock,
    refuses the insert alone: the store answers None and the request 21710, in a transaction
    that goes on (a savepoint on PostgreSQL)."""
    account, service = _service(db, clock)
    now = clock.now()
    with db.write() as conn:
        use.add_alpha_sender(conn, account, service, "Brand", now)
        again = store.add_alpha_sender(conn, account_sid=account, service_sid=service, alpha_sender="Brand", now=now)
        assert again is None
        assert store.count_alpha_senders(conn, service) == 1  # the transaction is still usable
        monkeypatch.setattr(store, "find_alpha_sender", lambda *a: None)
        monkeypatch.setattr(store, "count_alpha_senders", lambda *a: 0)
        assert _code(use.add_alpha_sender, conn, account, service, "Brand", now) == 21710
    assert _alphas(db, service) == ["Brand"]


def test_short_codes_resource(db: Database, clock: FrozenClock) -> None:
    account = _account(db, clock)
    short = _number(db, clock, account, "54321", iso_country="GB")
    long_code = _number(db, clock, account, "+14155550100")
    path = "/SMS/ShortCodes/x.json"
    with db.write() as conn:
        updated = short_codes.update(
            conn,
            account,
            short["sid"],
            path,
            {
                "SmsUrl": "https://app.example.com/sc",
                "SmsMethod": "GET",
                "SmsFallbackUrl": "https://backup.example.com/sc",
                "VoiceUrl": "https://ignored.example.com",
            },
            clock.now(),
        )
        assert (updated["sms_url"], updated["sms_method"], updated["voice_url"]) == (
            "https://app.example.com/sc",
            "GET",
            None,
        )
        assert _code(short_codes.update, conn, account, short["sid"], path, {"SmsUrl": "nope"}, clock.now()) == 21402
        assert _code(short_codes.update, conn, account, short["sid"], path, {"SmsUrl": ""}, clock.now()) == 21406
    with db.read() as conn:
        listed = short_codes.list_for_account(conn, account, short_code=None, friendly_name=None, offset=0, limit=10)
        assert [r["sid"] for r in listed] == [short["sid"]]
        assert (
            short_codes.list_for_account(conn, account, short_code="999", friendly_name=None, offset=0, limit=10) == []
        )
        assert _code(short_codes.fetch, conn, account, long_code["sid"], path) == 20404
        # IncomingPhoneNumbers never shows a short code.
        numbers = number_use.list_for_account(conn, account, phone_number=None, friendly_name=None, offset=0, limit=10)
        assert [n["sid"] for n in numbers] == [long_code["sid"]]
        assert _code(number_use.fetch, conn, account, short["sid"], "/IncomingPhoneNumbers/x.json") == 20404


# -- a pool changed while its service is deleted (PostgreSQL: sessions side by side) ------------


def _add_sender(db: Database, account: str, service: str, number: dict[str, Any] | None, now: Any) -> Any:
    """Add `number` to the service's pool, or the alphanumeric sender "Brand" when None, in a
    transaction of its own."""
    with db.write() as conn:
        if number is None:
            return use.add_alpha_sender(conn, account, service, "Brand", now)
        return use.add_number(conn, account, service, number["sid"], short_code=False, path=PATH, now=now)


@pytest.mark.postgres
@pytest.mark.parametrize("alpha", [False, True], ids=["number", "alpha-sender"])
def test_a_sender_added_while_its_service_is_deleted_finds_no_service(
    pg: Database, clock: FrozenClock, alpha: bool
) -> None:
    """The add waits for the deletion, then answers 21701: the sender is in no pool, rather
    than in the pool of a service that is gone (where no request could reach it again)."""
    account = _account(pg, clock)
    number = _number(pg, clock, account, "+14155550100")
    now = clock.now()
    with pg.write() as conn:
        doomed = use.create(conn, account, {"FriendlyName": "Doomed"}, now)["sid"]

    def delete(conn: Connection) -> None:
        use.delete(conn, account, doomed, PATH, now)

    with pytest.raises(ApiError) as refused:
        while_held(pg, delete, lambda: _add_sender(pg, account, doomed, None if alpha else number, now))
    assert (refused.value.code, refused.value.status) == (21701, 404)
    with pg.read() as conn:
        assert number_store.get_number(conn, number["sid"])["messaging_service_sid"] is None  # type: ignore[index]
        assert store.list_alpha_senders(conn, doomed) == []
    with pg.write() as conn:  # the number is free to join another service
        other = use.create(conn, account, {"FriendlyName": "Other"}, now)["sid"]
        use.add_number(conn, account, other, number["sid"], short_code=False, path=PATH, now=now)


@pytest.mark.postgres
def test_a_service_deleted_while_a_sender_is_added_takes_it_out_too(pg: Database, clock: FrozenClock) -> None:
    """The other order: the deletion waits for the add, then empties the pool with the new
    number in it."""
    account = _account(pg, clock)
    number = _number(pg, clock, account, "+14155550100")
    now = clock.now()
    with pg.write() as conn:
        doomed = use.create(conn, account, {"FriendlyName": "Doomed"}, now)["sid"]

    def add(conn: Connection) -> None:
        use.add_number(conn, account, doomed, number["sid"], short_code=False, path=PATH, now=now)

    def delete() -> None:
        with pg.write() as conn:
            use.delete(conn, account, doomed, PATH, now)

    while_held(pg, add, delete)
    with pg.read() as conn:
        assert number_store.get_number(conn, number["sid"])["messaging_service_sid"] is None  # type: ignore[index]
        assert store.get_service(conn, doomed) is None


@pytest.mark.postgres
@pytest.mark.parametrize(("second", "code"), [("Brand", 21710), ("BRAND", 21710), ("Other", 21714)])
def test_two_alpha_senders_added_at_once_take_turns(pg: Database, clock: FrozenClock, second: str, code: int) -> None:
    """Two requests adding an alphanumeric sender to one pool at once: the second waits for
    the first, then is refused as it would be one after the other (before, both got in, or
    the database refused the second with an IntegrityError, a 500)."""
    account, service = _service(pg, clock)
    now = clock.now()

    def first(conn: Connection) -> None:
        use.add_alpha_sender(conn, account, service, "Brand", now)

    def add_second() -> Any:
        with pg.write() as conn:
            return use.add_alpha_sender(conn, account, service, second, now)

    with pytest.raises(ApiError) as refused:
        while_held(pg, first, add_second)
    assert refused.value.code == code
    assert _alphas(pg, service) == ["Brand"]
