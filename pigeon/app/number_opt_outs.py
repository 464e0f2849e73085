"""The opt-outs a number keeps when it leaves its Messaging Service or its account.

A STOP texted to a number of a Messaging Service opts the person out of the whole service: it
is stored with the service as its sender (scope ``service``), and a send is checked against
the opt-outs of the number and of its current service. Once the number leaves the service
(taken out of its pool, `pigeon.app.services`; the service deleted; the number released,
`pigeon.app.numbers`, or moved to another account, `pigeon.app.number_transfer`), the
service's opt-outs would no longer cover it, and whoever said STOP to that very number would
be texted from it again. So, in the same transaction, `keep_service_opt_outs` gives the number
an opt-out of its own (scope ``number``) for each recipient opted out of the service, which
included it, with the original keyword, time and inbound message; a pair opted out of the
number already keeps its row. START to the number lifts it, as it lifts any opt-out of the
number (`pigeon.app.inbound`), but for a short code left in no service: Pigeon leaves its
keywords to its application, as Twilio does, and its copies stay (a person who said STOP to
the service must not be texted from it) until an operator removes them once the person opted
back in there (`pigeon.app.optouts.remove`), or it joins a service and START is texted to it.

Opt-outs are rows of an account. A number moved to another account of its family takes its
own opt-outs there too (`carry_opt_outs`): whoever said STOP to it must not be texted from it
by its new owner either. The old account keeps its rows, the history of its own sends.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import Connection

from pigeon.store import optouts as optout_store


def keep_service_opt_outs(conn: Connection, number: Mapping[str, Any], *, to_account_sid: str | None = None) -> int:
    """Copy the opt-outs of `number`'s Messaging Service as the number's own (on
    `to_account_sid`, by default its account), before it leaves the service. Returns how many
    it made (none when it is in no service)."""
    service_sid = number.get("messaging_service_sid")
    if not service_sid:
        return 0
    return optout_store.copy_as_number_scope(
        conn,
        account_sid=str(number["account_sid"]),
        sender=str(service_sid),
        number=str(number["phone_number"]),
        to_account_sid=to_account_sid,
    )


def carry_opt_outs(conn: Connection, number: Mapping[str, Any], *, to_account_sid: str) -> int:
    """Give `number` on the account it moves to the opt-outs it has on its old account: its
    own, and its Messaging Service's (which it leaves). Returns how many it made."""
    phone = str(number["phone_number"])
    own = optout_store.copy_as_number_scope(
        conn, account_sid=str(number["account_sid"]), sender=phone, number=phone, to_account_sid=to_account_sid
    )
    return own + keep_service_opt_outs(conn, number, to_account_sid=to_account_sid)
