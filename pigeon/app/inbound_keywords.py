"""STOP, START and HELP texted to a number: the opt-out change and the automatic reply, part of
the inbound intake's transaction (`pigeon.app.inbound`).

A keyword opts the pair out or back in (the whole Messaging Service when the number is in
one) and gets its automatic reply. A standalone short code is left alone, as on Twilio: its
application handles the keyword itself, so nothing is recorded and nothing answers.

Both timelines say what happened: the inbound message's ``keyword`` entry names the reply
(``reply_sid``, or ``reply_error`` with the code that refused it), and the reply's ``reply_to``
entry names the inbound message, as a reply from the application's TwiML does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from pigeon.app.accept_batch import write_new_messages
from pigeon.app.send import SendRequest, prepare_message
from pigeon.domain.errors import ApiError
from pigeon.domain.optout import DEFAULT_REPLIES, KeywordKind, classify
from pigeon.domain.status import Direction
from pigeon.store import alerts as alert_store
from pigeon.store import optouts as optout_store
from pigeon.store.messages import NewMessage, add_event

Row = dict[str, Any]

_REPLY_COLUMNS = {
    KeywordKind.OPT_OUT: "opt_out_reply",
    KeywordKind.OPT_IN: "opt_in_reply",
    KeywordKind.HELP: "help_reply",
}


@dataclass(frozen=True)
class Keyword:
    """A text that is a keyword: the `word` as texted, its `kind`, and whether Pigeon handles it
    (False for a standalone short code's, left to its application)."""

    word: str
    kind: KeywordKind
    handled: bool


def keyword_of(body: str, number: Row, service: Row | None) -> Keyword | None:
    """The keyword that `body`, texted to `number` (in `service`, if any), is; None if none."""
    match = classify(body)
    if match is None:
        return None
    kind, word = match
    # Twilio leaves STOP/HELP on standalone short codes to the customer's application.
    return Keyword(word, kind, handled=not (number["number_type"] == "short_code" and service is None))


def opt_out_type(keyword: Keyword | None, service: Row | None) -> str | None:
    """The webhook's OptOutType (and the inbound event's optOutType): the keyword's kind when
    Pigeon handles it for a number of a Messaging Service. Twilio sends it only for a service's
    senders (with Advanced Opt-Out, which every Pigeon service has), telling the application
    that the keyword was taken care of; elsewhere it is absent, and the application handles
    what it gets as it would on Twilio."""
    return str(keyword.kind) if keyword is not None and keyword.handled and service is not None else None


def _keyword_reply(
    conn: Connection, number: Row, service: Row | None, new: NewMessage, kind: KeywordKind, now: datetime
) -> tuple[str | None, int | None]:
    """The automatic reply to STOP/START/HELP, sent even to a recipient who just opted out:
    (its SID, None), or (None, the code that refused it, which is an alert)."""
    text = (service or {}).get(_REPLY_COLUMNS[kind]) or DEFAULT_REPLIES[kind]
    inbound_sid = str(new.message["sid"])
    req = SendRequest(
        to=new.message["from_"],
        from_=number["phone_number"],
        body=text,
        direction=Direction.OUTBOUND_REPLY,
        keyword_reply=True,
    )
    try:
        reply = prepare_message(conn, number["account_sid"], req, now)
    except ApiError as exc:
        alert_store.add_alert(
            conn,
            account_sid=number["account_sid"],
            error_code=exc.code,
            at=now,
            resource_sid=inbound_sid,
            text=f"The automatic {kind} reply to {new.message['from_']} could not be sent: {exc.message}",
        )
        return None, exc.code
    write_new_messages(conn, [reply])  # with its queued event, as a send's
    reply_sid = str(reply.message["sid"])
    add_event(
        conn,
        message_sid=reply_sid,
        account_sid=number["account_sid"],
        at=now,
        kind="reply_to",
        detail={"inbound_message_sid": inbound_sid, "keyword": str(kind)},
    )
    return reply_sid, None


def apply_keyword(
    conn: Connection, keyword: Keyword, number: Row, service: Row | None, new: NewMessage, now: datetime
) -> str | None:
    """Opt the pair out or in for a handled keyword, and answer it; the reply's SID, if sent."""
    kind, word = keyword.kind, keyword.word
    account_sid, recipient = number["account_sid"], new.message["from_"]
    sender, scope = (service["sid"], "service") if service else (number["phone_number"], "number")
    if kind is KeywordKind.OPT_OUT:
        optout_store.record_opt_out(
            conn,
            account_sid=account_sid,
            sender=sender,
            recipient=recipient,
            scope=scope,
            keyword=word,
            inbound_message_sid=new.message["sid"],
            now=now,
        )
    elif kind is KeywordKind.OPT_IN:
        # Both scopes: an opt-out of this number made before it joined its service (or
        # imported so) blocks its sends as well, and START must lift it too.
        for blocked in {sender, number["phone_number"]}:
            optout_store.remove_opt_out(conn, account_sid=account_sid, sender=blocked, recipient=recipient)
    reply_sid, refused = _keyword_reply(conn, number, service, new, kind, now)
    detail: dict[str, Any] = {"keyword": word, "kind": str(kind), "scope": scope, "sender": sender}
    detail.update({"reply_sid": reply_sid} if reply_sid else {"reply_error": refused})
    add_event(conn, message_sid=new.message["sid"], account_sid=account_sid, at=now, kind="keyword", detail=detail)
    return reply_sid
