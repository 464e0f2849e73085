"""Texts a number received that no application was told of, for want of a webhook.

Each such text has a `no_webhook` entry in its timeline (and an 11200 alert, which the error
log drops sooner). While the number still has no webhook they are part of `no_webhook`; once a
webhook is set they are still lost to the application, and `received_without_webhook` says so:
Pigeon does not hand a text to a webhook set after it came.
"""

from __future__ import annotations

from typing import Any

from pigeon.domain.diagnosis.facts import NumberFacts
from pigeon.domain.diagnosis.model import Finding, message_row, when


def untold_said(f: NumberFacts) -> str:
    """How many texts reached no application, since when, and the latest."""
    count = max(f.untold_count, len(f.unannounced))
    said = f"{count} text(s) since {when(f.since)} reached no application"
    if f.untold:
        latest = f.untold[0]
        said += (
            f": the first at {when(f.untold_first)}, the latest at {when(latest.get('date_created'))} "
            f"({latest.get('sid')} from {latest.get('from_')})"
        )
    return said + "."


def untold_rows(f: NumberFacts) -> list[dict[str, Any]]:
    """The newest of those texts, as evidence."""
    return [message_row(m) for m in f.untold]


def received_without_webhook(f: NumberFacts) -> Finding:
    url = f.target.url if f.target is not None else None
    return Finding(
        cause="received_without_webhook",
        severity="warning",
        summary=f"{f.phone_number} has a webhook now ({url}), but it had none when some texts came: "
        + untold_said(f)
        + " They are stored; your application never heard of them.",
        evidence=untold_rows(f),
        advice=[
            "Pigeon does not send a text to a webhook set after the text arrived: read those texts from the "
            f"message log (`pigeon logs --to {f.phone_number}`, or the Messages API with To) if your "
            "application needs them.",
            "When you change a number's webhook or Messaging Service, set the new URL before you clear the old "
            "one, so that no text comes while there is none.",
        ],
    )
