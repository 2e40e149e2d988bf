# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Real certificates for the TLS tests: a CA, and server certificates it signs.

Made with ``cryptography`` as a certificates provider would make them, PEM without the trailing
newline (as the tls-certificates library publishes them). Keys are EC P-256: fast to generate,
and OpenSSL checks a key against its certificate the same way as for RSA.
"""

from __future__ import annotations

import dataclasses
import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

_START = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
_END = datetime.datetime(2036, 1, 1, tzinfo=datetime.timezone.utc)


@dataclasses.dataclass(frozen=True)
class Issued:
    """A server certificate and its key, with the CA that signed it (all PEM)."""

    ca: str
    cert: str
    key: str


def _pem_key(key: ec.EllipticCurvePrivateKey) -> str:
    return (
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        .decode()
        .rstrip("\n")
    )


def _pem_cert(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode().rstrip("\n")


class CA:
    """A self-signed CA that issues server certificates for DNS names."""

    def __init__(self, name: str = "test-ca") -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self._name = subject
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_START)
            .not_valid_after(_END)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self.pem = _pem_cert(self._cert)

    def issue(self, *names: str, key: ec.EllipticCurvePrivateKey | None = None) -> Issued:
        """A server certificate for ``names`` (the first is the CN), with a new key by default."""
        key = key or ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self._name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_START)
            .not_valid_after(_END)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        return Issued(self.pem, _pem_cert(cert), _pem_key(key))

    def renew(self, issued: Issued, *names: str) -> Issued:
        """A new certificate for the same key (a renewal that keeps the key)."""
        key = serialization.load_pem_private_key(issued.key.encode(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return self.issue(*names, key=key)
