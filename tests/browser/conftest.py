"""Browser tests: Debian's chromium, driven by Playwright, against a real `pigeon serve`.

Nothing here is skipped: without chromium (``apt-get install -y chromium``) or the
``playwright`` package the tests fail and say what is missing. Playwright's own browser
downloads are never used (``playwright install`` needs the internet).

``PIGEON_SCREENSHOTS=1`` makes the tests save a screenshot of each page into docs/console/.
"""

from __future__ import annotations

import html
import os
import shutil
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from pigeon.app.inventory import seed_default
from pigeon.store.engine import Database
from tests.acceptance.conftest import Server, _prepare

CHROMIUM = os.environ.get("PIGEON_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"


def _playwright() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:  # pragma: no cover - the message is the point
        pytest.fail(f"the browser tests need the playwright package (pip install -e '.[dev]'): {exc}")
    return sync_playwright


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        pytest.fail(
            f"chromium not found at {CHROMIUM}: the browser tests drive Debian's chromium "
            "(apt-get install -y chromium; `make test` installs it). Set PIGEON_CHROMIUM to use another."
        )
    with _playwright()() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


# -- a local application: the webhook receiver the tests point numbers at ---------------------


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 playing the customer's application."""

    base_url: str
    requests: list[dict[str, Any]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return self.base_url + path


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: str, content_type: str) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            form = urllib.parse.parse_qsl(self.rfile.read(length).decode(), keep_blank_values=True)
            receiver.requests.append({"path": self.path, "headers": dict(self.headers), "params": form})
            if self.path.startswith("/sms"):
                body = dict(form).get("Body", "")
                twiml = f"<Response><Message>Thanks, got: {html.escape(body)}</Message></Response>"
                self._send(200, twiml, "text/xml")
            elif self.path.startswith("/broken"):
                self._send(500, "oops", "text/plain")
            else:
                self._send(200, "", "text/plain")

        def do_GET(self) -> None:
            # /forge?action=URL&field=value…: a page on another origin that posts a form to the console.
            query = urllib.parse.urlsplit(self.path).query
            params = urllib.parse.parse_qsl(query)
            action = dict(params).get("action", "")
            inputs = "".join(
                f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                for k, v in params
                if k != "action"
            )
            page = (
                f'<html><body><form id="f" method="post" action="{html.escape(action)}">{inputs}</form>'
                "<script>document.getElementById('f').submit()</script></body></html>"
            )
            self._send(200, page, "text/html")

    return Handler


@pytest.fixture(scope="session")
def receiver() -> Iterator[Receiver]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    rec = Receiver(base_url=f"http://127.0.0.1:{httpd.server_address[1]}")
    httpd.RequestHandlerClass = _handler(rec)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        httpd.shutdown()
        httpd.server_close()


# -- the server ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`pigeon serve` with its workers and the built-in network, on SQLite, with the sample
    number inventory loaded."""
    workdir = tmp_path_factory.mktemp("console")
    srv = _prepare(f"sqlite:///{workdir / 'pigeon.db'}", workdir)
    db = Database.from_url(srv.database_url)
    with db.write() as conn:
        seed_default(conn, datetime.now(UTC))
    db.dispose()
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()


@dataclass
class Console:
    """What a test needs to drive the console: the server, a signed-in page, helpers."""

    server: Server
    page: Any

    @property
    def root(self) -> str:
        return self.server.base_url + "/console"

    def goto(self, path: str) -> Any:
        return self.page.goto(self.root + path)

    def api(self, method: str, path: str, **kw: Any) -> httpx.Response:
        s = self.server
        url = f"{s.base_url}/2010-04-01/Accounts/{s.account_sid}{path}"
        return httpx.request(method, url, auth=(s.account_sid, s.auth_token), timeout=10, **kw)

    def screenshot(self, name: str) -> None:
        if os.environ.get("PIGEON_SCREENSHOTS") == "1":
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def sign_in(page: Any, server: Server) -> None:
    page.goto(server.base_url + "/console/login")
    page.fill("input[name=username]", server.account_sid)
    page.fill("input[name=password]", server.auth_token)
    page.click("button[type=submit]")
    page.wait_for_url("**/console/overview")


@pytest.fixture
def console(browser: Any, console_server: Server) -> Iterator[Console]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.set_default_timeout(10_000)
    page = context.new_page()
    sign_in(page, console_server)
    try:
        yield Console(console_server, page)
    finally:
        context.close()
