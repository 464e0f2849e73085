"""`pigeon import twilio`: bring an account's numbers, short codes and Messaging Services (with
their webhooks and sender pools) over from Twilio, or from any server that speaks its API, into
a Pigeon account (pigeon/app/twilio_import.py says what comes and what does not).

It reads the source with the account's SID and auth token (TWILIO_ACCOUNT_SID and
TWILIO_AUTH_TOKEN, as the SDKs read them) and never prints the token. `--into AC…` names the
Pigeon account; `--same-account` makes one with the source's SID and auth token (unless it is
here), so that applications keep their credentials as well as their code, and with
`--with-subaccounts` each open subaccount too, under it. Without --yes it is a
dry run: the import runs and is rolled back, so it reports exactly what --yes would do. Exit
status 1 when a record was skipped (the list says why), 2 when the source cannot be read.
`pigeon.cli` mounts `import_app`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pigeon.cli_store import open_store, write_or_rehearse
from pigeon.cli_tables import print_table, whole

out = Console(markup=False)
err = Console(stderr=True, markup=False)

import_app = typer.Typer(help="Bring an account's set-up over from Twilio.", no_args_is_help=True)

PAGE_SIZE = 1000
TWILIO_API = "https://api.twilio.com"
TWILIO_MESSAGING = "https://messaging.twilio.com"


class SourceError(Exception):
    """The source could not be read; the message says what it answered."""


class TwilioSource:
    """Reads an account's records from the 2010-04-01 API and Messaging v1, following pages."""

    def __init__(self, client: httpx.Client, *, api_url: str, messaging_url: str, account_sid: str) -> None:
        self.client = client
        self.api = api_url.rstrip("/")
        self.messaging = messaging_url.rstrip("/")
        self.account = account_sid

    def _get(self, url: str) -> dict[str, Any]:
        try:
            r = self.client.get(url)
        except httpx.HTTPError as exc:
            raise SourceError(f"GET {url} failed: {exc}") from exc
        if r.status_code == 401:
            raise SourceError(f"the source refused the account SID and auth token (GET {url}: HTTP 401)")
        if r.status_code != 200:
            raise SourceError(f"GET {url}: HTTP {r.status_code} {r.text[:200]}")
        try:
            body = r.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise SourceError(f"GET {url}: the answer is not a JSON object")
        return body

    def _following(self, base: str, url: str | None, seen: set[str]) -> str | None:
        """The next page's URL, checked: on the source it was asked of (the credentials go with
        every request, and go nowhere else), and not a page already read (a source that sent
        the same page again would be read for ever)."""
        if url is None:
            return None
        if not url.startswith(base + "/"):
            raise SourceError(f"the source's next page is elsewhere ({url}); it is not followed")
        if url in seen:
            raise SourceError(f"the source sent the page {url} twice")
        seen.add(url)
        return url

    def _pages_2010(self, path: str, key: str) -> Iterator[dict[str, Any]]:
        return self.pages_2010_root(f"Accounts/{self.account}/{path}", key)

    def pages_2010_root(self, path: str, key: str) -> Iterator[dict[str, Any]]:
        """Every record of a 2010-04-01 list (`path` under /2010-04-01/), following its pages."""
        url: str | None = f"{self.api}/2010-04-01/{path}?PageSize={PAGE_SIZE}"
        seen: set[str] = set()
        while url:
            body = self._get(url)
            yield from body.get(key) or []
            following = body.get("next_page_uri")
            url = self._following(self.api, f"{self.api}{following}" if following else None, seen)

    def _pages_v1(self, path: str, key: str) -> Iterator[dict[str, Any]]:
        url: str | None = f"{self.messaging}/v1/{path}?PageSize={PAGE_SIZE}"
        seen: set[str] = set()
        while url:
            body = self._get(url)
            yield from body.get(key) or []
            url = self._following(self.messaging, (body.get("meta") or {}).get("next_page_url"), seen)

    def account_name(self) -> str:
        return str(self._get(f"{self.api}/2010-04-01/Accounts/{self.account}.json").get("friendly_name") or "")

    def snapshot(self) -> Any:
        from pigeon.app.twilio_import import Snapshot, SourceShapeError

        try:
            return self._snapshot(Snapshot)
        except SourceShapeError as exc:
            raise SourceError(f"{self.account}: {exc}") from exc
        except (KeyError, TypeError, AttributeError) as exc:  # a service without its sid …
            raise SourceError(f"{self.account}: a record is not shaped as Twilio's ({exc!r})") from exc

    def _snapshot(self, snapshot_type: Any) -> Any:

        services = [
            (
                service,
                list(self._pages_v1(f"Services/{service['sid']}/PhoneNumbers", "phone_numbers")),
                list(self._pages_v1(f"Services/{service['sid']}/ShortCodes", "short_codes")),
                list(self._pages_v1(f"Services/{service['sid']}/AlphaSenders", "alpha_senders")),
            )
            for service in self._pages_v1("Services", "services")
        ]
        return snapshot_type.from_api(
            incoming_numbers=list(self._pages_2010("IncomingPhoneNumbers.json", "incoming_phone_numbers")),
            short_codes=list(self._pages_2010("SMS/ShortCodes.json", "short_codes")),
            services=services,
        )


