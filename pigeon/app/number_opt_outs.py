"""The opt-outs a number keeps when it leaves its Messaging Service.

A STOP texted to a number of a Messaging Service opts the person out of the whole service: it
is stored with the service as its sender (scope ``service``), and a send is checked against
the opt-outs of the number and of its current service. Once the number leaves the service
(taken out of its pool, `pigeon.app.services`; the service deleted; the number released,
`pigeon.app.numbers`), the service's opt-outs would no longer cover it, and whoever said STOP
to that very number would be texted from it again. So, in the same transaction,
`keep_service_opt_outs` gives the number an opt-out of its own (scope ``number``) for each
recipient opted out of the service, which included it, with the original keyword, time and
inbound message; a pair opted out of the number already keeps its row. START to the number
lifts it, as it lifts any opt-out of the number (`pigeon.app.inbound`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import Connection

from pigeon.store import optouts as optout_store


def keep_service_opt_outs(conn: Connection, number: Mapping[str, Any]) -> int:
    """Copy the opt-outs of `number`'s Messaging Service as the number's own, before it leaves
    the service. Returns how many it made (none when it is in no service)."""
    service_sid = number.get("messaging_service_sid")
    if not service_sid:
        return 0
    return optout_store.copy_as_number_scope(
        conn, account_sid=str(number["account_sid"]), sender=str(service_sid), number=str(number["phone_number"])
    )
