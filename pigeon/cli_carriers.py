"""`pigeon carriers`: each carrier bind as the running workers see it, and the bind leases.

Two views of the store: the status each worker process publishes every few seconds
(`Workers._report_status`: state, window in use, throughput, last error; the process's
lease or "standby"), and the carrier's bind slots (`pigeon.store.binds`): which process holds
each, until when, and how its bind is. A slot whose lease ran out unrenewed is "expired": its
holder stopped renewing (it died, or cannot reach the store) and another process takes it
over. No password is in either: the status holds none (`CarrierStatus`), nor do the slots.

`pigeon.cli` mounts `carriers_cmd`.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from pigeon.cli_store import open_store
from pigeon.cli_tables import print_table, whole

# Markup off: what is printed is mostly names, numbers and texts from users and carriers, in
# which Rich would read "[ops]" as markup and drop it. Styled lines pass markup=True.
out = Console(markup=False)
err = Console(stderr=True, markup=False)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
FRESH = timedelta(seconds=30)  # a process that has not reported for this long is not shown


def carriers_cmd(as_json: JsonFlag = False) -> None:
    """Each carrier bind as the running workers see it (state, window in use, throughput, last
    error), and each carrier's bind leases: which process holds which slot, until when, bound or not."""
    from pigeon.ports import SystemClock
    from pigeon.store.binds import list_slots
    from pigeon.store.carriers import list_status

    db = open_store()
    now = SystemClock().now()
    with db.read() as conn:
        rows = list_status(conn, fresh_within=FRESH, now=now)
        slots = [slot_view(s, now) for s in list_slots(conn)]
    if as_json:
        sys.stdout.write(json.dumps(as_rows(rows, slots), indent=2, default=str) + "\n")
        return
    if rows:
        print_table(out, status_table(rows))
    else:
        out.print(
            "No worker has reported carrier status in the last 30 s: is `pigeon serve` (or `pigeon worker`) running?"
        )
    if slots:
        print_table(out, leases_table(slots, now))


def slot_view(row: dict[str, Any], now: datetime) -> dict[str, Any]:
    """One slot as shown: its state is "free", "expired", or the holder's bind state."""
    expires = row["expires_at"]
    if row["holder"] is None:
        state = "free"
    elif expires is not None and expires <= now:
        state = "expired"
    else:
        state = row["state"] or "binding"
    return {
        "carrier": row["carrier"],
        "slot": row["slot"],
        "holder": row["holder"],
        "state": state,
        "acquired_at": row["acquired_at"],
        "renewed_at": row["renewed_at"],
        "expires_at": expires,
    }


def as_rows(rows: list[dict[str, Any]], slots: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The JSON: one row per carrier per reporting process, as before, each with its carrier's
    ``slots``; a carrier with slots that no live process reports gets a row with no holder."""
    by_carrier: dict[str, list[dict[str, Any]]] = {}
    for s in slots:
        by_carrier.setdefault(s["carrier"], []).append({k: v for k, v in s.items() if k != "carrier"})
    listed = [
        {
            "carrier": r["carrier"],
            "holder": r["holder"],
            "updated_at": r["updated_at"],
            **r["status"],
            "slots": by_carrier.get(r["carrier"], []),
        }
        for r in rows
    ]
    reported = {r["carrier"] for r in rows}
    listed += [
        {"carrier": c, "holder": None, "updated_at": None, "bound": None, "slots": s}
        for c, s in by_carrier.items()
        if c not in reported
    ]
    return listed


def status_table(rows: list[dict[str, Any]]) -> Table:
    table = Table("carrier", whole("process"), "bound", "lease", "binds", "window", "throughput/s", "last error")
    for r in rows:
        st = r["status"]
        several = ", " in str(st.get("address", ""))  # backup_hosts: say where each bind is
        binds = (
            ", ".join(
                f"{b.get('role', b.get('kind', ''))}:{b.get('state', '')}"
                + (f"@{b.get('address', '?')}" if several else "")
                for b in st.get("binds", [])
            )
            or "-"
        )
        window = f"{st.get('window_in_use', 0)}/{st.get('window_size', '-')}" if "window_size" in st else "-"
        rate = f"{st.get('throughput_recent', 0):.1f}" if "throughput_recent" in st else "-"
        lease = st.get("lease") or {}
        held = f"slot {lease['slot']} of {lease.get('slots', '?')}" if lease.get("slot") else lease.get("state", "-")
        table.add_row(
            r["carrier"],
            r["holder"],
            str(st.get("bound")),
            held,
            binds,
            window,
            rate,
            str(st.get("last_error") or ""),
        )
    return table


def leases_table(slots: list[dict[str, Any]], now: datetime) -> Table:
    table = Table("carrier", "slot", whole("holder"), "state", "lease", title="bind leases")
    for s in slots:
        expires = s["expires_at"]
        if expires is None:
            lease = "-"
        elif expires > now:
            lease = f"expires in {(expires - now).total_seconds():.0f} s"
        else:
            lease = f"ran out {(now - expires).total_seconds():.0f} s ago"
        table.add_row(s["carrier"], str(s["slot"]), s["holder"] or "-", s["state"], lease)
    return table
