"""accounts.suspended_by: who suspended the account, the operator or its main account

A parent's credentials could set Status=active on a subaccount that the operator had
suspended (`pigeon accounts status AC… --suspend`), undoing the suspension. The API now
refuses a parent's status change of a subaccount the operator suspended (21478); the operator
alone lifts it. Accounts suspended before this revision carry no mark (NULL): who suspended
them is not known, and they stay as they were, which a parent may change.

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-15 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("accounts", sa.Column("suspended_by", sa.String(16), nullable=True))


def downgrade() -> None:
    # Not batch mode: on SQLite it copies the table and drops the old one, which the rows of
    # every table referring to an account (foreign keys on) refuse. Both stores drop a plain
    # column in place (SQLite since 3.35).
    op.drop_column("accounts", "suspended_by")
