"""The `pigeon` command: thin commands over the use cases.

Every command reads Settings once (environment and PIGEON_CONFIG) and talks to the store
the server uses, so an operator can run them beside a live server.

Here: the app, the commands that run Pigeon (`serve`, `worker`) and `send`; every
other group or command lives in a `pigeon/cli_*.py` module of its own and is mounted below.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import sys
from typing import Annotated, Any

import typer
from prometheus_client import CollectorRegistry, start_http_server
from rich.console import Console
from rich.markup import escape

from pigeon import bootstrap
from pigeon import cli_banner as banner
from pigeon.cli_accounts import accounts_app, keys_app
from pigeon.cli_carriers import carriers_cmd
from pigeon.cli_db import db_app
from pigeon.cli_debugger import alerts_cmd, errors_cmd, requests_cmd
from pigeon.cli_doctor import doctor_app
from pigeon.cli_erase import erase_cmd
from pigeon.cli_import import import_app
from pigeon.cli_inventory import inventory_app
from pigeon.cli_logs import logs_cmd
from pigeon.cli_numbers import numbers_app
from pigeon.cli_optouts import optouts_app
from pigeon.cli_services import services_app
from pigeon.cli_simulate import simulate_app
from pigeon.cli_store import fail, open_store, settings_or_exit
from pigeon.cli_usage import usage_cmd
from pigeon.config import ConfigError, Settings, load_settings
from pigeon.domain.errors import ApiError, StoreUnavailable
from pigeon.ports import SystemClock
from pigeon.store import accounts as account_store
from pigeon.store.engine import Database, UnusableUrl, configuration_warnings
from pigeon.store.schema import SchemaTooNew

app = typer.Typer(help="Pigeon: a self-hosted SMS platform that speaks Twilio's Messaging API.", no_args_is_help=True)
# The order here is the order of `pigeon --help`.
app.add_typer(db_app, name="db")
app.add_typer(accounts_app, name="accounts")
app.add_typer(keys_app, name="keys")
app.add_typer(numbers_app, name="numbers")
app.add_typer(inventory_app, name="inventory")
app.add_typer(services_app, name="services")
app.add_typer(doctor_app, name="doctor")
app.add_typer(import_app, name="import")
app.add_typer(simulate_app, name="simulate")
app.add_typer(optouts_app, name="optouts")
app.command("requests")(requests_cmd)
app.command("alerts")(alerts_cmd)
app.command("carriers")(carriers_cmd)
app.command("errors")(errors_cmd)
app.command("erase")(erase_cmd)
app.command("usage")(usage_cmd)

# Markup off: what is printed is mostly names, numbers and texts from users and carriers, in
# which Rich would read "[ops]" as markup and drop it. Styled lines pass markup=True.
log = logging.getLogger("pigeon.cli")
out = Console(markup=False)
err = Console(stderr=True, markup=False)
clock = SystemClock()

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


def configure_logging(level: str) -> None:
    from pigeon import logs

    logs.configure(level)


# -- serve ---------------------------------------------------------------------------------


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on (PIGEON_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (PIGEON_PORT).")] = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            help="Run the dispatcher, webhook and simulator workers in N separate processes "
            "instead of inside the API process (0: in-process).",
        ),
    ] = 0,
    api_processes: Annotated[
        int | None,
        typer.Option(
            "--api-processes",
            help="Serve the API from N processes sharing the port, to use N cores (PIGEON_API_PROCESSES). "
            "The first also runs the workers.",
        ),
    ] = None,
) -> None:
    """Run the API with the workers and the built-in carrier network: everything in one command."""
    import uvicorn

    from pigeon import serving

    overrides: dict[str, Any] = {"host": host, "port": port}
    if api_processes is not None:
        overrides["api_processes"] = api_processes
    settings = load_settings(**overrides)
    # The log first: a warning of the checks below is a JSON line like every other.
    configure_logging(settings.log_level)
    bootstrap.check_configuration(settings)  # before any process starts
    if workers < 0:  # taken as "none" before: no worker ran, and nothing said so
        err.print("[red]configuration error:[/red] --workers must be 0 (in-process) or more", markup=True)
        raise typer.Exit(2)
    # Listening first: a port that is taken stops here, before the store or a first account
    # is made.
    sock = _listen_or_exit(settings)
    db = bootstrap.open_database(settings)
    _log_configuration_warnings(db)
    first = bootstrap.ensure_first_account(db, clock)
    if first is not None:
        out.print(banner.first_run_banner(settings, first, command=banner.program()), highlight=False, soft_wrap=True)
    else:
        out.print(
            f"Pigeon is using {db.engine.url.render_as_string(hide_password=True)}; "
            "`pigeon accounts list --show-tokens` shows the credentials.",
            highlight=False,
            soft_wrap=True,
        )
    registry = CollectorRegistry()
    in_process = (
        bootstrap.build_workers(settings, db, registry=registry) if workers == 0 and settings.run_workers else None
    )
    worker_processes = serving.WorkerProcesses(workers) if workers else None
    children: list[serving.Children] = [worker_processes] if worker_processes else []
    more = None
    if settings.api_processes > 1:
        env = dict(os.environ, PIGEON_HOST=settings.host, PIGEON_PORT=str(settings.port))
        more = serving.ApiProcesses(settings.host, settings.port, settings.api_processes - 1, env)
        children.append(more)
    api = bootstrap.build_api(
        settings,
        db,
        workers=in_process,
        registry=registry,
        worker_metrics=worker_processes.metrics_paths if worker_processes else (),
        api_metrics=more.metrics_paths if more else (),
    )
    where = f" ({settings.api_processes} API processes)" if more else ""
    serving.tune_gc()
    server = uvicorn.Server(serving.uvicorn_config(api, shutdown_grace=settings.shutdown_grace_seconds))

    def shut_down() -> None:
        server.should_exit = True

    with serving.stopped_by_signal_after_cleanup() as shutdown:
        try:
            for group in children:
                group.start()
            out.print(banner.listening(settings, where), highlight=False, soft_wrap=True)
            shutdown.hand_over(shut_down)
            server.run(sockets=[sock, *([more.metrics_sock] if more else [])])
        finally:
            for group in children:
                group.stop()


def _log_configuration_warnings(db: Database) -> None:
    """What in the store's setting will hurt (autovacuum off, a store others can read, a
    replica that cannot be used), as warnings in the log."""
    for warning in configuration_warnings(db.engine) + (db.replica.warnings() if db.replica else []):
        log.warning("%s", warning)


def _listen_or_exit(settings: Settings) -> socket.socket:
    from pigeon import serving

    try:
        return serving.listen(settings.host, settings.port, shared=settings.api_processes > 1)
    except OSError as exc:  # taken, or an address this host does not have
        err.print(
            f"[red]cannot listen on {escape(settings.host)}:{settings.port}:[/red] {escape(exc.strerror or str(exc))}"
            " (PIGEON_HOST, PIGEON_PORT)",
            highlight=False,
            markup=True,
            soft_wrap=True,
        )
        raise typer.Exit(2) from exc


@app.command("serve-api", hidden=True)
def serve_api(
    fd: Annotated[int, typer.Option("--fd", help="The listening socket, inherited from `pigeon serve`.")],
    metrics_from: Annotated[str, typer.Option("--metrics-from", help="Unix socket of the first process.")],
    parent: Annotated[int, typer.Option("--parent", help="The first process: stop when it is gone.")],
    metrics_socket: Annotated[
        str | None, typer.Option("--metrics-socket", help="Serve this process's own figures here, for the first.")
    ] = None,
) -> None:
    """One more API process on `pigeon serve`'s socket (started by `pigeon serve --api-processes`)."""
    import uvicorn

    from pigeon import serving

    settings = load_settings()
    configure_logging(settings.log_level)
    db = bootstrap.open_database(settings, migrate=False)  # the first process migrated it
    api = bootstrap.build_api(settings, db, metrics_from=metrics_from, metrics_socket=metrics_socket)
    serving.watch_parent(parent)
    serving.tune_gc()
    config = serving.uvicorn_config(api, shutdown_grace=settings.shutdown_grace_seconds)
    uvicorn.Server(config).run(sockets=[socket.socket(fileno=fd)])


