"""Bring an account's messaging set-up over from Twilio (or any server that speaks its API):
its phone numbers and short codes with their webhooks, and its Messaging Services with their
sender pools. Applications keep their code and change the base URL; this brings the settings
that live on Twilio's side, so that inbound texts reach the same webhooks and sends through a
service find the same pool.

The records come in as the API returns them (`Snapshot.from_api`); `import_snapshot` applies
them to one Pigeon account in the caller's transaction and says what it did with each: made
it, found it here already (left as it is: an import run twice changes nothing the second
time), or skipped it, and why (a number another account holds, a URL Pigeon refuses …). A
dry run is the same import rolled back, so it reports exactly what the real one would do.

Message history, opt-outs and credentials are not imported; numbers come over as records
(their traffic reaches Pigeon once a carrier routes them here).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from pigeon.app import accounts as account_use
from pigeon.app import numbers as number_use
from pigeon.app import services as service_use
from pigeon.domain.errors import ApiError
from pigeon.domain.numbers import is_short_code
from pigeon.domain.sids import Prefix, is_sid
from pigeon.domain.signatures import equal_secrets
from pigeon.store import accounts as account_store
from pigeon.store import numbers as number_store
from pigeon.store import services as service_store

Json = Mapping[str, Any]
Row = dict[str, Any]

#: IncomingPhoneNumber / ShortCode JSON field -> the parameter that sets it (the JSON names
#: its fields as Pigeon's columns).
_NUMBER_FIELDS = {
    "friendly_name": "FriendlyName",
    **{column: param for param, column in {**number_use.URL_PARAMS, **number_use.METHOD_PARAMS}.items()},
    # Pigeon has no TwiML Applications: a number whose texts go to one is skipped, with the
    # reason, rather than made without anywhere to send its texts.
    "sms_application_sid": "SmsApplicationSid",
}
#: Messaging Service JSON field -> the parameter that sets it.
_SERVICE_FIELDS = service_use.PARAM_OF_COLUMN


def _params(record: Json, fields: Mapping[str, str]) -> dict[str, str]:
    """The parameters that would set the record's fields (unset ones left out)."""
    params = {}
    for name, param in fields.items():
        value = record.get(name)
        if value is None or value == "":
            continue
        params[param] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return params


class SourceShapeError(ValueError):
    """The source's records are not shaped as Twilio's."""


@dataclass(frozen=True)
class SourceNumber:
    number: str  # E.164, or a short code's digits
    sms: bool
    mms: bool
    voice: bool
    params: Mapping[str, str]  # as an IncomingPhoneNumbers create would take them
    country: str | None = None  # a short code's, when a service's pool names it


@dataclass(frozen=True)
class SourceService:
    friendly_name: str
    params: Mapping[str, str]  # as a Services create would take them
    senders: tuple[str, ...]  # the pool's numbers and short codes
    alpha_senders: tuple[str, ...]


