# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""A stand-in for self-signed-certificates: it signs every CSR it is sent, with one CA.

It answers on the tls-certificates wire format the published provider writes: the app bag's
``certificates`` is a JSON list of ``ca``, ``certificate_signing_request``, ``certificate`` and
``chain`` (PEMs without trailing newlines). A CSR it answered keeps its certificate, so the
plan reaches a fixed point; a CSR no unit sends any more is dropped.
"""

from __future__ import annotations

import datetime
import functools
import json
from typing import Any

import ops
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

META: dict[str, Any] = {
    "name": "self-signed-certificates",
    "provides": {"certificates": {"interface": "tls-certificates"}},
}
_KEY = "certificates"
_DAY = datetime.timedelta(days=1)


@functools.cache
def _ca() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """The plan's CA, made once per process."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "plan-ca")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _DAY)
        .not_valid_after(now + 365 * _DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, certificate


def _pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode().strip()


def sign(csr_pem: str) -> dict[str, Any]:
    """The provider's entry for one CSR: its certificate, the CA, the chain."""
    key, ca = _ca()
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(ca.subject)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _DAY)
        .not_valid_after(now + 90 * _DAY)
    )
    sans = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    certificate = _pem(
        builder.add_extension(sans.value, critical=False).sign(key, hashes.SHA256())
    )
    return {
        "ca": _pem(ca),
        "certificate_signing_request": csr_pem,
        "certificate": certificate,
        "chain": [certificate, _pem(ca)],
    }


class CertificatesStandIn(ops.CharmBase):
    """Answers every unit's CSRs on each ``certificates`` relation."""

    def __init__(self, framework: ops.Framework) -> None:
        super().__init__(framework)
        for event in (self.on.start, self.on.update_status):
            framework.observe(event, self._reconcile)
        framework.observe(self.on["certificates"].relation_changed, self._reconcile)
        framework.observe(self.on.collect_unit_status, self._on_collect_status)

    def _on_collect_status(self, event: ops.CollectStatusEvent) -> None:
        event.add_status(ops.ActiveStatus())

    def _reconcile(self, _event: ops.EventBase) -> None:
        for relation in self.model.relations["certificates"]:
            bag = relation.data[self.app]
            issued = {e["certificate_signing_request"]: e for e in json.loads(bag.get(_KEY, "[]"))}
            wanted = [
                request["certificate_signing_request"]
                for unit in relation.units
                for request in json.loads(
                    relation.data[unit].get("certificate_signing_requests", "[]")
                )
            ]
            # Sorted: relation.units is a set, and the bag must not change with its order.
            entries = [issued.get(csr) or sign(csr) for csr in sorted(set(wanted))]
            value = json.dumps(entries)
            if bag.get(_KEY) != value:
                bag[_KEY] = value
