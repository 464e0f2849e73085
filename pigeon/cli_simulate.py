"""`pigeon simulate`: drive the built-in carrier network from the command line.

    pigeon simulate inbound --from N --to N --body TEXT [--media-url URL]
        a simulated phone texts one of your numbers: opt-out keywords, the webhook and the
        replies all run as for a carrier's message (pigeon/app/inbound.py). Exit status 1
        when no account took it (a number no account holds, say): it is kept as unroutable.

`pigeon.cli` mounts `simulate_app`.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from pigeon import bootstrap
from pigeon.cli_store import fail, open_store, settings_or_exit
from pigeon.domain.errors import ApiError
from pigeon.ports import SystemClock

simulate_app = typer.Typer(help="Drive the built-in carrier network.", no_args_is_help=True)

# Markup off: what is printed is mostly names, numbers and texts from users and carriers, in
# which Rich would read "[ops]" as markup and drop it. Styled lines pass markup=True.
out = Console(markup=False)
clock = SystemClock()

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


@simulate_app.command("inbound")
def simulate_inbound(
    from_: Annotated[str, typer.Option("--from", help="The handset's number.")],
    to: Annotated[str, typer.Option("--to", help="One of your numbers.")],
    body: Annotated[str, typer.Option("--body")],
    media_url: Annotated[list[str] | None, typer.Option("--media-url", help="Repeat for several.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Text one of your numbers from a simulated phone: keywords, webhook and replies all run.
    Exit status 1 when no account took the text (kept as unroutable, with the reason)."""
    from pigeon.app.inbound import receive
    from pigeon.app.send_request import check_media_urls
    from pigeon.ports import InboundSms

    media_urls = tuple(media_url or ())
    try:
        check_media_urls(media_urls)  # http(s) only, as the API's handset: the console links them
    except ApiError as exc:
        raise fail(exc) from exc
    settings = settings_or_exit()
    db = open_store(settings)  # as it is: only serve, worker and db upgrade migrate a store
    sms = InboundSms(carrier="simulator", sender=from_, recipient=to, body=body, media_urls=media_urls)
    with db.write() as conn:
        intake = receive(
            conn, sms, now=clock.now(), base_url=settings.base_url, prices=bootstrap.price_table_for(settings)
        )
    result = {
        "message_sid": intake.message_sid,
        "account_sid": intake.account_sid,
        "keyword": intake.keyword,
        "webhook_queued": intake.webhook_queued,
        "reply_sids": list(intake.reply_sids),
        "unroutable_reason": intake.reason,
    }
    if as_json:
        _print_json(result)
    elif intake.message_sid is None:
        out.print(
            f"[yellow]not delivered to any account:[/yellow] {escape(intake.reason or '')}",
            highlight=False,
            markup=True,
        )
    if intake.message_sid is None:
        # Kept as unroutable, as a carrier's text would be; but what was asked for, a text to
        # one of your numbers, did not happen, and a script must be able to tell.
        raise typer.Exit(1)
    if as_json:
        return
    out.print(f"received as {intake.message_sid}", highlight=False)
    if intake.keyword:
        out.print(
            f"keyword {intake.keyword}; automatic reply {', '.join(intake.reply_sids) or 'none'}", highlight=False
        )
    out.print("the application's webhook is queued" if intake.webhook_queued else "no webhook is configured")