@dataclass(frozen=True)
class Snapshot:
    numbers: tuple[SourceNumber, ...] = ()
    services: tuple[SourceService, ...] = ()

    @classmethod
    def from_api(
        cls,
        *,
        incoming_numbers: Iterable[Json],
        short_codes: Iterable[Json],
        services: Iterable[tuple[Json, Iterable[Json], Iterable[Json], Iterable[Json]]],
    ) -> Snapshot:
        """From the API's JSON: IncomingPhoneNumbers, SMS/ShortCodes, and each Service with its
        PhoneNumbers, ShortCodes and AlphaSenders. SourceShapeError for records that are not
        shaped as Twilio's (a field missing, an object where a list belongs)."""
        try:
            return cls._from_api(incoming_numbers, short_codes, list(services))
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise SourceShapeError(f"a record is not shaped as Twilio's ({type(exc).__name__}: {exc})") from None

    @classmethod
    def _from_api(
        cls,
        incoming_numbers: Iterable[Json],
        short_codes: Iterable[Json],
        services: list[tuple[Json, Iterable[Json], Iterable[Json], Iterable[Json]]],
    ) -> Snapshot:
        services = [(s, list(p), list(c), list(a)) for s, p, c, a in services]
        # Twilio's ShortCode resource names no country; a service's pool does.
        countries = {str(c["short_code"]): c.get("country_code") for _, _, codes, _ in services for c in codes}
        numbers = []
        for n in incoming_numbers:
            capabilities = n.get("capabilities") or {}
            sms = bool(capabilities.get("sms", True))
            params = _params(n, _NUMBER_FIELDS)
            if not sms:
                # Twilio shows its default methods on every number, voice-only ones too; they
                # set nothing there, and on a number without SMS here they are refused (21407).
                params = {k: v for k, v in params.items() if k not in ("SmsMethod", "SmsFallbackMethod")}
            numbers.append(
                SourceNumber(
                    number=str(n["phone_number"]),
                    sms=sms,
                    mms=bool(capabilities.get("mms", False)),
                    voice=bool(capabilities.get("voice", False)),
                    params=params,
                )
            )
        for s in short_codes:
            code = str(s["short_code"])
            country = countries.get(code)
            numbers.append(
                SourceNumber(
                    number=code,
                    sms=True,
                    mms=False,
                    voice=False,
                    params=_params(s, _NUMBER_FIELDS),
                    country=str(country) if country else None,
                )
            )
        pools = [
            SourceService(
                friendly_name=str(service.get("friendly_name") or ""),
                params=_params(service, _SERVICE_FIELDS),
                senders=tuple(str(p["phone_number"]) for p in phones) + tuple(str(c["short_code"]) for c in codes),
                alpha_senders=tuple(str(a["alpha_sender"]) for a in alphas),
            )
            for service, phones, codes, alphas in services
        ]
        return cls(tuple(numbers), tuple(pools))


@dataclass(frozen=True)
class Step:
    """What the import did with one record."""

    what: str  # number | service | pool number | alpha sender
    name: str
    action: str  # made | here already | skipped
    why: str = ""


@dataclass
class _Run:
    conn: Connection
    account_sid: str
    now: datetime
    steps: list[Step] = field(default_factory=list)

    def attempt(self, what: str, name: str, make: Callable[[], Any]) -> Any:
        """`make` in a savepoint: a record Pigeon refuses is skipped, with the reason, and
        leaves nothing behind."""
        try:
            with self.conn.begin_nested():
                made = make()
        except ApiError as exc:
            self.steps.append(Step(what, name, "skipped", exc.message))
            return None
        self.steps.append(Step(what, name, "made"))
        return made


_AUTH_TOKEN = re.compile(r"[0-9a-f]{32}")


def same_account(
    conn: Connection, *, sid: str, auth_token: str, friendly_name: str, now: datetime, owner_sid: str | None = None
) -> Step:
    """The Pigeon account with the source account's SID and auth token, made unless it is here
    already: applications then keep their credentials as well as their code, and change the
    base URL alone. Refused for credentials that are not the shape of Twilio's, and for an
    account here with that SID and another token (it is not to be overwritten). `owner_sid`:
    the main account a subaccount comes under, as it did on the source."""
    if not is_sid(sid, Prefix.ACCOUNT) or not _AUTH_TOKEN.fullmatch(auth_token):
        raise ApiError(
            20422, "The source's account SID (AC and 32 hex digits) or auth token (32 hex digits) is not valid."
        )
    here = account_store.get_account(conn, sid)
    if here is not None:
        if not equal_secrets(auth_token, here["auth_token"]):
            raise ApiError(20422, f"Account {sid} is here already with another auth token; import into it with --into.")
        return Step("account", sid, "here already")
    name = (friendly_name or "").strip()[:64] or "Imported from Twilio"
    account_store.create_account(conn, friendly_name=name, now=now, sid=sid, auth_token=auth_token, owner_sid=owner_sid)
    return Step("account", sid, "made")