@dataclass(frozen=True)
class _SourceAccount:
    sid: str
    token: str
    name: str
    owner: str | None  # its main account, for a subaccount
    snapshot: Any


def _read_source(
    *, sid: str, token: str, api_url: str, messaging_url: str, names: bool, subaccounts: bool
) -> tuple[list[_SourceAccount], list[str]]:
    """The account's records, and each active subaccount's (read with its own credentials, as
    Messaging v1 reads the account it authenticates); and the suspended subaccounts, left
    behind (their records cannot be read, and they are not to come back active)."""
    with httpx.Client(auth=(sid, token), timeout=30.0) as client:
        source = TwilioSource(client, api_url=api_url, messaging_url=messaging_url, account_sid=sid)
        accounts = [_SourceAccount(sid, token, source.account_name() if names else "", None, source.snapshot())]
        subs = (
            [
                a
                for a in source.pages_2010_root("Accounts.json", "accounts")
                if isinstance(a, dict) and a.get("owner_account_sid") == sid and a.get("sid") != sid
            ]
            if subaccounts
            else []
        )
    suspended = [str(a["sid"]) for a in subs if a.get("status") == "suspended"]
    for sub in subs:
        if sub.get("status") != "active":
            continue
        if not sub.get("auth_token"):
            raise SourceError(f"the source's listing gives no auth token for its subaccount {sub['sid']}")
        with httpx.Client(auth=(sub["sid"], sub["auth_token"]), timeout=30.0) as client:
            reader = TwilioSource(client, api_url=api_url, messaging_url=messaging_url, account_sid=sub["sid"])
            name = str(sub.get("friendly_name") or "")
            accounts.append(_SourceAccount(sub["sid"], sub["auth_token"], name, sid, reader.snapshot()))
    return accounts, suspended


