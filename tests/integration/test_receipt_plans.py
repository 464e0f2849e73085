"""Receipts find their parts by whole key on PostgreSQL, whatever the statistics say.

`carrier = … AND carrier_message_id IN (…)` was planned, without statistics (a table that grew
since its last ANALYZE, or autovacuum off), with the carrier alone as the index condition: every
part of that carrier read for each batch of receipts, a cost that grew with the store."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from pigeon.store import dispatch
from pigeon.store.engine import Database
from tests.integration.plans import postgresql_plans

CARRIER = "acme"


@pytest.mark.postgres
def test_receipts_find_and_mark_their_parts_by_whole_key_on_a_store_never_analysed(pg: Database) -> None:
    now = datetime.now(UTC)
    with pg.write() as conn:
        conn.exec_driver_sql("ALTER TABLE carrier_refs SET (autovacuum_enabled = false)")
        conn.execute(
            sa.text(
                "INSERT INTO carrier_refs (carrier, carrier_message_id, message_sid, account_sid, part_index,"
                " part_count, submitted_at) SELECT :carrier, 'id-' || g, 'SM' || lpad(to_hex(g), 32, '0'),"
                " 'AC' || repeat('1', 32), 0, 1, :now"
                " FROM generate_series(1, 20000) AS g"
            ),
            {"carrier": CARRIER, "now": now},
        )
    wanted = [f"id-{n}" for n in range(19900, 20001)] + ["id-none"]

    def lookup(statement: str) -> bool:
        return "carrier_refs" in statement and statement.lstrip().startswith("SELECT")

    with postgresql_plans(pg.engine, lookup) as plans, pg.write() as conn:
        found = dispatch.find_carrier_refs(conn, [(CARRIER, i) for i in wanted])
        dispatch.set_part_receipts(conn, [(CARRIER, i, "DELIVRD") for i in wanted], at=now)

    assert sorted(found) == sorted((CARRIER, i) for i in wanted if i != "id-none")
    [(_, plan)] = plans
    # One probe per id on the primary key, both columns in the index condition.
    assert "Function Scan on unnest" in plan and "Index Scan using pk_carrier_refs" in plan, plan
    assert "(carrier_message_id)::text = (wanted.key)::text" in plan and "Materialize" not in plan, plan
    with pg.read() as conn:
        marked = conn.execute(
            sa.text("SELECT count(*) FROM carrier_refs WHERE receipt_stat = 'DELIVRD' AND receipt_at IS NOT NULL")
        ).scalar_one()
    assert marked == 101
