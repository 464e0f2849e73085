"""Reads of history go to the read replica (PIGEON_DATABASE_REPLICA_URL); everything else stays
on the primary; a replica out of reach sends history back to the primary.

The "replica" here is a second database with other rows in it, so that each answer shows
which database it came from: what is tested is where each read goes, not PostgreSQL's
replication."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from prometheus_client.parser import text_string_to_metric_families

with warnings.catch_warnings():
    # Starlette 1.x prefers its httpx2 fork for the test client; httpx (installed) works the same.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from pigeon import bootstrap
from pigeon.app import accounts as account_use
from pigeon.app import numbers as number_use
from pigeon.app.send import SendRequest, prepare_message
from pigeon.config import load_settings
from pigeon.store import accounts as account_store
from pigeon.store.alerts import add_alert
from pigeon.store.engine import Database, create_engine
from pigeon.store.messages import insert_messages
from pigeon.store.tables import accounts, phone_numbers
from tests.conftest import drop_pg_database, make_pg_database

pytestmark = pytest.mark.postgres

NUMBER = "+14155550190"


@dataclass
class Stores:
    primary_url: str
    replica_url: str
    account: str
    token: str
    on_primary: str  # a message only the primary has
    on_replica: str  # a message only the "replica" has


def _send(db: Database, account: str, body: str) -> str:
    with db.write() as conn:
        new = prepare_message(conn, account, SendRequest(to="+14155557070", from_=NUMBER, body=body), datetime.now(UTC))
        insert_messages(conn, [new])
    return str(new.message["sid"])


@pytest.fixture
def stores(pg_template: str) -> Iterator[Stores]:
    primary_name, primary_url = make_pg_database(pg_template)
    replica_name, replica_url = make_pg_database(pg_template)
    primary, replica = Database.from_url(primary_url), Database.from_url(replica_url)
    try:
        now = datetime.now(UTC)
        with primary.write() as conn:
            acc = account_use.create_account(conn, friendly_name="replicated", now=now)
            number_use.provision(conn, account_sid=acc["sid"], phone_number=NUMBER, now=now)
            account_row = account_store.get_account(conn, acc["sid"])
            assert account_row is not None
            number_rows = [dict(r) for r in conn.execute(phone_numbers.select()).mappings()]
        with replica.write() as conn:  # the same account and number, as replication would have them
            conn.execute(accounts.insert().values(**{c.key: account_row[c.key] for c in accounts.c}))
            conn.execute(phone_numbers.insert(), number_rows)
            add_alert(conn, account_sid=acc["sid"], error_code=30007, text="only on the replica", at=now)
        yield Stores(
            primary_url,
            replica_url,
            acc["sid"],
            acc["auth_token"],
            on_primary=_send(primary, acc["sid"], "primary"),
            on_replica=_send(replica, acc["sid"], "replica"),
        )
    finally:
        primary.dispose()
        replica.dispose()
        drop_pg_database(primary_name)
        drop_pg_database(replica_name)


def _client(db: Database, settings_url: str, replica_url: str) -> TestClient:
    settings = load_settings(environ={}, database_url=settings_url, database_replica_url=replica_url)
    return TestClient(bootstrap.build_api(settings, db), base_url="http://127.0.0.1:8080")


def test_listings_read_the_replica_and_fetches_the_primary(stores: Stores) -> None:
    db = Database(create_engine(stores.primary_url), replica=create_engine(stores.replica_url))
    base = f"/2010-04-01/Accounts/{stores.account}"
    auth = (stores.account, stores.token)
    try:
        with _client(db, stores.primary_url, stores.replica_url) as client:
            listed = client.get(f"{base}/Messages.json", auth=auth).json()["messages"]
            assert [m["sid"] for m in listed] == [stores.on_replica]
            assert client.get(f"{base}/Messages/{stores.on_primary}.json", auth=auth).status_code == 200
            assert client.get(f"{base}/Messages/{stores.on_replica}.json", auth=auth).status_code == 404
            alerts = client.get("/v1/Alerts", auth=auth).json()["alerts"]
            assert [a["alert_text"] for a in alerts] == ["only on the replica"]
            duplicates = client.get(f"{base}/Doctor/Messages.json", params={"To": "+14155557070"}, auth=auth)
            assert duplicates.json()["subject"]["messages"] == [stores.on_replica]
            # The doctor's report on one message reads the primary.
            report = client.get(f"{base}/Doctor/Messages/{stores.on_primary}.json", auth=auth).json()
            assert report["subject"]["message_sid"] == stores.on_primary
            # Sending writes to the primary, and the account's credentials are checked there.
            sent = client.post(
                f"{base}/Messages.json", data={"To": "+14155557071", "From": NUMBER, "Body": "new"}, auth=auth
            )
            assert sent.status_code == 201, sent.text
            assert client.get(f"{base}/Messages/{sent.json()['sid']}.json", auth=auth).status_code == 200
    finally:
        db.dispose()


def test_history_goes_back_to_the_primary_while_the_replica_is_out_of_reach(
    stores: Stores, caplog: pytest.LogCaptureFixture
) -> None:
    unreachable = "postgresql://postgres@127.0.0.1:9/nowhere?connect_timeout=1"
    db = Database(create_engine(stores.primary_url), replica=create_engine(unreachable))
    base = f"/2010-04-01/Accounts/{stores.account}"
    auth = (stores.account, stores.token)
    try:
        with (
            caplog.at_level(logging.WARNING, logger="pigeon.store.replica"),
            _client(db, stores.primary_url, unreachable) as client,
        ):
            for _ in range(3):
                listed = client.get(f"{base}/Messages.json", auth=auth)
                assert listed.status_code == 200
                assert [m["sid"] for m in listed.json()["messages"]] == [stores.on_primary]
        warnings = [r.getMessage() for r in caplog.records if r.name == "pigeon.store.replica"]
        assert len(warnings) == 1 and "reading history from the primary" in warnings[0]  # once a minute
    finally:
        db.dispose()


def test_a_restarted_replica_is_found_out_before_a_read(stores: Stores) -> None:
    """Its connections die with it; each is checked as it leaves the pool, so the next read
    gets a new one instead of failing (503)."""
    db = Database.from_url(stores.primary_url, replica_url=stores.replica_url)
    base = f"/2010-04-01/Accounts/{stores.account}"
    auth = (stores.account, stores.token)
    replica_db = stores.replica_url.rsplit("/", 1)[1]
    try:
        with _client(db, stores.primary_url, stores.replica_url) as client:
            assert client.get(f"{base}/Messages.json", auth=auth).status_code == 200
            admin = create_engine(stores.primary_url)
            try:
                with admin.connect() as conn:
                    killed = conn.exec_driver_sql(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %(db)s",
                        {"db": replica_db},
                    ).scalar_one()
            finally:
                admin.dispose()
            assert killed >= 1
            listed = client.get(f"{base}/Messages.json", auth=auth)
            assert listed.status_code == 200, listed.text
            assert [m["sid"] for m in listed.json()["messages"]] == [stores.on_replica]
    finally:
        db.dispose()


def test_metrics_and_start_up_warnings_say_how_the_replica_is(stores: Stores) -> None:
    """GET /metrics: pigeon_replica_up, and pigeon_replica_lag_seconds from a standby (a
    database that is not one has no lag, and `pigeon serve` says so at start)."""
    unreachable = "postgresql://postgres@127.0.0.1:9/nowhere?connect_timeout=1"
    for replica_url, up in ((stores.replica_url, 1.0), (unreachable, 0.0)):
        db = Database.from_url(stores.primary_url, replica_url=replica_url)
        try:
            with _client(db, stores.primary_url, replica_url) as client:
                text = client.get("/metrics").text
            samples = {s.name: s.value for family in text_string_to_metric_families(text) for s in family.samples}
            assert samples["pigeon_replica_up"] == up and samples["pigeon_store_up"] == 1.0
            assert "pigeon_replica_lag_seconds" not in samples  # neither is a standby
            assert db.replica is not None
            [warning] = db.replica.warnings()
            assert ("not a standby" if up else "could not be reached") in warning
        finally:
            db.dispose()
