"""Migration 0032 on both stores: the numbers that accounts closed before this release still
hold (closing used to change the status alone) are released as a release does, in the style
of test_migrations.py (kept apart: that module is at its size)."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import command

from pigeon.store.engine import Database
from pigeon.store.schema import alembic_config, upgrade
from pigeon.store.tables import accounts, available_numbers, message_events, messages, phone_numbers

AT = datetime(2026, 11, 1, 8, 30, tzinfo=UTC)
MAIN, SUB, CLOSED, ACTIVE = (f"AC{i:032d}" for i in range(4))
SERVICE = "MG" + "0" * 32


def _account(sid: str, status: str, owner: str | None = None) -> dict[str, object]:
    return {
        "sid": sid,
        "owner_account_sid": owner or sid,
        "friendly_name": sid[-4:],
        "auth_token": "t" * 32,
        "status": status,
        "date_created": AT,
        "date_updated": AT,
    }


def _number(i: int, account: str, phone: str, kind: str, country: str | None, **more: object) -> dict[str, object]:
    return {
        "sid": f"PN{i:032d}",
        "account_sid": account,
        "phone_number": phone,
        "friendly_name": phone,
        "number_type": kind,
        "iso_country": country,
        "date_created": AT,
        "date_updated": AT,
        **more,
    }


def _message(i: int, account: str, sender: str, status: str, **more: object) -> dict[str, object]:
    return {
        "sid": f"SM{i:032d}",
        "account_sid": account,
        "direction": "outbound-api",
        "from_": sender,
        "to": "+14155552671",
        "status": status,
        "date_created": AT,
        "date_updated": AT,
        **more,
    }


def test_0032_releases_the_numbers_that_closed_accounts_still_hold(db: Database) -> None:
    """A closed main account's number and its (active) subaccount's go back into the inventory
    as they were stocked; a closed account's short code is taken off, not restocked; an active
    account keeps its number. The closed accounts' messages still waiting to go from those
    numbers fail with 21606 and a ``number_released`` entry; a scheduled one whose pool chose
    the number, one already sent and an active account's stay as they were."""
    cfg = alembic_config(db.engine)
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0031")
    with db.engine.begin() as conn:
        conn.execute(
            accounts.insert(),
            [
                _account(MAIN, "closed"),
                _account(SUB, "active", owner=MAIN),
                _account(CLOSED, "closed"),
                _account(ACTIVE, "active"),
            ],
        )
        for number in (
            _number(0, MAIN, "+14155550100", "local", "US", locality="San Francisco", origin="twilio"),
            _number(1, SUB, "+18005550101", "toll_free", None, sms_capable=True, voice_capable=False),
            _number(2, CLOSED, "54321", "short_code", "US", messaging_service_sid=SERVICE),
            _number(3, ACTIVE, "+14155550103", "local", "US"),
        ):
            conn.execute(phone_numbers.insert().values(**number))
        for message in (
            _message(0, MAIN, "+14155550100", "queued", claimed_by="dispatcher-1"),
            _message(1, SUB, "+18005550101", "scheduled"),
            _message(2, CLOSED, "54321", "accepted", messaging_service_sid=SERVICE),
            _message(3, CLOSED, "54321", "scheduled", messaging_service_sid=SERVICE, sender_from_pool=True),
            _message(4, MAIN, "+14155550100", "sent"),
            _message(5, ACTIVE, "+14155550103", "queued"),
        ):
            conn.execute(messages.insert().values(**message))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0032")
    with db.read() as conn:
        held = conn.execute(sa.select(phone_numbers.c.phone_number)).scalars().all()
        inv = available_numbers.c
        stocked = conn.execute(
            sa.select(inv.phone_number, inv.iso_country, inv.number_type, inv.locality, inv.voice_capable).order_by(
                inv.phone_number
            )
        ).all()
        found = conn.execute(sa.select(messages.c.sid, messages.c.status, messages.c.error_code)).all()
        entries = conn.execute(
            sa.select(message_events.c.message_sid, message_events.c.kind, message_events.c.error_code)
        ).all()
    assert held == ["+14155550103"]
    assert [tuple(r) for r in stocked] == [
        ("+14155550100", "US", "local", "San Francisco", True),
        ("+18005550101", "US", "toll_free", None, False),
    ]
    assert {sid[-1]: (status, code) for sid, status, code in found} == {
        "0": ("failed", 21606),
        "1": ("failed", 21606),
        "2": ("failed", 21606),
        "3": ("scheduled", None),
        "4": ("sent", None),
        "5": ("queued", None),
    }
    assert sorted((sid[-1], kind, code) for sid, kind, code in entries) == [
        ("0", "number_released", 21606),
        ("1", "number_released", 21606),
        ("2", "number_released", 21606),
    ]
    upgrade(db.engine)
