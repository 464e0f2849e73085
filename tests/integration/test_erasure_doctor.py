"""The doctor after `pigeon erase NUMBER --yes`, on both stores: asked about the number or
about one of its messages, it says that they were erased and when, from the erasure's record
(pigeon/store/erasure_log.py), instead of "the application never asked" or "no such message";
the record holds neither the number nor the SIDs; a number never erased is as before."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from pigeon.app import accounts as account_use
from pigeon.app import diagnose, erasure
from pigeon.app.inbound import receive
from pigeon.cli import app
from pigeon.domain.diagnosis import Report
from pigeon.ports import InboundSms
from pigeon.store import erasure as erasure_store
from pigeon.store import erasure_log
from pigeon.store.tables import erased_messages, erasures, messages
from pigeon.testing import RecordingWebhookSender
from tests.integration.pipeline import SENDER, Pipeline
from tests.integration.test_diagnose import BASE_URL, post
from tests.integration.test_webhook_outbox import run_once, worker

#: Its last four digits make the built-in network answer "unreachable handset" (30003).
PERSON = "+14155550101"
NEVER_ERASED = "+14155550177"


def undelivered(pipe: Pipeline, to: str) -> str:
    """A send through the API's accept path (logged), taken to its receipt (undelivered, for
    PERSON), its callbacks out: a message at rest."""
    sid = post(pipe, to)
    assert sid is not None and pipe.dispatch() == 1
    pipe.receipts(advance=10)
    assert pipe.status(sid) == ("undelivered" if to == PERSON else "delivered")
    hooks = worker(pipe.db, RecordingWebhookSender(), pipe.clock)
    while run_once(hooks):
        pass
    return sid


def pigeon(*args: str) -> tuple[int, str]:
    done = CliRunner().invoke(app, list(args))
    assert done.exception is None or isinstance(done.exception, SystemExit), done.output
    return done.exit_code, done.stdout


def doctor(pipe: Pipeline, *args: str) -> dict[str, Any]:
    """`pigeon doctor message ARGS --json` as the pipeline's account."""
    code, printed = pigeon("doctor", "message", *args, "--account", pipe.account_sid, "--json")
    report: dict[str, Any] = json.loads(printed)
    assert code == (1 if any(f["severity"] == "error" for f in report["findings"]) else 0), printed
    return report


def causes(report: dict[str, Any] | Report) -> list[str]:
    if isinstance(report, Report):
        return report.causes()
    return [f["cause"] for f in report["findings"]]


def record(pipe: Pipeline) -> list[dict[str, Any]]:
    with pipe.db.read() as conn:
        return [dict(r) for r in conn.execute(sa.select(erasures).order_by(erasures.c.id)).mappings()]


def test_the_doctor_says_when_a_number_and_its_messages_were_erased(
    pipe: Pipeline, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIGEON_DATABASE_URL", database_url)
    sids = [undelivered(pipe, PERSON), undelivered(pipe, PERSON)]
    kept = undelivered(pipe, "+14155550199")

    code, said = pigeon("erase", PERSON, "--yes")
    assert code == 0, said
    assert "erasure is on record" in " ".join(said.split())
    [erased] = record(pipe)
    assert erased["finished_at"] is not None and erased["messages"] == 2 and erased["requests"] == 2
    assert erased["erased_by"].startswith("pigeon erase")
    finished = erased["finished_at"].isoformat().replace("+00:00", "Z")

    by_number = doctor(pipe, "--to", PERSON)
    assert causes(by_number) == ["message_erased"]  # not never_requested: that would be untrue
    [row] = [e for e in by_number["findings"][0]["evidence"] if e["source"] == "erasure"]
    assert row["finished_at"] == finished and row["messages_erased"] == 2 and row["scope"] == "every account"
    assert erased["finished_at"].strftime("%Y-%m-%d %H:%M:%S") in by_number["findings"][0]["summary"]

    for sid in sids:
        by_sid = doctor(pipe, sid)
        assert causes(by_sid) == ["message_erased"], by_sid
        [finding] = by_sid["findings"]
        assert f"Message {sid} was erased " in finding["summary"] and "no DELETE" not in json.dumps(finding)
        assert [e["finished_at"] for e in finding["evidence"] if e["source"] == "erasure"] == [finished]

    assert causes(doctor(pipe, "--to", NEVER_ERASED)) == ["never_requested"]  # never erased: as before
    assert doctor(pipe, kept)["subject"]["message_sid"] == kept  # another number's message is still there

    # The record keeps neither the number (in any spelling) nor the SIDs of its messages.
    with pipe.db.read() as conn:
        stored = [
            str(v)
            for table in (erasures, erased_messages)
            for row in conn.execute(sa.select(table)).mappings()
            for v in row.values()
        ]
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(messages).where(messages.c.to == PERSON)).scalar() == 0
        )
    assert len(stored) == len(erasures.c) + 2 * len(erased_messages.c)
    for text in ("4155550101", *[sid[2:] for sid in sids]):
        assert not any(text in value for value in stored), text


def recipient(pipe: Pipeline, account_sid: str, to: str, since: datetime) -> Report:
    with pipe.db.read() as conn:
        return diagnose.diagnose_recipient(conn, account_sid, to, since, now=pipe.clock.now())


