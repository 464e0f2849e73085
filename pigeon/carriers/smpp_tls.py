"""SMPP over TLS: the client side of a carrier's encrypted port.

Carriers that take SMPP over the internet ask for TLS (often on port 3550 instead of 2775),
and some ask for a client certificate as well. A context is built from the carrier's
configuration for each connection, so that certificates renewed on disk are taken at the
next reconnect without a restart; `pigeon.carriers.config` builds one at load time too, so
that a missing or unreadable file stops the start with the key named, not a bind that fails
for ever.

Verification is never turned off: the SMSC's certificate must chain to `tls_ca_file` (or to
the system's certificate authorities) and name `tls_server_name` (or `host`). A carrier with a
self-signed certificate is trusted by giving that certificate as `tls_ca_file`.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field

__all__ = ["TlsSettings", "TlsSetupError", "client_context", "describe_failure"]


class TlsSetupError(ValueError):
    """The TLS files of a carrier cannot be used; the message names the key at fault."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key} {problem}")
        self.key = key
        self.problem = problem


@dataclass(frozen=True, kw_only=True)
class TlsSettings:
    ca_file: str = ""  # PEM certificates to trust; "": the system's
    server_name: str = ""  # the name the SMSC's certificate must carry; "": the carrier's host
    cert_file: str = ""  # our client certificate (PEM), for carriers that ask for one
    key_file: str = ""  # its private key (PEM); "": in cert_file
    key_password: str = field(default="", repr=False)  # for an encrypted key_file

    def __repr__(self) -> str:  # no path is secret, but the key's password is
        return (
            f"TlsSettings(ca_file={self.ca_file!r}, server_name={self.server_name!r}, "
            f"cert_file={self.cert_file!r}, key_file={self.key_file!r})"
        )


def client_context(tls: TlsSettings) -> ssl.SSLContext:
    """A verifying client context (TLS 1.2 at least); raises `TlsSetupError`."""
    for key, path in (("tls_ca_file", tls.ca_file), ("tls_cert_file", tls.cert_file), ("tls_key_file", tls.key_file)):
        _check_readable(key, path)
    try:
        context = ssl.create_default_context(cafile=tls.ca_file or None)
    except (ssl.SSLError, OSError) as exc:
        raise TlsSetupError("tls_ca_file", f"holds no PEM certificate Pigeon can read ({_reason(exc)})") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if tls.cert_file:
        _load_client_certificate(context, tls)
    return context


def _load_client_certificate(context: ssl.SSLContext, tls: TlsSettings) -> None:
    asked: list[bool] = []

    def password() -> bytes:
        # Without a callable, OpenSSL would prompt for the passphrase on the terminal: a
        # service started with no terminal would hang there.
        asked.append(True)
        return tls.key_password.encode()

    try:
        context.load_cert_chain(tls.cert_file, tls.key_file or None, password=password)
    except (ssl.SSLError, OSError) as exc:
        if asked and not tls.key_password:
            raise TlsSetupError("tls_key_file", "is encrypted: give its passphrase as tls_key_password") from None
        if asked:
            raise TlsSetupError("tls_key_password", "does not open tls_key_file") from None
        if tls.key_file:
            raise TlsSetupError(
                "tls_cert_file", f"and tls_key_file must be a PEM certificate and its private key ({_reason(exc)})"
            ) from None
        raise TlsSetupError(
            "tls_cert_file", f"must hold a PEM certificate and its private key ({_reason(exc)})"
        ) from None


def _check_readable(key: str, path: str) -> None:
    """OpenSSL's own errors name no file: say which one is missing before loading."""
    if not path:
        return
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise TlsSetupError(key, f"names no readable file: {path!r} ({exc.strerror or exc})") from None


def describe_failure(exc: ssl.SSLError) -> str:
    """What went wrong in a handshake, for `pigeon carriers`' last error."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"the SMSC's certificate was not accepted: {exc.verify_message or _reason(exc)}"
    reason = exc.reason or ""
    if reason == "WRONG_VERSION_NUMBER":  # what a plain SMPP port answers to a ClientHello
        return "TLS handshake failed: the SMSC did not answer in TLS (is this its plain SMPP port?)"
    if reason == "TLSV13_ALERT_CERTIFICATE_REQUIRED":
        return "the SMSC asks for a client certificate (tls_cert_file)"
    if reason in _CLIENT_CERTIFICATE_REFUSED:
        return f"the SMSC did not accept our client certificate ({_reason(exc)})"
    return f"TLS handshake failed: {_reason(exc)}"


#: Alerts with which a server refuses the client certificate it was given.
_CLIENT_CERTIFICATE_REFUSED = frozenset(
    {
        "TLSV1_ALERT_UNKNOWN_CA",
        "SSLV3_ALERT_BAD_CERTIFICATE",
        "SSLV3_ALERT_CERTIFICATE_EXPIRED",
        "SSLV3_ALERT_CERTIFICATE_REVOKED",
        "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
        "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE",
    }
)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason and exc.reason != "PEM lib":
        return str(exc.reason).replace("_", " ").lower()
    if isinstance(exc, ssl.SSLError):
        return "OpenSSL could not read it"
    return str(exc)
