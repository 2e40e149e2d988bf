# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""A real test CA (``cryptography``): it signs CSRs as a tls-certificates provider would.

Tests play the provider's side of the ``certificates`` relation with it: they read the CSR the
coordinator's library put in its unit bag, sign it, and hand back the provider bag
(``certificates``, a JSON list of ``ca``/``certificate_signing_request``/``certificate``/
``chain``, PEMs without trailing newlines, as the published provider writes it).
"""

from __future__ import annotations

import datetime
import ipaddress
import json
from collections.abc import Iterable, Mapping

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

_NOW = datetime.datetime.now(datetime.timezone.utc)


def _pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode().strip()


class TestCA:
    """A self-signed CA that issues server certificates."""

    __test__ = False  # not a pytest test class

    def __init__(self, name: str = "test-ca") -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
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
            .sign(self.key, hashes.SHA256())
        )

    @property
    def pem(self) -> str:
        """The CA certificate, PEM without a trailing newline."""
        return _pem(self.certificate)

    def sign(self, csr_pem: str, *, days: int = 90) -> str:
        """Issue a certificate for ``csr_pem``: its subject, its key and its SANs."""
        csr = x509.load_pem_x509_csr(csr_pem.encode())
        builder = (
            x509.CertificateBuilder()
            .subject_name(csr.subject)
            .issuer_name(self.certificate.subject)
            .public_key(csr.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_NOW - datetime.timedelta(minutes=5))
            .not_valid_after(_NOW + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        )
        try:
            sans = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        except x509.ExtensionNotFound:
            pass
        else:
            builder = builder.add_extension(sans.value, critical=False)
        return _pem(builder.sign(self.key, hashes.SHA256()))

    def server_certificate(self, names: Iterable[str]) -> tuple[str, str]:
        """A fresh key and a certificate for ``names`` (DNS names or IPs): (cert PEM, key PEM)."""
        key = ec.generate_private_key(ec.SECP256R1())
        sans: list[x509.GeneralName] = []
        for name in names:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                sans.append(x509.DNSName(name))
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "server")]))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .sign(key, hashes.SHA256())
        )
        certificate = self.sign(csr.public_bytes(serialization.Encoding.PEM).decode())
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return certificate, key_pem

    def provider_bag(self, requirer_unit_bag: Mapping[str, str]) -> dict[str, str]:
        """The provider's app bag answering every CSR of ``requirer_unit_bag``."""
        requests = json.loads(requirer_unit_bag["certificate_signing_requests"])
        entries = []
        for request in requests:
            csr = request["certificate_signing_request"]
            certificate = self.sign(csr)
            entries.append(
                {
                    "ca": self.pem,
                    "certificate_signing_request": csr,
                    "certificate": certificate,
                    "chain": [certificate, self.pem],
                }
            )
        return {"certificates": json.dumps(entries)}


def csr_names(requirer_unit_bag: Mapping[str, str]) -> tuple[str, set[str]]:
    """The common name and the SANs (DNS and IP) of the bag's only CSR."""
    (request,) = json.loads(requirer_unit_bag["certificate_signing_requests"])
    csr = x509.load_pem_x509_csr(request["certificate_signing_request"].encode())
    common_name = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    sans = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    names = {str(name) for name in sans.get_values_for_type(x509.DNSName)}
    names |= {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
    return str(common_name), names
