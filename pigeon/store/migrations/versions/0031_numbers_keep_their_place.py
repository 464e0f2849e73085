"""phone_numbers keep what the inventory knew of them (location, address requirements) and
where they came from (origin); short codes' countries in upper case

A bought number took its inventory row away with it, so a release restocked it without its
locality, region, postal code, coordinates, rate center and LATA, and with no address
requirement; the number's own JSON always said "none" and origin "hosted". The columns below
keep those with the number. Numbers bought before this revision kept nothing: their columns
stay empty (address_requirements "none", as the API showed them until now).

origin: "twilio" for a number bought from the inventory, "hosted" for one an operator put on an
account. Rows from before cannot be told apart (both kinds left no inventory row), so they
stay "hosted", which is what the API said of them so far.

iso_country: a short code's country binds it (it sends to and takes texts from that country
only), compared in upper case; `pigeon numbers add --country us` stored it as typed and every
send from the code was refused. Upper-cased here for every number. A short code with no
country, or with one that is no ISO country ("USA"), cannot be fixed without guessing:
`pigeon doctor number` warns of it (pigeon.domain.diagnosis.number).

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-15 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None

_numbers = sa.table("phone_numbers", sa.column("iso_country", sa.String))


def upgrade() -> None:
    # Written out, not looped: `pigeon db downgrade` reads what each revision adds and drops
    # from its source (pigeon.store.schema).
    op.add_column("phone_numbers", sa.Column("locality", sa.String(64), nullable=True))
    op.add_column("phone_numbers", sa.Column("region", sa.String(64), nullable=True))
    op.add_column("phone_numbers", sa.Column("postal_code", sa.String(16), nullable=True))
    op.add_column("phone_numbers", sa.Column("rate_center", sa.String(64), nullable=True))
    op.add_column("phone_numbers", sa.Column("lata", sa.String(8), nullable=True))
    op.add_column("phone_numbers", sa.Column("latitude", sa.String(16), nullable=True))
    op.add_column("phone_numbers", sa.Column("longitude", sa.String(16), nullable=True))
    # Constant defaults: PostgreSQL adds the columns without rewriting the table.
    op.add_column(
        "phone_numbers", sa.Column("address_requirements", sa.String(8), nullable=False, server_default="none")
    )
    op.add_column("phone_numbers", sa.Column("origin", sa.String(8), nullable=False, server_default="hosted"))
    c = _numbers.c
    op.execute(
        _numbers.update()
        .where(c.iso_country.is_not(None), c.iso_country != sa.func.upper(c.iso_country))
        .values(iso_country=sa.func.upper(c.iso_country))
    )


def downgrade() -> None:
    with op.batch_alter_table("phone_numbers") as batch_op:
        batch_op.drop_column("origin")
        batch_op.drop_column("address_requirements")
        batch_op.drop_column("longitude")
        batch_op.drop_column("latitude")
        batch_op.drop_column("lata")
        batch_op.drop_column("rate_center")
        batch_op.drop_column("postal_code")
        batch_op.drop_column("region")
        batch_op.drop_column("locality")
