"""`pigeon erase NUMBER` on both stores: a person's messages (both ways, with everything that
hangs off them), log entries and texts to unknown numbers go; their opt-out stays, unlinked;
messages still on their way and everyone else's data stay."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from pigeon.app import accounts as account_use
from pigeon.app import erasure
from pigeon.app import messages as message_use
from pigeon.app import numbers as number_use
from pigeon.app.inbound import receive
from pigeon.cli import app
from pigeon.ports import InboundSms
from pigeon.store import erasure as erasure_store
from pigeon.store.alerts import add_alert
from pigeon.store.engine import Database
from pigeon.store.inbound import keep_unroutable
from pigeon.store.request_log import insert_requests
from pigeon.store.schema import upgrade
from pigeon.store.tables import (
    alerts,
    message_events,
    messages,
    metadata,
    opt_outs,
    request_log,
    unroutable_inbound,
)
from pigeon.testing import FrozenClock, RecordingWebhookSender
from tests.integration.pipeline import SENDER, Pipeline, make_pipeline
from tests.integration.receipt_race import alongside_a_receipt, answer_webhooks, orphans, sent, subscribe_to_deliveries
from tests.integration.test_retention import delivered, rows
from tests.integration.test_webhook_outbox import run_once, worker

PERSON, OTHER = "+14155552671", "+14155552699"


def logged(pipe: Pipeline, to: str, *, claimed: bool = False) -> dict[str, object]:
    return {
        "sid": "RQ" + datetime.now(UTC).strftime("%H%M%S%f").ljust(32, "0"),
        "account_sid": None if claimed else pipe.account_sid,
        "claimed_account_sid": pipe.account_sid if claimed else None,
        "at": pipe.clock.now(),
        "method": "POST",
        "path": f"/2010-04-01/Accounts/{pipe.account_sid}/Messages.json",
        "status": 201 if not claimed else 401,
        "duration_ms": 1.0,
        "to": to,
        "from_": SENDER,
    }


def a_persons_history(pipe: Pipeline) -> dict[str, str]:
    made = {"first": delivered(pipe, to=PERSON), "second": delivered(pipe, to=PERSON)}
    made["other"] = delivered(pipe, to=OTHER)
    with pipe.db.write() as conn:
        intake = receive(  # STOP: an inbound message, the opt-out, and an automatic reply (queued)
            conn,
            InboundSms(carrier="simulator", sender=PERSON, recipient=SENDER, body="STOP"),
            now=pipe.clock.now(),
            base_url="https://pigeon.example.com",
        )
        assert intake.message_sid is not None
        made["stop"] = intake.message_sid
        add_alert(
            conn,
            account_sid=pipe.account_sid,
            error_code=30003,
            text="unreachable",
            at=pipe.clock.now(),
            resource_sid=made["first"],
        )
        keep_unroutable(
            conn,
            from_=PERSON,
            to="+14155559999",
            body="are you there?",
            carrier="simulator",
            reason="no account holds the number",
            now=pipe.clock.now(),
        )
        insert_requests(conn, [logged(pipe, PERSON), logged(pipe, PERSON, claimed=True), logged(pipe, OTHER)])
    return made


def test_a_persons_data_goes_and_their_opt_out_stays(pipe: Pipeline) -> None:
    made = a_persons_history(pipe)
    found = erasure.survey(pipe.db, PERSON)
    assert found.as_dict() == {
        "messages": 3,
        "in_progress": 1,
        "requests": 2,
        "unroutable": 1,
        "alerts": 0,
        "opt_outs": 1,
    }

    assert erasure.erase(pipe.db, PERSON, clock=pipe.clock, chunk=2, log_step=1) == {
        "messages": 3,
        "requests": 2,
        "unroutable": 1,
        "alerts": 0,
    }
    with pipe.db.read() as conn:
        left = {r.sid: r.to for r in conn.execute(sa.select(messages.c.sid, messages.c.to))}
        [opt_out] = conn.execute(sa.select(opt_outs)).mappings().all()
    reply = [sid for sid, to in left.items() if sid != made["other"]]
    assert left[made["other"]] == OTHER and len(reply) == 1  # the reply still queued stays
    for sid in (made["first"], made["second"], made["stop"]):
        assert rows(pipe, message_events, message_sid=sid) == 0
    assert rows(pipe, alerts) == 0 and rows(pipe, unroutable_inbound) == 0
    assert [r for r in _request_tos(pipe)] == [OTHER]
    assert (opt_out["recipient"], opt_out["keyword"], opt_out["inbound_message_sid"]) == (PERSON, "STOP", None)
    # A second run, once the reply is sent, takes it too.
    assert erasure.survey(pipe.db, PERSON).in_progress == 1


def _request_tos(pipe: Pipeline) -> list[str]:
    with pipe.db.read() as conn:
        return list(conn.execute(sa.select(request_log.c.to)).scalars())


def test_a_parent_account_takes_its_subaccounts_data(pipe: Pipeline) -> None:
    made = a_persons_history(pipe)
    with pipe.db.write() as conn:
        sub = account_use.create_subaccount(conn, pipe.account_sid, friendly_name="branch", now=pipe.clock.now())
        conn.execute(messages.update().where(messages.c.sid == made["second"]).values(account_sid=sub["sid"]))
    assert erasure.survey(pipe.db, PERSON, account=sub["sid"]).messages == 1  # the subaccount: its own only
    assert erasure.survey(pipe.db, PERSON, account=pipe.account_sid).messages == 3  # the parent: both
    assert erasure.erase(pipe.db, PERSON, clock=pipe.clock, account=pipe.account_sid)["messages"] == 3


def test_another_account_keeps_its_data(pipe: Pipeline) -> None:
    a_persons_history(pipe)
    found = erasure.survey(pipe.db, PERSON, account="AC" + "0" * 32)
    assert found.as_dict() == {
        "messages": 0,
        "in_progress": 0,
        "requests": 0,
        "unroutable": 0,
        "alerts": 0,
        "opt_outs": 0,
    }
    assert erasure.erase(pipe.db, PERSON, clock=pipe.clock, account="AC" + "0" * 32) == {
        "messages": 0,
        "requests": 0,
        "unroutable": 0,
        "alerts": 0,
    }
    assert erasure.survey(pipe.db, PERSON).messages == 3


def test_the_command_counts_first_and_erases_with_yes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'pigeon.db'}"
    from pigeon.store.engine import Database

    db = Database.from_url(url)
    upgrade(db.engine)
    with db.write() as conn:
        keep_unroutable(
            conn,
            from_=PERSON,
            to="+14155559999",
            body="hello?",
            carrier="simulator",
            reason="no account holds the number",
            now=datetime.now(UTC),
        )
    monkeypatch.setenv("PIGEON_DATABASE_URL", url)
    misread = CliRunner().invoke(app, ["erase", "(415) 555-2671"])  # which country?
    assert misread.exit_code == 2 and "E.164" in misread.output
    dry = CliRunner().invoke(app, ["erase", "+1 415 555 2671"])  # read as +14155552671
    assert dry.exit_code == 0, dry.output
    said = " ".join(dry.output.split())
    assert "+14155552671 in every account" in said and "1 texts to unknown numbers would be erased" in said
    assert "Nothing was changed" in said and "matched as written" not in said
    national = CliRunner().invoke(app, ["erase", "07700900123"])
    assert national.exit_code == 0, national.output
    assert "07700900123 is matched as written" in " ".join(national.output.split())
    done = CliRunner().invoke(app, ["erase", PERSON, "--yes", "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["erased"] == {"messages": 0, "requests": 0, "unroutable": 1, "alerts": 0}
    with db.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(unroutable_inbound)).scalar_one() == 0
    db.dispose()


def naming(db: Database, *texts: str) -> list[str]:
    """Every stored value that holds one of `texts`, as table.column; opt-outs aside (they stay)."""
    found = []
    with db.read() as conn:
        for table in metadata.sorted_tables:
            if table is opt_outs:
                continue
            for row in conn.execute(sa.select(table)).mappings():
                found += [f"{table.name}.{k}" for k, v in row.items() if any(t in str(v) for t in texts)]
    return found


@pytest.mark.postgres
def test_a_message_whose_receipt_commits_alongside_is_kept_until_its_webhooks_are_out(
    pg: Database, clock: FrozenClock
) -> None:
    """On PostgreSQL a receipt can change a message between the erasure's finding it at rest
    and its removal: the message is then kept (in progress), not removed from under the
    callback, the event and the timeline row the receipt adds, which would go out or stay
    naming the person."""
    pipe = make_pipeline(pg, clock)
    try:
        subscribe_to_deliveries(pipe)
        sid = sent(pipe, to=PERSON, body="secret code 1234")
        erased = alongside_a_receipt(pipe, sid, lambda: erasure.erase(pg, PERSON, clock=clock))
        assert orphans(pg) == {}
        assert erased == {"messages": 0, "requests": 0, "unroutable": 0, "alerts": 0}
        assert pipe.status(sid) == "delivered" and erasure.survey(pg, PERSON).in_progress == 1
        answer_webhooks(pipe)  # once its webhooks are out, a second run takes it
        assert erasure.erase(pg, PERSON, clock=clock)["messages"] == 1
        assert naming(pg, PERSON, "secret code") == [] and orphans(pg) == {}
    finally:
        pipe.spool.stop()


def test_a_message_changed_since_it_was_found_stays(pipe: Pipeline) -> None:
    """Found at rest in a read, then its receipt came: it is checked again once locked."""
    subscribe_to_deliveries(pipe)
    sid = sent(pipe, to=PERSON)
    with pipe.db.read() as conn:
        found = erasure_store.messages_at_rest(conn, PERSON, [pipe.account_sid])
    assert found == [sid]
    pipe.receipts(advance=10)  # delivered: its callback and its event still to go out
    with pipe.db.write() as conn:
        assert erasure_store.erase_messages(conn, found) == 0
    assert orphans(pipe.db) == {} and pipe.status(sid) == "delivered"


def alerts_naming(pipe: Pipeline, *texts: str) -> list[str]:
    """The alerts that hold one of `texts`, not followed by another digit."""
    columns = (alerts.c.alert_text, sa.cast(alerts.c.request_variables, sa.Text), alerts.c.request_url)
    with pipe.db.read() as conn:
        found = conn.execute(sa.select(alerts.c.sid, *columns, alerts.c.response_body).order_by(alerts.c.sid)).all()
    spelled = re.compile("(" + "|".join(re.escape(t) for t in texts) + ")(?![0-9])")
    return [row[0] for row in found if any(spelled.search(str(v)) for v in row[1:])]


def test_the_alerts_naming_the_number_go_too(pipe: Pipeline) -> None:
    """Alerts about no message of the number's that still name it: a text it sent to a number
    that cannot take SMS (about the number, 21407), a status callback refused for a message the
    application has since deleted (its parameters), a webhook whose URL or answer holds the
    number percent-encoded. Another number's alerts, and another account's with --account, stay."""
    now = pipe.clock.now()
    with pipe.db.write() as conn:
        number_use.provision(conn, account_sid=pipe.account_sid, phone_number="+14155550122", sms=False, now=now)
        receive(
            conn,
            InboundSms(carrier="simulator", sender=PERSON, recipient="+14155550122", body="my address is 1 Main St"),
            now=now,
            base_url="https://pigeon.example.com",
        )
        add_alert(
            conn,
            account_sid=pipe.account_sid,
            error_code=11200,
            text="The incoming-message webhook failed",
            at=now,
            request_url="https://app.example.com/sms?from=%2b14155552671",
            response_body="Bad request: To=%2B14155552671&Body=hi",
        )
        longer = add_alert(conn, account_sid=pipe.account_sid, error_code=30003, text="to +141555526719", at=now)
        other = account_use.create_account(conn, friendly_name="other", now=now)["sid"]
        elsewhere = add_alert(conn, account_sid=other, error_code=30003, text=f"to {PERSON}", at=now)
    sid = pipe.send(to=PERSON)
    assert pipe.dispatch() == 1
    pipe.receipts(advance=10)
    refusing = worker(pipe.db, RecordingWebhookSender(default=400), pipe.clock)
    while run_once(refusing):
        pass
    with pipe.db.write() as conn:
        message_use.delete(conn, pipe.account_sid, sid, "/path")
    named = alerts_naming(pipe, PERSON, "%2B14155552671", "%2b14155552671")
    assert len(named) >= 4 and elsewhere in named and longer not in named

    assert erasure.survey(pipe.db, PERSON, account=pipe.account_sid).alerts == len(named) - 1
    assert erasure.erase(pipe.db, PERSON, clock=pipe.clock, account=pipe.account_sid)["alerts"] == len(named) - 1
    assert alerts_naming(pipe, PERSON, "%2B14155552671", "%2b14155552671") == [elsewhere]
    assert erasure.erase(pipe.db, PERSON, clock=pipe.clock)["alerts"] == 1
    with pipe.db.read() as conn:
        assert list(conn.execute(sa.select(alerts.c.sid)).scalars()) == [longer]


NATIONAL = "07700900123"  # as an SMSC sent it (TON national): kept as it came (carriers/smpp.py)


def test_a_number_kept_in_national_form_is_erased_as_written(pipe: Pipeline) -> None:
    with pipe.db.write() as conn:
        intake = receive(
            conn,
            InboundSms(carrier="smpp-uk", sender=NATIONAL, recipient=SENDER, body="national hello"),
            now=pipe.clock.now(),
            base_url="https://pigeon.example.com",
        )
    assert intake.message_sid is not None
    assert erasure.number_of(f" {NATIONAL} ") == NATIONAL
    assert erasure.erase(pipe.db, erasure.number_of(NATIONAL), clock=pipe.clock)["messages"] == 1
    assert naming(pipe.db, NATIONAL, "national hello") == []


@pytest.mark.parametrize("garbage", ["0770090012x", "07700 900123", "(415) 555-2671", "+", "", "0" * 21, "١٢٣٤٥٦٧"])
def test_what_is_no_number_is_refused(garbage: str) -> None:
    with pytest.raises(ValueError, match=r"E\.164"):
        erasure.number_of(garbage)


def test_with_account_its_texts_to_the_accounts_numbers_that_took_none_go(pipe: Pipeline) -> None:
    """Kept as unroutable, but sent to one of the account's numbers (one that cannot take SMS):
    the account's data. Those to numbers nobody holds belong to no account: only an erasure
    across every account takes them."""
    now = pipe.clock.now()
    with pipe.db.write() as conn:
        number_use.provision(conn, account_sid=pipe.account_sid, phone_number="+14155550122", sms=False, now=now)
        for to in ("+14155550122", "+14155559999"):
            receive(
                conn,
                InboundSms(carrier="simulator", sender=PERSON, recipient=to, body="hello?"),
                now=now,
                base_url="https://pigeon.example.com",
            )
        keep_unroutable(conn, from_=OTHER, to="+14155550122", body="hi", carrier="simulator", reason="-", now=now)
    assert erasure.survey(pipe.db, PERSON, account="AC" + "0" * 32).unroutable == 0
    assert erasure.survey(pipe.db, PERSON, account=pipe.account_sid).unroutable == 1
    assert erasure.erase(pipe.db, PERSON, clock=pipe.clock, account=pipe.account_sid)["unroutable"] == 1
    with pipe.db.read() as conn:
        left = conn.execute(sa.select(unroutable_inbound.c.from_, unroutable_inbound.c.to)).all()
    assert sorted(map(tuple, left)) == [(PERSON, "+14155559999"), (OTHER, "+14155550122")]
