"""Console sessions: sign in with an account's credentials, a signed cookie, CSRF tokens.

Session cookie (``pigeon_session``, HttpOnly, SameSite=Lax, Secure over https or when
PIGEON_PUBLIC_URL is https)::

    base64url(JSON payload) "." base64url(HMAC-SHA256(secret, "session." + payload))

The payload names the account signed in (``a``), the account being looked at (``c``: the
same, or one of its subaccounts), the API key used if any (``k``), a fingerprint of the
credential (``f``), a random nonce (``n``), the time of sign-in (``t``), the account's
sign-out count then (``s``) and, with a key, the key's (``ks``). The secret is 32 random bytes kept in the store (table
settings), so a session survives restarts and is valid on every API process. Each request
re-reads the account: a closed account, a deleted key, a changed auth token (the fingerprint
no longer matches) or a sign-out since (the account's ``console_sign_outs`` moved on, or for a
key's session the key's) ends the session. Signing out with the auth token thus ends every
console session of the account, on every browser, its keys' included: a cookie copied before is
worth nothing after, at the cost of no read beyond the account's (and the key's).

API keys. Twilio's console takes no API key; this one keeps signing in with one (applications'
keys are what operators hand out, and a key's session reaches no more than the key does through
the API), with a standard key's limits: no page or action here shows or changes keys, auth
tokens or accounts (those are the API's, where a key gets 20003), a main account's key switches
to its subaccounts as its auth token does, a subaccount's never to its main account, and a key's
sign-out ends the sessions of that key only, never those of the auth token or of other keys.

CSRF: every POST carries ``csrf_token``, which must equal both the ``pigeon_csrf`` cookie
(double submit) and HMAC(secret, "csrf." + nonce) of the session (so a token is only good
for its own session). A POST whose Origin header names another origin than the request's
Host or the public URL's is refused too. The
sign-in form, before any session, uses a random token held in the same cookie.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from pigeon.app import accounts as account_use
from pigeon.domain.errors import ApiError, AuthenticationError
from pigeon.domain.sids import Prefix, is_sid
from pigeon.domain.signatures import equal_secrets
from pigeon.domain.urls import origin_of
from pigeon.store import accounts as account_store
from pigeon.store.settings import get_or_create

from .web import Console, Forbidden, SignInRequired, console, form_fields, render

SESSION_COOKIE = "pigeon_session"
CSRF_COOKIE = "pigeon_csrf"
SECRET_KEY = "console.secret"
#: A session lasts a working day; signing in again is cheap.
MAX_AGE = 12 * 3600

Row = dict[str, Any]


@dataclass(frozen=True)
class Session:
    acting_sid: str  # the account whose credentials signed in
    account_sid: str  # the account being looked at: acting_sid or one of its subaccounts
    key_sid: str | None
    nonce: str
    csrf: str
    account: Row  # the looked-at account's record
    accounts: list[Row]  # every account the switcher may show


# -- signing (pure) ---------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, purpose: str, value: str) -> str:
    return _b64(hmac.new(secret, f"{purpose}.{value}".encode(), hashlib.sha256).digest())


def sign(secret: bytes, payload: dict[str, Any]) -> str:
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    return f"{body}.{_mac(secret, 'session', body)}"


def unsign(secret: bytes, cookie: str, *, now: float, max_age: float = MAX_AGE) -> dict[str, Any] | None:
    """The payload of a genuine, unexpired cookie; None for anything else."""
    body, sep, mac = cookie.partition(".")
    if not sep or not equal_secrets(mac, _mac(secret, "session", body)):
        return None
    try:
        payload = json.loads(_unb64(body))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("t"), int | float):
        return None
    if not 0 <= now - payload["t"] <= max_age:
        return None
    return payload


def csrf_token(secret: bytes, nonce: str) -> str:
    return _mac(secret, "csrf", nonce)


def fingerprint(secret: bytes, credential: str) -> str:
    """Changes when the credential changes (a rotated auth token), without revealing it."""
    return _mac(secret, "credential", credential)[:22]


# -- the secret -------------------------------------------------------------------------------


async def secret_of(c: Console) -> bytes:
    if c.secret is None:
        now = c.clock.now()
        value = await c.write(lambda conn: get_or_create(conn, SECRET_KEY, lambda: secrets.token_hex(32), now=now))
        c.secret = bytes.fromhex(value)
    return c.secret


# -- checking a request -----------------------------------------------------------------------


def _credentials(conn: Any, account: Row, payload: dict[str, Any]) -> list[str]:
    """What a session may have been signed in with, as things stand: the account's auth token
    or its secondary one (a session keeps working while the token it used does: deleting the
    secondary ends the sessions made with it, promoting it ends those made with the first), or
    the API key's secret hash, while the key has not signed out since."""
    key_sid = payload.get("k")
    if key_sid is None:
        return [str(t) for t in (account["auth_token"], account.get("secondary_auth_token")) if t]
    key = account_store.get_api_key(conn, str(key_sid))
    if key is None or key["account_sid"] != account["sid"]:
        return []
    if payload.get("ks", 0) != key["console_sign_outs"]:  # the key signed out since
        return []
    return [str(key["secret_hash"])]