@app.command()
def worker(
    parent: Annotated[
        int | None, typer.Option("--parent", hidden=True, help="Stop when this process (pigeon serve) is gone.")
    ] = None,
    metrics_socket: Annotated[
        str | None,
        typer.Option("--metrics-socket", hidden=True, help="Serve the metrics to pigeon serve on this Unix socket."),
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            help="Serve Prometheus metrics (carriers, webhooks) at GET /metrics on this port, "
            "on PIGEON_HOST's address.",
        ),
    ] = None,
) -> None:
    """Run the background workers (dispatcher, status callbacks, built-in network) without the API.
    Run as many as you like against one PostgreSQL; stop with SIGTERM or Ctrl-C."""
    from pigeon import serving

    if parent is not None:  # started by `pigeon serve --workers N`
        serving.watch_parent(parent)
    if metrics_port is not None and not 0 < metrics_port < 65536:
        err.print(
            f"[red]configuration error:[/red] --metrics-port {metrics_port} is not a port (1 to 65535)", markup=True
        )
        raise typer.Exit(2)
    settings = load_settings()
    configure_logging(settings.log_level)  # first: the checks' warnings are JSON lines too
    bootstrap.check_configuration(settings)
    db = bootstrap.open_database(settings)
    _log_configuration_warnings(db)
    registry = CollectorRegistry()
    workers = bootstrap.build_workers(settings, db, registry=registry)
    if metrics_port is not None:
        try:
            start_http_server(metrics_port, addr=settings.host, registry=registry)
        except OSError as exc:
            err.print(
                f"[red]cannot serve metrics on {escape(settings.host)}:{metrics_port}:[/red]"
                f" {escape(exc.strerror or str(exc))}",
                highlight=False,
                markup=True,
                soft_wrap=True,
            )
            raise typer.Exit(2) from exc

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        server = await serving.serve_metrics(metrics_socket, registry) if metrics_socket else None
        try:
            await workers.run(stop)
        finally:
            if server is not None:
                server.close()

    serving.tune_gc()
    serving.run_event_loop(main)


