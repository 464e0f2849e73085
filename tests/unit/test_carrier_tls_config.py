"""The tls_* keys of a [[carriers]] entry: read and checked at load, with the key at fault named."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest
import trustme
from cryptography.hazmat.primitives import serialization

from pigeon.carriers.config import CarrierConfigError, load_carriers
from pigeon.carriers.smpp_tls import TlsSettings, client_context, describe_failure


class Files:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        ca = trustme.CA()
        leaf = ca.issue_cert("pigeon-client")
        other = trustme.CA().issue_cert("someone-else")
        self.ca = self.write("ca.pem", ca.cert_pem.bytes())
        self.cert = self.write("client.pem", leaf.cert_chain_pems[0].bytes())
        self.key = self.write("client.key", leaf.private_key_pem.bytes())
        self.both = self.write("both.pem", leaf.private_key_and_cert_chain_pem.bytes())
        self.other_key = self.write("other.key", other.private_key_pem.bytes())
        key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), password=None)
        locked = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"open sesame"),
        )
        self.locked_key = self.write("locked.key", locked)
        self.garbage = self.write("garbage.pem", b"not a certificate\n")

    def write(self, name: str, data: bytes) -> str:
        path = self.folder / name
        path.write_bytes(data)
        return str(path)


@pytest.fixture
def files(tmp_path: Path) -> Files:
    return Files(tmp_path)


def carrier(**fields: Any) -> dict[str, Any]:
    return {"carriers": [{"name": "acme", "host": "h", "system_id": "sys", "password": "pw", **fields}]}


def mistake(**fields: Any) -> str:
    with pytest.raises(CarrierConfigError) as raised:
        load_carriers(carrier(**fields))
    return str(raised.value)


def test_plain_tcp_unless_asked() -> None:
    (acme,) = load_carriers(carrier()).carriers
    assert acme.tls is None


def test_tls_with_the_system_authorities() -> None:
    (acme,) = load_carriers(carrier(tls=True)).carriers
    assert acme.tls == TlsSettings()


def test_every_tls_key(files: Files) -> None:
    fields = {
        "tls": True,
        "tls_ca_file": files.ca,
        "tls_server_name": "smsc.acme.example",
        "tls_cert_file": files.cert,
        "tls_key_file": files.locked_key,
        "tls_key_password": "open sesame",
    }
    (acme,) = load_carriers(carrier(**fields)).carriers
    assert acme.tls == TlsSettings(
        ca_file=files.ca,
        server_name="smsc.acme.example",
        cert_file=files.cert,
        key_file=files.locked_key,
        key_password="open sesame",
    )
    assert "open sesame" not in repr(acme) and "open sesame" not in repr(acme.tls)
    context = client_context(acme.tls)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


def test_a_certificate_and_key_in_one_file(files: Files) -> None:
    (acme,) = load_carriers(carrier(tls=True, tls_cert_file=files.both)).carriers
    assert acme.tls == TlsSettings(cert_file=files.both)


def test_tls_keys_without_tls(files: Files) -> None:
    assert "tls_ca_file is set but tls is false" in mistake(tls_ca_file=files.ca)
    assert "tls_server_name is set but tls is false" in mistake(tls=False, tls_server_name="x")


def test_mistakes_name_the_key(files: Files) -> None:
    assert "tls must be true or false, got 'yes'" in mistake(tls="yes")
    assert f"tls_ca_file names no readable file: '{files.folder}/nope.pem'" in mistake(
        tls=True, tls_ca_file=f"{files.folder}/nope.pem"
    )
    assert "tls_ca_file holds no PEM certificate" in mistake(tls=True, tls_ca_file=files.garbage)
    assert "tls_cert_file must hold a PEM certificate and its private key" in mistake(
        tls=True, tls_cert_file=files.cert
    )
    assert "tls_cert_file and tls_key_file must be a PEM certificate and its private key" in mistake(
        tls=True, tls_cert_file=files.cert, tls_key_file=files.other_key
    )
    assert "tls_key_file names no readable file" in mistake(
        tls=True, tls_cert_file=files.cert, tls_key_file=f"{files.folder}/gone.key"
    )
    assert "tls_key_file is set without tls_cert_file" in mistake(tls=True, tls_key_file=files.key)
    assert "tls_server_name must be ASCII" in mistake(tls=True, tls_server_name="smsc.exämple")


def test_an_encrypted_key_never_prompts(files: Files) -> None:
    """OpenSSL's default would ask on the terminal: a service without one would hang."""
    assert "tls_key_file is encrypted: give its passphrase as tls_key_password" in mistake(
        tls=True, tls_cert_file=files.cert, tls_key_file=files.locked_key
    )
    message = mistake(tls=True, tls_cert_file=files.cert, tls_key_file=files.locked_key, tls_key_password="guess")
    assert "tls_key_password does not open tls_key_file" in message and "guess" not in message


def test_a_nul_in_any_text_is_refused() -> None:
    assert "system_id must not contain a NUL character" in mistake(system_id="pig\0eon")


def test_handshake_failures_in_words() -> None:
    unknown_ca = ssl.SSLError(1, "[SSL: TLSV1_ALERT_UNKNOWN_CA] tlsv1 alert unknown ca")
    unknown_ca.reason = "TLSV1_ALERT_UNKNOWN_CA"
    assert describe_failure(unknown_ca) == "the SMSC did not accept our client certificate (tlsv1 alert unknown ca)"
    plain = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")
    plain.reason = "WRONG_VERSION_NUMBER"
    assert "did not answer in TLS (is this its plain SMPP port?)" in describe_failure(plain)