def _resolve(conn: Any, secret: bytes, payload: dict[str, Any]) -> Session | None:
    acting = account_store.get_account(conn, str(payload.get("a", "")))
    if acting is None or account_use.standing(acting) == "closed":  # its own, or its main account's
        return None
    if payload.get("s", 0) != acting["console_sign_outs"]:  # signed out since (no "s": from before counts)
        return None
    signed = str(payload.get("f", ""))
    if not any(
        [equal_secrets(signed, fingerprint(secret, credential)) for credential in _credentials(conn, acting, payload)]
    ):
        return None
    visible = account_use.list_visible(conn, acting["sid"], friendly_name=None, status=None)
    current = next((a for a in visible if a["sid"] == payload.get("c")), acting)
    nonce = str(payload.get("n", ""))
    return Session(
        acting_sid=acting["sid"],
        account_sid=current["sid"],
        key_sid=payload.get("k"),
        nonce=nonce,
        csrf=csrf_token(secret, nonce),
        account=current,
        accounts=visible,
    )


async def current_session(request: Request) -> Session | None:
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    c = console(request)
    secret = await secret_of(c)
    payload = unsign(secret, cookie, now=time.time())
    if payload is None:
        return None
    return await c.read(_resolve, secret, payload)


async def require(request: Request) -> Session:
    """The signed-in session, kept on request.state for the templates; else SignInRequired."""
    session = await current_session(request)
    if session is None:
        raise SignInRequired()
    request.state.session = session
    return session


def _check_origin(request: Request) -> None:
    """Refuse a POST whose Origin is neither this request's Host nor the origin of the public
    URL (PIGEON_PUBLIC_URL): behind a reverse proxy that passes its upstream's address as Host
    (nginx's default), the browser's Origin is the public site's, never the Host."""
    origin = request.headers.get("origin")
    if origin and origin != "null":
        parts = urlsplit(origin)
        if parts.netloc != request.headers.get("host", "") and origin_of(origin) != origin_of(
            console(request).base_url
        ):
            raise Forbidden(f"Refused: this form was sent from another site ({origin}).")


async def checked_form(request: Request, session: Session) -> dict[str, str]:
    """The POSTed form, once its CSRF token proved it came from a console page of this session."""
    _check_origin(request)
    fields = await form_fields(request)
    sent = fields.pop("csrf_token", "")
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not (sent and equal_secrets(sent, cookie) and equal_secrets(sent, session.csrf)):
        raise Forbidden("Refused: the form's security token is missing or does not match your session.")
    return fields


def _secure(request: Request) -> bool:
    """Cookies are Secure over https, and whenever the public URL is https: behind a proxy that
    ends TLS, the request that reaches Pigeon is plain http."""
    return request.url.scheme == "https" or console(request).base_url.lower().startswith("https://")


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int = MAX_AGE) -> None:
    root = request.scope.get("root_path", "") or "/"
    response.set_cookie(name, value, max_age=max_age, path=root, httponly=True, samesite="lax", secure=_secure(request))


# -- pages ------------------------------------------------------------------------------------


def _safe_next(request: Request, target: str | None) -> str:
    root: str = request.scope.get("root_path", "")
    if target and target.startswith(root + "/") and not target.startswith("//") and "\\" not in target:
        return target
    return root + "/"


