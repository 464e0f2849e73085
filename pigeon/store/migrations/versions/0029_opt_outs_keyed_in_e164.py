"""opt_outs: a recipient that a carrier wrote nationally is keyed in E.164

Data only. A STOP whose sender the carrier wrote as people write it at home (SMPP TON 0:
"07700900123") was kept under that spelling, which no send (its To in E.164) matched: the
recipient was texted again. The intake now keys it in E.164, read in the country of the number
it texted (pigeon.domain.numbers.sender_as_keyed); this does the same for the rows from before,
so that the create check, the dispatcher's and START, all exact matches, find them.

The country is the one of the number the STOP was texted to (its inbound message), else of the
number the opt-out names, else of the Messaging Service's numbers when they are all of one. A
recipient that makes no number there, or whose country cannot be told, stays as it is. Where
the pair has a row in E.164 already, the newer of the two is kept. Nothing comes back on a
downgrade: the E.164 key is the right one for the release before as well.

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-14 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pigeon.domain import numbers

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None

# The tables as this revision knows them, not as the release's metadata may later have them.
_opt_outs = sa.table(
    "opt_outs",
    sa.column("id", sa.BigInteger),
    sa.column("account_sid", sa.String),
    sa.column("sender", sa.String),
    sa.column("recipient", sa.String),
    sa.column("scope", sa.String),
    sa.column("inbound_message_sid", sa.String),
    sa.column("date_created", sa.DateTime),
)
_messages = sa.table("messages", sa.column("sid", sa.String), sa.column("to", sa.String))
_numbers = sa.table(
    "phone_numbers",
    sa.column("phone_number", sa.String),
    sa.column("iso_country", sa.String),
    sa.column("messaging_service_sid", sa.String),
)
o, m, n = _opt_outs.c, _messages.c, _numbers.c


def _countries(conn: sa.Connection, where: sa.ColumnElement[bool]) -> set[str | None]:
    found = conn.execute(sa.select(n.phone_number, n.iso_country).where(where)).all()
    return {numbers.region_of(phone) or iso for phone, iso in found}


def _country(conn: sa.Connection, row: sa.RowMapping) -> str | None:
    """Where the recipient texted the STOP to, as far as the store still tells: the number of
    its inbound message, else the number the opt-out names, else its service's numbers."""
    sid = row["inbound_message_sid"]
    texted = conn.execute(sa.select(m.to).where(m.sid == sid)).scalar() if sid else None
    if texted is not None:
        countries = _countries(conn, n.phone_number == texted) or {numbers.region_of(texted)}
    elif row["scope"] == "service":
        countries = _countries(conn, n.messaging_service_sid == row["sender"])
    else:
        countries = _countries(conn, n.phone_number == row["sender"]) or {numbers.region_of(row["sender"])}
    countries.discard(None)
    return countries.pop() if len(countries) == 1 else None


def upgrade() -> None:
    conn = op.get_bind()
    national = sa.select(o.id, o.account_sid, o.sender, o.recipient, o.scope, o.inbound_message_sid, o.date_created)
    for row in conn.execute(national.where(~o.recipient.startswith("+"))).mappings().all():
        keyed = numbers.sender_as_keyed(row["recipient"], _country(conn, row))
        if keyed == row["recipient"]:
            continue
        pair = (o.account_sid == row["account_sid"], o.sender == row["sender"], o.recipient == keyed)
        held = conn.execute(sa.select(o.id, o.date_created).where(*pair)).first()
        if held is not None and held.date_created >= row["date_created"]:
            conn.execute(_opt_outs.delete().where(o.id == row["id"]))
            continue
        if held is not None:
            conn.execute(_opt_outs.delete().where(o.id == held.id))
        conn.execute(_opt_outs.update().where(o.id == row["id"]).values(recipient=keyed))


def downgrade() -> None:
    pass  # the E.164 key stays: sends are written so under every release
