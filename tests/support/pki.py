# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The one test CA of the TLS tests: real certificates made with ``cryptography``.

It plays a tls-certificates provider: `CA.provider_bag` signs the CSRs the coordinator's library
put in its unit bag and answers in the provider's wire format (``certificates``, a JSON list of
``ca``/``certificate_signing_request``/``certificate``/``chain``). `CA.issue` makes a server
certificate and its key directly, as a coordinator would hand them to its workers (`Issued`).
PEMs have no trailing newline, as the published library writes them. Keys are EC P-256: fast to
generate, and OpenSSL checks a key against its certificate the same way as for RSA.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import json
from collections.abc import Mapping

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import NameOID

_NOW = datetime.datetime.now(datetime.timezone.utc)


@dataclasses.dataclass(frozen=True)
class Issued:
    """A server certificate and its key, with the CA that signed it (all PEM)."""

    ca: str
    cert: str
    key: str


def _pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode().rstrip("\n")


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


def _general_names(names: tuple[str, ...]) -> list[x509.GeneralName]:
    """Each name as an IP SAN if it is an IP address, else as a DNS SAN."""
    sans: list[x509.GeneralName] = []
    for name in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            sans.append(x509.DNSName(name))
    return sans


class CA:
    """A CA that signs CSRs and issues server certificates: self-signed (a root), or an
    intermediate signed by ``parent``."""

    def __init__(self, name: str = "test-ca", *, parent: CA | None = None) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(parent.certificate.subject if parent else subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_NOW - datetime.timedelta(days=1))
            .not_valid_after(_NOW + datetime.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(parent.key if parent else self.key, hashes.SHA256())
        )
        self.pem = _pem(self.certificate)
        """The CA certificate, PEM without a trailing newline."""
        self.chain: tuple[str, ...] = (self.pem, *(parent.chain if parent else ()))
        """This CA's certificate, then its parents' up to the root (the last)."""

    def _leaf(
        self,
        subject: x509.Name,
        public_key: CertificatePublicKeyTypes,
        sans: x509.SubjectAlternativeName | None,
        days: int,
    ) -> str:
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(_NOW - datetime.timedelta(minutes=5))
            .not_valid_after(_NOW + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        )
        if sans is not None:
            builder = builder.add_extension(sans, critical=False)
        return _pem(builder.sign(self.key, hashes.SHA256()))

    def sign(self, csr_pem: str, *, days: int = 90) -> str:
        """Issue a certificate for ``csr_pem``: its subject, its key and its SANs."""
        csr = x509.load_pem_x509_csr(csr_pem.encode())
        try:
            sans = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            sans = None
        return self._leaf(csr.subject, csr.public_key(), sans, days)

    def issue(self, *names: str, key: ec.EllipticCurvePrivateKey | None = None) -> Issued:
        """A certificate for ``names`` (DNS names or IPs; the first is the CN), a new key unless
        ``key`` is given."""
        key = key or ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
        sans = x509.SubjectAlternativeName(_general_names(names))
        return Issued(self.pem, self._leaf(subject, key.public_key(), sans, 90), _pem_key(key))

    def renew(self, issued: Issued, *names: str) -> Issued:
        """A new certificate for the same key (a renewal that keeps the key)."""
        key = serialization.load_pem_private_key(issued.key.encode(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return self.issue(*names, key=key)

    def provider_bag(self, requirer_unit_bag: Mapping[str, str]) -> dict[str, str]:
        """The provider's app bag answering every CSR of ``requirer_unit_bag``.

        ``ca`` is the root; ``chain`` the certificate, then this CA up to the root.
        """
        requests = json.loads(requirer_unit_bag["certificate_signing_requests"])
        entries = []
        for request in requests:
            csr = request["certificate_signing_request"]
            certificate = self.sign(csr)
            entries.append(
                {
                    "ca": self.chain[-1],
                    "certificate_signing_request": csr,
                    "certificate": certificate,
                    "chain": [certificate, *self.chain],
                }
            )
        return {"certificates": json.dumps(entries)}


def csr_names(requirer_unit_bag: Mapping[str, str]) -> tuple[str, set[str]]:
    """The common name and the SANs (DNS and IP) of the bag's only CSR."""
    (request,) = json.loads(requirer_unit_bag["certificate_signing_requests"])
    csr = x509.load_pem_x509_csr(request["certificate_signing_request"].encode())
    common_name = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    return str(common_name), _san_names(csr.extensions)


def certificate_names(pem: str) -> set[str]:
    """The SANs (DNS and IP) of a PEM certificate."""
    return _san_names(x509.load_pem_x509_certificate(pem.encode()).extensions)


def _san_names(extensions: x509.Extensions) -> set[str]:
    sans = extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    names = {str(name) for name in sans.get_values_for_type(x509.DNSName)}
    return names | {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
