"""`alembic upgrade head` builds exactly the schema that pigeon.store.tables describes."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from pigeon.store.engine import Database
from pigeon.store.schema import alembic_config, current_revision, downgrade, upgrade
from pigeon.store.tables import accounts, api_keys, messages, metadata, opt_outs, phone_numbers, webhook_deliveries


def test_migrations_match_the_metadata(db: Database) -> None:
    with db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, metadata)
    assert diff == []


def test_upgrade_is_idempotent(db: Database) -> None:
    before = current_revision(db.engine)
    upgrade(db.engine)
    assert current_revision(db.engine) == before is not None


def test_0008_marks_the_deliveries_behind_an_unfinished_one_waiting(db: Database) -> None:
    """Upgrading a store with callbacks in flight: the first unfinished delivery of each message
    and URL stays pending, the ones behind it become waiting; downgrading undoes it."""
    cfg = alembic_config(db.engine)
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0007")  # the store as it was before (the fixture's is at head)
    now = datetime(2026, 11, 1, tzinfo=UTC)

    def row(
        n: int, message_sid: str | None, sequence: int, status: str, url: str = "https://a.example/cb"
    ) -> dict[str, object]:
        return {
            "idempotency_token": f"t{n}",
            "account_sid": "AC" + "0" * 32,
            "message_sid": message_sid,
            "kind": "status_callback",
            "url": url,
            "method": "POST",
            "params": [],
            "sequence": sequence,
            "status": status,
            "attempts": 0,
            "next_attempt_at": now,
            "date_created": now,
            "date_updated": now,
        }

    m1, m2 = "SM" + "1" * 32, "SM" + "2" * 32
    rows = [
        row(1, m1, 0, "delivered"),
        row(2, m1, 1, "pending"),
        row(3, m1, 2, "pending"),
        row(4, m1, 3, "pending", url="https://sink.example/e"),
        row(5, m2, 0, "pending"),
        row(6, None, 0, "pending"),
        row(7, None, 0, "pending"),
    ]
    with db.write() as conn:
        conn.execute(webhook_deliveries.insert(), rows)

    def statuses() -> list[str]:
        with db.read() as conn:
            q = sa.select(webhook_deliveries.c.status).order_by(webhook_deliveries.c.idempotency_token)
            return list(conn.execute(q).scalars())

    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0008")
    assert statuses() == ["delivered", "pending", "waiting", "pending", "pending", "pending", "pending"]
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0007")
    assert statuses() == ["delivered", "pending", "pending", "pending", "pending", "pending", "pending"]
    upgrade(db.engine)


def test_0022_counts_a_number_as_held_since_its_purchase_and_no_sign_out_yet(db: Database) -> None:
    """Numbers on accounts before 0022 are held since they were bought (date_created), the
    best the store knows; accounts have signed out of the console 0 times, so the sessions
    they have (cookies without a count) last; downgrading removes both columns."""
    cfg = alembic_config(db.engine)
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0021")
    bought = datetime(2026, 11, 1, 8, 30, tzinfo=UTC)
    account = "AC" + "0" * 32
    with db.engine.begin() as conn:
        conn.execute(
            accounts.insert().values(
                sid=account,
                owner_account_sid=account,
                friendly_name="a",
                auth_token="t" * 32,
                date_created=bought,
                date_updated=bought,
            )
        )
        conn.execute(
            phone_numbers.insert().values(
                sid="PN" + "0" * 32,
                account_sid=account,
                phone_number="+14155550100",
                friendly_name="n",
                date_created=bought,
                date_updated=bought,
            )
        )
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0022")
    with db.read() as conn:
        held = conn.execute(sa.select(phone_numbers.c.held_since)).scalar_one()
        sign_outs = conn.execute(sa.select(accounts.c.console_sign_outs)).scalar_one()
    assert held == bought and sign_outs == 0
    downgrade(db.engine, "0021")  # on SQLite, rebuilds `accounts`, which holds a row: foreign keys off
    with db.engine.connect() as conn:
        assert "held_since" not in {c["name"] for c in sa.inspect(conn).get_columns("phone_numbers")}
        assert "console_sign_outs" not in {c["name"] for c in sa.inspect(conn).get_columns("accounts")}
    upgrade(db.engine)


def test_0026_gives_each_api_key_no_sign_out_yet(db: Database) -> None:
    """Keys made before 0026 have signed out of the console 0 times, so the key sessions that
    exist (cookies without a key count) last; downgrading removes the column."""
    cfg = alembic_config(db.engine)
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0025")
    made = datetime(2026, 11, 1, 8, 30, tzinfo=UTC)
    account = "AC" + "0" * 32
    with db.engine.begin() as conn:
        conn.execute(
            accounts.insert().values(
                sid=account,
                owner_account_sid=account,
                friendly_name="a",
                auth_token="t" * 32,
                date_created=made,
                date_updated=made,
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO api_keys (sid, account_sid, friendly_name, secret_hash, date_created)"
                " VALUES (:sid, :account, 'k', :hash, :made)"
            ),
            {"sid": "SK" + "0" * 32, "account": account, "hash": "h" * 64, "made": made},
        )
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0026")
    with db.read() as conn:
        assert conn.execute(sa.select(api_keys.c.console_sign_outs)).scalar_one() == 0
    downgrade(db.engine, "0025")
    with db.engine.connect() as conn:
        assert "console_sign_outs" not in {c["name"] for c in sa.inspect(conn).get_columns("api_keys")}
    upgrade(db.engine)


def test_0029_keys_opt_outs_of_national_spellings_in_e164(db: Database) -> None:
    """Opt-outs kept under the spelling a carrier wrote nationally are keyed in E.164, read in
    the country of the number the STOP was texted to (its inbound message, else the number the
    opt-out names, else its service's numbers); where the pair has an E.164 row too, the newer
    one stays; what cannot be read there stays as it is."""
    cfg = alembic_config(db.engine)
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0028")
    at = datetime(2026, 11, 1, 8, 30, tzinfo=UTC)
    account, service, uk, us = "AC" + "0" * 32, "MG" + "0" * 32, "+447700900999", "+14155550100"
    inbound = "SM" + "0" * 32
    with db.engine.begin() as conn:
        conn.execute(
            accounts.insert().values(
                sid=account,
                owner_account_sid=account,
                friendly_name="a",
                auth_token="t" * 32,
                date_created=at,
                date_updated=at,
            )
        )
        for i, (number, in_service) in enumerate(((uk, True), (us, False))):
            conn.execute(
                phone_numbers.insert().values(
                    sid=f"PN{i:032d}",
                    account_sid=account,
                    phone_number=number,
                    friendly_name="n",
                    messaging_service_sid=service if in_service else None,
                    date_created=at,
                    date_updated=at,
                )
            )
        conn.execute(
            messages.insert().values(
                sid=inbound,
                account_sid=account,
                direction="inbound",
                from_="07700900121",
                to=uk,
                status="received",
                date_created=at,
                date_updated=at,
            )
        )
        rows = [  # (sender, recipient, scope, keyword, minutes after `at`, inbound message)
            (service, "07700900121", "service", "STOP", 0, inbound),  # read where its STOP went
            (service, "07700900122", "service", "STOP", 0, None),  # in its service's country
            (uk, "07700900123", "number", "STOP", 0, None),  # in its number's
            (us, "07700900124", "number", "STOP", 0, None),  # no US number: stays
            (uk, "07700900125", "number", "QUIT", 5, None),  # newer than its E.164 row: it stays
            (uk, "+447700900125", "number", "STOP", 1, None),
            (uk, "07700900126", "number", "QUIT", 1, None),  # older than its E.164 row: it goes
            (uk, "+447700900126", "number", "STOP", 5, None),
        ]
        conn.execute(
            opt_outs.insert(),
            [
                {
                    "account_sid": account,
                    "sender": sender,
                    "recipient": recipient,
                    "scope": scope,
                    "keyword": keyword,
                    "inbound_message_sid": sid,
                    "date_created": at + timedelta(minutes=minutes),
                }
                for sender, recipient, scope, keyword, minutes, sid in rows
            ],
        )
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0029")
    with db.read() as conn:
        found = conn.execute(sa.select(opt_outs.c.sender, opt_outs.c.recipient, opt_outs.c.keyword)).all()
    assert sorted(found) == sorted(
        [
            (service, "+447700900121", "STOP"),
            (service, "+447700900122", "STOP"),
            (uk, "+447700900123", "STOP"),
            (us, "07700900124", "STOP"),
            (uk, "+447700900125", "QUIT"),
            (uk, "+447700900126", "STOP"),
        ]
    )
    upgrade(db.engine)


def test_0031_keeps_numbers_as_they_were_and_upper_cases_countries(db: Database) -> None:
    """Numbers from before 0031 stay "hosted" (what the API said of them; bought and added ones
    cannot be told apart) with no location and no address requirement; a country stored in
    lower case (`pigeon numbers add 54321 --country us`) is upper-cased, so the short code
    sends to its country again; one stored without a country keeps none (no guessing: the
    doctor warns of it). Downgrading removes the columns."""
    cfg = alembic_config(db.engine)
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0030")
    at = datetime(2026, 11, 1, 8, 30, tzinfo=UTC)
    account = "AC" + "0" * 32
    old_numbers = sa.table(
        "phone_numbers",
        *(sa.column(c) for c in ("sid", "account_sid", "phone_number", "friendly_name", "number_type", "iso_country")),
        sa.column("date_created", sa.DateTime(timezone=True)),
        sa.column("date_updated", sa.DateTime(timezone=True)),
    )
    rows = [("54321", "short_code", "us"), ("12345", "short_code", None), ("+14155550100", "local", "US")]
    with db.engine.begin() as conn:
        conn.execute(
            accounts.insert().values(
                sid=account,
                owner_account_sid=account,
                friendly_name="a",
                auth_token="t" * 32,
                date_created=at,
                date_updated=at,
            )
        )
        for i, (number, kind, country) in enumerate(rows):
            conn.execute(
                old_numbers.insert().values(
                    sid=f"PN{i:032d}",
                    account_sid=account,
                    phone_number=number,
                    friendly_name=number,
                    number_type=kind,
                    iso_country=country,
                    date_created=at,
                    date_updated=at,
                )
            )
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0031")
    c = phone_numbers.c
    with db.read() as conn:
        found = conn.execute(
            sa.select(c.phone_number, c.iso_country, c.origin, c.address_requirements, c.locality).order_by(c.sid)
        ).all()
    assert [tuple(r) for r in found] == [
        ("54321", "US", "hosted", "none", None),
        ("12345", None, "hosted", "none", None),
        ("+14155550100", "US", "hosted", "none", None),
    ]
    downgrade(db.engine, "0030")
    with db.engine.connect() as conn:
        columns = {col["name"] for col in sa.inspect(conn).get_columns("phone_numbers")}
    assert not columns & {"origin", "address_requirements", "locality", "latitude"}
    upgrade(db.engine)


def test_processes_starting_together_upgrade_once(db: Database, database_url: str) -> None:
    """Every `pigeon serve` and `pigeon worker` upgrades the schema as it starts, and after a
    release several start at once against one store: they queue, the first upgrades, and the
    others find the schema at head. Unqueued, the second failed on a table or column the
    first had just made."""
    cfg = alembic_config(db.engine)
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0014")  # three revisions to go, each adding a table or columns
    head = ScriptDirectory.from_config(cfg).get_current_head()
    engines = [Database.from_url(database_url) for _ in range(4)]
    barrier = threading.Barrier(len(engines))
    failures: list[BaseException] = []

    def start(process: Database) -> None:
        barrier.wait()
        try:
            upgrade(process.engine)
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=start, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for e in engines:
        e.dispose()
    assert failures == []
    assert current_revision(db.engine) == head