def import_snapshot(conn: Connection, account_sid: str, snapshot: Snapshot, *, now: datetime) -> list[Step]:
    """Apply the snapshot to the account, in the caller's transaction (see the module doc)."""
    if account_use.existing(conn, account_sid)["status"] == "closed":
        raise ApiError(21479, f"Account {account_sid} is closed: nothing can be imported into it.")
    run = _Run(conn, account_sid, now)
    for source in snapshot.numbers:
        _import_number(run, source)
    # The account's services by name, read once (the first of a name, as a lookup would find).
    here: dict[str, Row] = {}
    for existing in service_store.list_services(conn, account_sid):
        here.setdefault(existing["friendly_name"], existing)
    names: set[str] = set()
    for service in snapshot.services:
        if service.friendly_name in names:
            # Services are found here by name (a second run must find the first's): two of one
            # name would be merged into one, settings and pool.
            why = "the source has another service of this name: rename one there, then import again"
            run.steps.append(Step("service", service.friendly_name, "skipped", why))
            continue
        names.add(service.friendly_name)
        _import_service(run, service, here.get(service.friendly_name))
    return run.steps


def _import_number(run: _Run, source: SourceNumber) -> None:
    held = number_store.find_by_number(run.conn, source.number)
    if held is not None:
        mine = held["account_sid"] == run.account_sid
        why = "" if mine else "another account holds it"
        run.steps.append(Step("number", source.number, "here already" if mine else "skipped", why))
        return
    if is_short_code(source.number) and source.country is None:
        # A short code is bound to its country; Twilio's ShortCode resource does not name it,
        # only a service's pool does. Guessing one would send where the code cannot, or from
        # anywhere if none: it is left for the operator to add with its country.
        why = (
            "no Messaging Service of the source names its country: add it with "
            f"pigeon numbers add {source.number} --country CC --account {run.account_sid}"
        )
        run.steps.append(Step("number", source.number, "skipped", why))
        return
    run.attempt(
        "number",
        source.number,
        lambda: number_use.provision(
            run.conn,
            account_sid=run.account_sid,
            phone_number=source.number,
            now=run.now,
            sms=source.sms,
            mms=source.mms,
            voice=source.voice,
            iso_country=source.country,
            settings=number_use.settings_from_params(source.params),
        ),
    )


def _import_service(run: _Run, source: SourceService, found: Row | None) -> None:
    """The service (`found`: the account's of its name, if any) and its pool."""
    name = source.friendly_name
    if found is not None:
        service = found
        run.steps.append(Step("service", name, "here already"))
    else:
        service = run.attempt(
            "service", name, lambda: service_use.create(run.conn, run.account_sid, source.params, run.now)
        )
        if service is None:
            return
    for sender in source.senders:
        _pool_number(run, service, sender)
    for alpha in source.alpha_senders:
        label = f"{name}: {alpha}"
        if service_store.find_alpha_sender(run.conn, service["sid"], alpha) is not None:
            run.steps.append(Step("alpha sender", label, "here already"))
            continue
        add = functools.partial(service_use.add_alpha_sender, run.conn, run.account_sid, service["sid"], alpha, run.now)
        run.attempt("alpha sender", label, add)


def _pool_number(run: _Run, service: Json, sender: str) -> None:
    label = f"{service['friendly_name']}: {sender}"
    number = number_store.find_by_number(run.conn, sender)
    if number is None or number["account_sid"] != run.account_sid:
        run.steps.append(Step("pool number", label, "skipped", "the number is not on this account"))
        return
    if number["messaging_service_sid"] == service["sid"]:
        run.steps.append(Step("pool number", label, "here already"))
        return
    short_code = number["number_type"] == "short_code"
    run.attempt(
        "pool number",
        label,
        lambda: service_use.add_number(
            run.conn,
            run.account_sid,
            service["sid"],
            number["sid"],
            short_code=short_code,
            path=f"/v1/Services/{service['sid']}",
            now=run.now,
        ),
    )