# -- send ----------------------------------------------------------------------------------


@app.command()
def send(
    to: Annotated[str, typer.Option("--to", help="Recipient, E.164.")],
    body: Annotated[str, typer.Option("--body")],
    from_: Annotated[str | None, typer.Option("--from", help="A number of the account.")] = None,
    service: Annotated[str | None, typer.Option("--service", help="A Messaging Service SID instead of --from.")] = None,
    status_callback: Annotated[str | None, typer.Option("--status-callback")] = None,
    media_url: Annotated[list[str] | None, typer.Option("--media-url", help="Repeat for several.")] = None,
    account: Annotated[
        str | None, typer.Option("--account", help="Account SID; defaults to the only top-level account.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a message, as POST Messages.json would; the workers send it."""
    from pigeon.app.accept_batch import write_new_messages
    from pigeon.app.send import SendRequest, prepare_message

    settings = settings_or_exit()
    db = open_store(settings)
    try:
        with db.write() as conn:
            account_sid = account or _only_account(conn)
            req = SendRequest(
                to=to,
                from_=from_,
                messaging_service_sid=service,
                body=body,
                media_urls=tuple(media_url or ()),
                status_callback=status_callback,
            )
            new = prepare_message(conn, account_sid, req, clock.now(), pacing=bootstrap.pacing_policy(settings))
            write_new_messages(conn, [new])  # as the API writes it: its Event Streams `queued` too
    except ApiError as exc:
        raise fail(exc) from exc
    row = new.message
    if as_json:
        _print_json({k: row[k] for k in ("sid", "account_sid", "status", "to", "from_", "num_segments", "num_media")})
    else:
        out.print(f"{row['sid']}  {row['status']}  {row['from_']} -> {row['to']}", highlight=False)


app.command("logs")(logs_cmd)  # after `send` in `pigeon --help`


def _only_account(conn: Any) -> str:
    tops = [r for r in account_store.list_accounts(conn) if r["owner_account_sid"] == r["sid"]]
    if not tops:
        raise ApiError(20404, "The store has no account yet: `pigeon accounts create` makes one.", status=404)
    if len(tops) > 1:
        raise ApiError(20404, "Several accounts exist; choose one with --account.", status=404)
    return str(tops[0]["sid"])


def main() -> None:
    try:
        app()
    except (ConfigError, UnusableUrl) as exc:
        # A setting or the configuration file cannot be used: say which, not a traceback.
        err.print(f"[red]configuration error:[/red] {escape(str(exc))}", highlight=False, markup=True, soft_wrap=True)
        raise SystemExit(2) from None
    except SchemaTooNew as exc:
        # Migrations only go forward; the operator must run the newer release (or restore).
        err.print(f"[red]{escape(str(exc))}[/red]", highlight=False, markup=True, soft_wrap=True)
        raise SystemExit(2) from None
    except StoreUnavailable as exc:
        # A command run while the database is down (or PIGEON_DATABASE_URL points nowhere):
        # the reason in one line, not a traceback through the driver.
        err.print(f"[red]{escape(str(exc))}[/red]", highlight=False, markup=True)
        err.print("Check PIGEON_DATABASE_URL, and that the database server is up and accepts connections.")
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