def test_an_erasure_answers_only_the_accounts_it_covered(pipe: Pipeline) -> None:
    """With --account, the account and its subaccounts: another account asking about the
    number is told what its own store says, and a SID of the erased set is not its message."""
    now = pipe.clock.now()
    with pipe.db.write() as conn:
        sub = account_use.create_subaccount(conn, pipe.account_sid, friendly_name="branch", now=now)["sid"]
        other = account_use.create_account(conn, friendly_name="other", now=now)["sid"]
    sid = undelivered(pipe, PERSON)
    erasure.erase(pipe.db, PERSON, clock=pipe.clock, account=pipe.account_sid, by="test")
    since = now - timedelta(hours=1)
    assert causes(recipient(pipe, pipe.account_sid, PERSON, since)) == ["message_erased"]
    of_sub = recipient(pipe, sub, PERSON, since)
    assert causes(of_sub) == ["message_erased"]  # covered by its parent's erasure, none of its own
    assert [e["messages_erased"] for e in of_sub.findings[0].evidence] == [0]
    assert causes(recipient(pipe, other, PERSON, since)) == ["never_requested"]
    with pipe.db.read() as conn:
        assert causes(diagnose.diagnose_message(conn, other, sid, now=pipe.clock.now())) == ["message_not_found"]


def test_an_erasure_before_the_window_leaves_never_requested_true(pipe: Pipeline) -> None:
    undelivered(pipe, PERSON)
    erasure.erase(pipe.db, PERSON, clock=pipe.clock)
    erased_at = pipe.clock.now()
    pipe.clock.advance(3600)
    report = recipient(pipe, pipe.account_sid, PERSON, erased_at + timedelta(seconds=1))
    assert causes(report) == ["never_requested"]  # nothing since the erasure: true
    assert any("before this window" in advice for advice in report.findings[0].advice)
    assert causes(recipient(pipe, pipe.account_sid, PERSON, erased_at - timedelta(seconds=1))) == ["message_erased"]


def test_blocked_and_duplicates_after_an_erasure(pipe: Pipeline) -> None:
    """The opt-out stays (unlinked from the STOP that was erased): blocked still says why sends
    are refused. Duplicates cannot compare what went: no clean result, and it says why."""
    with pipe.db.write() as conn:
        receive(
            conn,
            InboundSms(carrier="simulator", sender=PERSON, recipient=SENDER, body="STOP"),
            now=pipe.clock.now(),
            base_url=BASE_URL,
        )
    post(pipe, PERSON)  # refused: 21610
    pipe.dispatch()  # the automatic reply to STOP goes out, so the erasure can take it
    pipe.receipts(advance=10)
    hooks = worker(pipe.db, RecordingWebhookSender(), pipe.clock)
    while run_once(hooks):
        pass
    assert erasure.erase(pipe.db, PERSON, clock=pipe.clock)["messages"] == 2
    with pipe.db.read() as conn:
        blocked = diagnose.diagnose_blocked(conn, pipe.account_sid, PERSON, SENDER, now=pipe.clock.now())
        dupes = diagnose.diagnose_duplicates(conn, pipe.account_sid, PERSON, now=pipe.clock.now())
    assert causes(blocked) == ["opted_out"]
    assert [e["inbound_message_sid"] for e in blocked.findings[0].evidence if e["source"] == "opt_out"] == [None]
    assert causes(dupes) == ["message_erased"] and dupes.checks[0]["ok"] is None
    with pipe.db.read() as conn:
        clean = diagnose.diagnose_duplicates(conn, pipe.account_sid, NEVER_ERASED, now=pipe.clock.now())
    assert causes(clean) == [] and clean.checks[0]["ok"] is True


def test_an_erasure_cut_short_is_on_record_unfinished_and_a_second_run_finishes_it(pipe: Pipeline) -> None:
    """Stopped after its first chunk (the process killed): the message that went is on record,
    and the doctor says the erasure has not finished and how to finish it. Run again, the same
    erasure goes on, and is finished."""
    first, second = undelivered(pipe, PERSON), undelivered(pipe, PERSON)
    with pipe.db.write() as conn:  # what `erase` writes before anything goes, then its first chunk
        started = erasure_log.begin(conn, PERSON, account=None, at=pipe.clock.now(), by="test")
        assert erasure_store.erase_messages(conn, [first], record=started) == 1
    pipe.clock.advance(60)

    def about(sid: str) -> Report:
        with pipe.db.read() as conn:
            return diagnose.diagnose_message(conn, pipe.account_sid, sid, now=pipe.clock.now())

    cut = about(first)
    assert causes(cut) == ["message_erased"] and "has not finished" in cut.findings[0].summary
    assert any("again finishes it" in advice for advice in cut.findings[0].advice)
    assert causes(about(second)) != ["message_erased"]  # not erased yet: it is still there

    assert erasure.erase(pipe.db, PERSON, clock=pipe.clock)["messages"] == 1
    [finished] = record(pipe)
    assert (finished["id"], finished["messages"], finished["finished_at"]) == (started, 2, pipe.clock.now())
    for sid in (first, second):
        report = about(sid)
        assert causes(report) == ["message_erased"], report
        assert f"finished at {pipe.clock.now():%Y-%m-%d %H:%M:%S} UTC (test)" in report.findings[0].summary
