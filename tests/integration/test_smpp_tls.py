"""SMPP over TLS against the npm `smpp` package's own TLS server (a peer this project did not
write), with certificate authorities and certificates made for each test by trustme."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trustme
from prometheus_client import CollectorRegistry

from pigeon.carriers.metrics import CarrierMetrics
from pigeon.carriers.smpp import SmppCarrier
from pigeon.carriers.smpp_tls import TlsSettings
from tests.integration.smsc.node import NodeSmsc
from tests.integration.smsc.support import RecordingEvents, carrier_config, message, run_within

pytestmark = pytest.mark.usefixtures("npm_smsc")
run = functools.partial(run_within, seconds=45)


class Pki:
    """A certificate authority, the SMSC's certificate ("smsc.example" and 127.0.0.1), and a
    client certificate for Pigeon, as PEM files in `folder`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.ca = trustme.CA()
        self.ca_file = self._write("ca.pem", self.ca.cert_pem.bytes())
        server = self.ca.issue_cert("smsc.example", "127.0.0.1")
        self.server_key = self._write("server.key", server.private_key_pem.bytes())
        self.server_cert = self._write("server.pem", b"".join(c.bytes() for c in server.cert_chain_pems))
        client = self.ca.issue_cert("pigeon-client", common_name="pigeon-client")
        self.client_cert = self._write("client.pem", b"".join(c.bytes() for c in client.cert_chain_pems))
        self.client_key = self._write("client.key", client.private_key_pem.bytes())
        self.client_both = client.private_key_and_cert_chain_pem.bytes()
        stranger = trustme.CA().issue_cert("stranger", common_name="stranger")
        self.stranger = self._write("stranger.pem", stranger.private_key_and_cert_chain_pem.bytes())

    def _write(self, name: str, data: bytes) -> str:
        path = self.folder / name
        path.write_bytes(data)
        return str(path)

    def smsc(self, *, client_ca: bool = False) -> tuple[str, ...]:
        return (self.server_key, self.server_cert, *((self.ca_file,) if client_ca else ()))


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path)


@asynccontextmanager
async def carrier_for(smsc: NodeSmsc, **config: Any) -> AsyncIterator[tuple[SmppCarrier, RecordingEvents]]:
    events = RecordingEvents()
    carrier = SmppCarrier(carrier_config(smsc.port, **config), metrics=CarrierMetrics(CollectorRegistry()))
    await carrier.start(events)
    try:
        yield carrier, events
    finally:
        await carrier.stop()


async def refused(carrier: SmppCarrier) -> str:
    """The carrier's last error once a bind attempt has failed (it stays unbound)."""
    assert not await carrier.wait_bound(1.5)
    error = carrier.status().last_error
    assert error is not None
    return error


def test_binds_submits_and_gets_receipts_over_tls(pki: Pki) -> None:
    async def scenario() -> None:
        async with NodeSmsc.running(tls=pki.smsc()) as smsc:
            async with carrier_for(smsc, tls=TlsSettings(ca_file=pki.ca_file)) as (carrier, events):
                assert await carrier.wait_bound(5), carrier.status()
                ack = await carrier.submit(message("over TLS"))
                await events.wait(lambda e: len(e.receipts) == 1)
                assert events.receipts[0].carrier_id == ack.carrier_ids[0]
                (record,) = smsc.accepted()
                assert record["text"] == "over TLS"
                bind = await smsc.wait_event(lambda e: e.get("event") == "bind")
                assert bind["peer"]["tls"] is True and bind["peer"]["protocol"] in {"TLSv1.2", "TLSv1.3"}
                assert carrier.status().tls is True

    run(scenario)


def test_an_smsc_certificate_from_an_unknown_authority_is_refused(pki: Pki) -> None:
    """Without tls_ca_file only the system's authorities are trusted: trustme's CA is not one."""

    async def scenario() -> None:
        async with NodeSmsc.running(tls=pki.smsc()) as smsc, carrier_for(smsc, tls=TlsSettings()) as (carrier, _):
            error = await refused(carrier)
            assert "the SMSC's certificate was not accepted" in error
            assert "local issuer" in error or "self-signed" in error or "self signed" in error
            assert not [e for e in smsc.events if e.get("event") == "bind"]  # no password went out

    run(scenario)


def test_the_certificate_must_name_the_host_or_tls_server_name(pki: Pki) -> None:
    """The certificate names smsc.example and 127.0.0.1: connecting to "localhost" fails the
    name check, unless tls_server_name says which name to expect."""

    async def scenario() -> None:
        async with NodeSmsc.running(tls=pki.smsc()) as smsc:
            tls = TlsSettings(ca_file=pki.ca_file)
            async with carrier_for(smsc, host="localhost", tls=tls) as (carrier, _):
                error = await refused(carrier)
                assert "certificate was not accepted" in error and "'localhost'" in error
            named = TlsSettings(ca_file=pki.ca_file, server_name="smsc.example")
            async with carrier_for(smsc, host="localhost", tls=named) as (carrier, _):
                assert await carrier.wait_bound(5), carrier.status()

    run(scenario)


def test_an_smsc_that_asks_for_a_client_certificate(pki: Pki) -> None:
    async def scenario() -> None:
        async with NodeSmsc.running(tls=pki.smsc(client_ca=True)) as smsc:
            async with carrier_for(smsc, tls=TlsSettings(ca_file=pki.ca_file)) as (carrier, _):
                # As an alert ("asks for a client certificate") or a reset, as the timing goes.
                assert "client certificate" in await refused(carrier)
            stranger = TlsSettings(ca_file=pki.ca_file, cert_file=pki.stranger)
            async with carrier_for(smsc, tls=stranger) as (carrier, _):
                assert "client certificate" in await refused(carrier)
            mutual = TlsSettings(ca_file=pki.ca_file, cert_file=pki.client_cert, key_file=pki.client_key)
            async with carrier_for(smsc, tls=mutual) as (carrier, _):
                assert await carrier.wait_bound(5), carrier.status()
                bind = await smsc.wait_event(lambda e: e.get("event") == "bind" and e["status"] == 0)
                assert bind["peer"]["client_cert_cn"] == "pigeon-client"

    run(scenario)


def test_tls_to_a_plain_smpp_port_says_so(pki: Pki) -> None:
    async def scenario() -> None:
        async with NodeSmsc.running() as smsc, carrier_for(smsc, tls=TlsSettings(ca_file=pki.ca_file)) as (carrier, _):
            # The npm SMSC reads the ClientHello as the head of a PDU hundreds of megabytes long
            # and waits for the rest; an SMSC that answers instead gets "did not answer in TLS".
            assert "no TLS session within 2 s" in await refused(carrier)

    run(scenario)


def test_a_certificate_renewed_on_disk_is_used_at_the_next_connection(pki: Pki) -> None:
    """No restart: each connection reads the files again."""

    async def scenario() -> None:
        async with NodeSmsc.running(tls=pki.smsc(client_ca=True)) as smsc:
            renewed = TlsSettings(ca_file=pki.ca_file, cert_file=pki.stranger)
            async with carrier_for(smsc, tls=renewed) as (carrier, _):
                assert "client certificate" in await refused(carrier)
                Path(pki.stranger).write_bytes(pki.client_both)  # the operator puts the right one in place
                assert await carrier.wait_bound(5), carrier.status()
                bind = await smsc.wait_event(lambda e: e.get("event") == "bind" and e["status"] == 0)
                assert bind["peer"]["client_cert_cn"] == "pigeon-client"

    run(scenario)
