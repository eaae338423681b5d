"""Test helpers for the mailer: a settable clock, a capturing SMTP server, a throwaway CA.

Imported by conftest.py and the tests (pytest puts this folder on sys.path).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import socket
import ssl
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from db import utcnow
from tools.mailer.loopback import stop_controller

SMTP_USER = "shop"
SMTP_PASSWORD = "s3cret:p@ss"
"""Has `:` and `@`, so the URL must percent-encode it."""
MAIL_FROM = "ShopBot Returns <returns@shop.example>"
PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


class Clock:
    """A clock the test moves by hand.

    Starts a second after the real now: enqueue_email stamps rows with the real clock, and
    they must be due at the start.
    """

    def __init__(self) -> None:
        self.now = utcnow() + dt.timedelta(seconds=1)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, delta: dt.timedelta) -> None:
        self.now += delta


@dataclass
class Received:
    """One message as the server took it off the wire."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    tls: bool
    authenticated: bool

    @property
    def message(self) -> EmailMessage:
        parsed = BytesParser(policy=policy.default).parsebytes(self.data)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class CapturingHandler:
    """aiosmtpd handler that keeps every message and refuses chosen recipients."""

    received: list[Received] = field(default_factory=list[Received])
    refuse: dict[str, str] = field(default_factory=dict[str, str])
    """Recipient -> the reply to its RCPT TO, e.g. "550 5.1.1 no such user"."""

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(
            Received(
                mail_from=envelope.mail_from,
                rcpt_tos=list(envelope.rcpt_tos),
                data=envelope.original_content,
                tls=session.ssl is not None,
                authenticated=bool(session.authenticated),
            )
        )
        return "250 2.0.0 accepted"


@dataclass
class SmtpServer:
    """A running aiosmtpd server on loopback and how to reach it."""

    handler: CapturingHandler
    port: int
    url: str
    client_tls: ssl.SSLContext | None = None
    """Trusts the server's certificate (STARTTLS variant only)."""

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def message_ids(self) -> list[str]:
        return [str(r.message["Message-ID"]) for r in self.received]


def free_port() -> int:
    """A loopback port nobody listens on (until someone binds it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_smtp(handler: CapturingHandler, port: int, **smtp_kw: Any) -> Controller:
    """Start aiosmtpd in its thread; returns once it answers."""
    controller = Controller(handler, hostname="127.0.0.1", port=port, **smtp_kw)
    controller.start()
    return controller


def stop_smtp(controller: Controller) -> None:
    """Stop aiosmtpd after closing its connections (see `stop_controller`)."""
    stop_controller(controller)


async def client_sockets_closed() -> None:
    """Wait until this loop's sockets have finished closing.

    A TLS client closes with a round trip (close_notify) after aiosmtplib has returned; if
    the test's loop ends first, the transport is reported unclosed (ResourceWarning) in
    whichever later test the garbage collector runs. asyncio offers nothing to await for
    it, hence the poll over the loop's transport registry.
    """
    loop = asyncio.get_running_loop()
    transports: Any = getattr(loop, "_transports", {})
    async with asyncio.timeout(5):
        while any(t._sock is not None for t in list(transports.values())):  # noqa: ASYNC110
            await asyncio.sleep(0.01)


def authenticate(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    """aiosmtpd authenticator accepting SMTP_USER / SMTP_PASSWORD only."""
    expected = (SMTP_USER.encode(), SMTP_PASSWORD.encode())
    ok = isinstance(auth_data, LoginPassword) and auth_data == expected
    # handled=False: aiosmtpd sends the 235/535 reply itself.
    return AuthResult(success=ok, handled=False)


def make_tls(folder: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server, client) contexts: a throwaway CA and its certificate for 127.0.0.1."""
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mailer test CA")])
    ca_usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )
    ca = (
        _certificate(ca_name, ca_name, ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(ca_usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    loopback = x509.IPAddress(ipaddress.ip_address("127.0.0.1"))
    leaf = (
        _certificate(leaf_name, ca_name, key.public_key())
        .add_extension(x509.SubjectAlternativeName([loopback]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cadata=ca.public_bytes(serialization.Encoding.PEM).decode())
    return server, client


def _certificate(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
    )