async def login_page(request: Request) -> Response:
    if await current_session(request) is not None:
        return RedirectResponse(_safe_next(request, request.query_params.get("next")), status_code=303)
    token = secrets.token_urlsafe(24)
    request.state.login_csrf = token
    response = render(request, "login.html", next=request.query_params.get("next", ""), error=None)
    set_cookie(response, request, CSRF_COOKIE, token)
    return response


@dataclass(frozen=True)
class _SignIn:
    acting_sid: str
    key_sid: str | None
    credential: str  # what the session's fingerprint is made from
    sign_outs: int  # the account's sign-out count
    key_sign_outs: int | None  # the key's, with a key


def _authenticate(conn: Any, username: str, password: str, account_field: str) -> _SignIn:
    """Who the sign-in form's fields sign in as."""
    account = account_use.authenticate_account(conn, username, password)
    acting, sign_outs = str(account["sid"]), int(account["console_sign_outs"])
    if is_sid(username, Prefix.API_KEY):
        # A key signs in to the account it belongs to; the account field is a check, if given.
        if account_field and account_field != acting:
            raise AuthenticationError("This API key does not belong to that account.")
        key = account_store.get_api_key(conn, username)
        assert key is not None
        return _SignIn(acting, username, str(key["secret_hash"]), sign_outs, int(key["console_sign_outs"]))
    # The token that was accepted: the auth token or, while there is one, the secondary.
    return _SignIn(acting, None, password, sign_outs, None)


async def login(request: Request) -> Response:
    c = console(request)
    _check_origin(request)
    fields = await form_fields(request)
    sent, cookie = fields.get("csrf_token", ""), request.cookies.get(CSRF_COOKIE, "")
    if not (sent and cookie and equal_secrets(sent, cookie)):
        raise Forbidden("Refused: the sign-in form's security token is missing or stale. Reload the page.")
    username = fields.get("username", "").strip()
    password = fields.get("password", "").strip()
    try:
        signed = await c.read(_authenticate, username, password, fields.get("account", "").strip())
    except ApiError:
        request.state.login_csrf = cookie
        return render(
            request,
            "login.html",
            status_code=401,
            next=fields.get("next", ""),
            error="Those credentials were not accepted.",
            username=username,
        )
    secret = await secret_of(c)
    nonce = secrets.token_urlsafe(18)
    payload: dict[str, Any] = {"a": signed.acting_sid, "c": signed.acting_sid, "k": signed.key_sid}
    payload.update(f=fingerprint(secret, signed.credential), n=nonce, t=int(time.time()), s=signed.sign_outs)
    if signed.key_sign_outs is not None:
        payload["ks"] = signed.key_sign_outs
    response = RedirectResponse(_safe_next(request, fields.get("next")), status_code=303)
    set_cookie(response, request, SESSION_COOKIE, sign(secret, payload))
    set_cookie(response, request, CSRF_COOKIE, csrf_token(secret, nonce))
    return response


async def logout(request: Request) -> Response:
    """Sign out: the cookies go, and so does the session itself, in the store, so that a copy of
    the cookie is worth nothing. With the auth token every console session of the account ends
    with it; with an API key, every session of that key, and no other: a key may not end the
    sessions of the account's auth token."""
    session = await require(request)
    await checked_form(request, session)
    if session.key_sid is not None:
        await console(request).write(account_store.end_key_console_sessions, session.key_sid)
    else:
        await console(request).write(account_store.end_console_sessions, session.acting_sid)
    root = request.scope.get("root_path", "")
    response = RedirectResponse(f"{root}/login", status_code=303)
    for name in (SESSION_COOKIE, CSRF_COOKIE):
        response.delete_cookie(name, path=root or "/", httponly=True, samesite="lax", secure=_secure(request))
    return response


async def switch_account(request: Request) -> Response:
    """Look at another account this sign-in may see (a subaccount, or back to the main one)."""
    session = await require(request)
    fields = await checked_form(request, session)
    target = fields.get("account_sid", "")
    if not any(a["sid"] == target for a in session.accounts):
        raise Forbidden("That account is not one you may look at.")
    cookie = request.cookies.get(SESSION_COOKIE, "")
    c = console(request)
    secret = await secret_of(c)
    payload = unsign(secret, cookie, now=time.time())
    if payload is None:
        raise SignInRequired()
    payload["c"] = target
    response = RedirectResponse(request.scope.get("root_path", "") + "/", status_code=303)
    set_cookie(response, request, SESSION_COOKIE, sign(secret, payload))
    return response