@import_app.command("twilio")
def import_twilio(
    into: Annotated[
        str | None, typer.Option("--into", help="The Pigeon account (AC…) that receives the set-up.")
    ] = None,
    same_account: Annotated[
        bool,
        typer.Option(
            "--same-account",
            help="Into a Pigeon account with the source account's SID and auth token (made unless here),"
            " so that applications keep their credentials too.",
        ),
    ] = False,
    with_subaccounts: Annotated[
        bool,
        typer.Option(
            "--with-subaccounts",
            help="With --same-account: each open subaccount too, as a subaccount here with its SID and auth token.",
        ),
    ] = False,
    source_sid: Annotated[
        str, typer.Option("--source-sid", envvar="TWILIO_ACCOUNT_SID", help="The source account's SID.")
    ] = "",
    source_token: Annotated[
        str,
        typer.Option(
            "--source-token", envvar="TWILIO_AUTH_TOKEN", help="The source account's auth token (never printed)."
        ),
    ] = "",
    api_url: Annotated[str, typer.Option("--api-url", help="The source's 2010-04-01 API.")] = TWILIO_API,
    messaging_url: Annotated[
        str | None,
        typer.Option(
            "--messaging-url",
            help="The source's Messaging v1 API (default: Twilio's, or --api-url when that is not Twilio's).",
        ),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Import; without it, only show what would be done.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Bring an account's numbers, short codes and Messaging Services (webhooks, sender pools)
    over from Twilio into a Pigeon account. Without --yes, a dry run."""
    from pigeon.app.twilio_import import Step, import_snapshot
    from pigeon.app.twilio_import import same_account as bring_account
    from pigeon.domain.errors import ApiError

    if (into is None) == (not same_account):
        err.print("[red]name the Pigeon account with --into AC…, or give --same-account[/red]", markup=True)
        raise typer.Exit(2)
    if with_subaccounts and not same_account:
        err.print(
            "[red]--with-subaccounts brings each subaccount with its own SID: give --same-account[/red]", markup=True
        )
        raise typer.Exit(2)
    if not source_sid or not source_token:
        err.print("[red]the source's SID and auth token: TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN[/red]", markup=True)
        raise typer.Exit(2)
    if messaging_url is None:
        messaging_url = TWILIO_MESSAGING if api_url.rstrip("/") == TWILIO_API else api_url
    try:
        sources, suspended = _read_source(
            sid=source_sid,
            token=source_token,
            api_url=api_url,
            messaging_url=messaging_url,
            names=same_account,
            subaccounts=with_subaccounts,
        )
    except SourceError as exc:
        err.print(f"[red]cannot read the source:[/red] {escape(str(exc))}", markup=True, soft_wrap=True)
        raise typer.Exit(2) from exc
    now = datetime.now(UTC)

    def work(conn: Any) -> list[tuple[str, Step]]:
        done: list[tuple[str, Step]] = [
            (sid, Step("account", sid, "skipped", "suspended on the source: bring it over once it is active"))
            for sid in suspended
        ]
        for src in sources:
            target = into or src.sid
            if same_account:
                made = bring_account(
                    conn, sid=src.sid, auth_token=src.token, friendly_name=src.name, now=now, owner_sid=src.owner
                )
                done.append((target, made))
            done += [(target, step) for step in import_snapshot(conn, target, src.snapshot, now=now)]
        return done

    db = open_store()
    try:
        steps: list[tuple[str, Step]] = write_or_rehearse(db, work, apply=yes)
    except ApiError as exc:
        err.print(f"[red]{escape(exc.message)}[/red]", markup=True)
        raise typer.Exit(1) from exc
    finally:
        db.dispose()
    _report(steps, into=into or source_sid, applied=yes, as_json=as_json)
    if any(step.action == "skipped" for _, step in steps):
        raise typer.Exit(1)


def _report(steps: list[tuple[str, Any]], *, into: str, applied: bool, as_json: bool) -> None:
    counts = {action: sum(s.action == action for _, s in steps) for action in ("made", "here already", "skipped")}
    if as_json:
        report = {
            "into": into,
            "applied": applied,
            "counts": counts,
            "steps": [
                {"account": account, "what": s.what, "name": s.name, "action": s.action, "why": s.why}
                for account, s in steps
            ],
        }
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
        return
    several = len({account for account, _ in steps}) > 1
    table = Table(*((whole("Account"),) if several else ()), "What", "Name", "Action", "Why")
    for account, s in steps:
        action = s.action if applied or s.action != "made" else "would be made"
        table.add_row(*((account,) if several else ()), s.what, s.name, action, s.why)
    print_table(out, table)
    tail = "" if applied else " Dry run: nothing was changed; run again with --yes to import."
    out.print(
        f"{counts['made']} {'made' if applied else 'to make'}, {counts['here already']} here already,"
        f" {counts['skipped']} skipped.{tail}",
        soft_wrap=True,
    )
