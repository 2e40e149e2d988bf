# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The coordinator's server certificate, through the published tls-certificates library.

Each coordinator unit asks for one certificate (the library's ``Mode.UNIT``: its own key,
kept by the library in a unit secret) whose SANs are the coordinator's Service FQDN, every
coordinator unit's pod FQDN and every worker unit's pod FQDN, so one certificate serves the
Service, each pod, and (on the leader, shared with them) the workers. The request is
re-sent when those names change.

The library (and with it ``cryptography``) is imported only on hooks that need it: its own
events (the endpoint's relation hooks, leader election, secret expiry and removal), a change of
the SANs, or new provider data. Every other hook compares a digest of the two bags it would
read (our CSRs, the provider's certificates) with the one of the certificate last adopted,
and uses that certificate as stored (its public PEMs only): no parsing, no secret read.

A certificate is adopted only once it parses, matches one of our CSRs and our private key;
anything else the provider sends is a problem (blocked) and the last good certificate stays.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import json
import logging
import os
from typing import TYPE_CHECKING, Any, cast

import ops

from service_mesh import dispatched_event_name, safe_text

from ._status import Problem

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

logger = logging.getLogger(__name__)

CERTIFICATES_KEY = "certificates"
"""The provider's app databag key (tls-certificates v1)."""
CSRS_KEY = "certificate_signing_requests"
"""The requirer's unit databag key (tls-certificates v1)."""
_LIBRARY_EVENTS = ("leader_elected", "secret_expired", "secret_remove")


@dataclasses.dataclass(frozen=True)
class ServerCertificate:
    """The certificate this unit serves: public PEMs only (the key stays in its secret)."""

    certificate: str
    """The server certificate, PEM without a trailing newline (the cluster bag's form)."""
    ca: str
    """The issuing CA, PEM without a trailing newline."""
    chain: tuple[str, ...]
    """The provider's chain (leaf first), PEMs without trailing newlines."""
    intermediates: tuple[str, ...]
    """The CAs between the certificate and a self-signed root, the leaf's issuer first: what
    a client needs besides the root it trusts (see `from_provider`)."""

    @classmethod
    def from_provider(cls, certificate: str, ca: str, chain: Sequence[str]) -> ServerCertificate:
        """The provider's three fields, with the intermediates found among ``ca`` and ``chain``.

        Raises:
            ValueError: a PEM does not parse.
        """
        return cls(certificate, ca, tuple(chain), issuing_path(certificate, (ca, *chain)))

    @property
    def fingerprint(self) -> str:
        """A digest of the PEMs: equal certificates, equal fingerprints."""
        text = "\n".join((self.certificate, self.ca, *self.chain))
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def with_intermediates(self) -> str:
        """The certificate, then its intermediate CAs (PEMs, no trailing newline; no root).

        What every server of it sends clients, nginx and the workers alike (the cluster bag's
        ``server_cert``): a client that trusts only the root needs the intermediates to verify
        it, and has the root already.
        """
        return "\n".join((self.certificate, *self.intermediates))

    @property
    def served(self) -> str:
        """The text of nginx's certificate file: `with_intermediates` and a newline."""
        return self.with_intermediates + "\n"


STORED_DEFAULTS = {"tls_sans": "", "tls_bags": "", "tls_certificate": ""}
"""The keys this module keeps in its owner's stored state, and their defaults."""


class CoordinatorTls(ops.Object):
    """One unit's certificate request and the certificate it was given.

    Its record lives in the owner's stored state (`STORED_DEFAULTS`), which every hook loads
    anyway: a StoredState of its own would be loaded by every hook, TLS or not.
    """

    def __init__(
        self,
        charm: ops.CharmBase,
        endpoint: str | None,
        sans: Callable[[], Sequence[str]],
        applied: ops.framework.BoundStoredState,
    ) -> None:
        super().__init__(charm, "tls")
        self._applied = applied
        self._charm = charm
        self._endpoint = endpoint if endpoint and endpoint in charm.meta.relations else None
        self._sans = sans
        self._requirer: Any = None
        self._key: str | None = None
        self._problems: list[Problem] = []
        # The library (and cryptography) is loaded for its own hooks only, and only while the
        # endpoint has a relation (its broken hook included): without one it has nothing to do.
        if (
            self._endpoint is not None
            and self._library_event(self._endpoint)
            and self.model.relations[self._endpoint]
        ):
            # The library's own handlers parse the provider's PEMs and raise on bad ones, which
            # would fail the hook: they run only on data that parses (else reconcile says why).
            relation = self._relation()
            try:
                _check_provider(relation.data[relation.app] if relation and relation.app else {})
            except ValueError:
                pass
            else:
                self._library()

    @property
    def related(self) -> bool:
        """Whether the certificates endpoint has a relation (one ``relation-ids`` call)."""
        return self._relation() is not None

    @property
    def problems(self) -> list[Problem]:
        """What the provider sent that could not be used, found by the last `reconcile`."""
        return list(self._problems)

    def reconcile(self) -> ServerCertificate | None:
        """Keep the request in step with the SANs and return the certificate to serve.

        Never raises: a library or provider failure becomes a problem, and the last adopted
        certificate is returned while the relation lasts. None when not related.
        """
        self._problems = []
        if self._relation() is None:
            if self._applied.tls_certificate:
                self._applied.tls_certificate = self._applied.tls_bags = self._applied.tls_sans = (
                    ""
                )
            return None
        sans = "\n".join(sorted(set(self._sans())))
        try:
            self._adopt()
            if sans != self._applied.tls_sans:
                self._library().sync()
                self._applied.tls_sans = sans
        except Exception as e:  # the library parses remote PEMs and raises what it meets
            message = f"certificates: cannot use the provider's data ({type(e).__name__}: {e})"
            self._problems.append(Problem.blocked(safe_text(message, 300)))
            logger.error("%s", safe_text(message, 1000))
        return self._adopted()

    def private_key(self) -> str:
        """This unit's private key (a secret read, made only when a certificate changed).

        Raises:
            ops.ModelError: the library's secret cannot be read.
            ValueError: there is no key (yet), or it is not the adopted certificate's: the
                library made a new key whose certificate has not come yet. Served or shared,
                that pair would fail every handshake, so the callers keep the last good one.
        """
        if self._key is None:
            key = self._library().private_key
            if key is None:
                raise ValueError("no private key yet")
            adopted = self._adopted()
            if adopted is not None and not _matches(adopted.certificate, str(key)):
                raise ValueError("a new key awaits its certificate from the provider")
            self._key = str(key).strip() + "\n"
        return self._key

    # --- internals ------------------------------------------------------------------------

    def _library_event(self, endpoint: str) -> bool:
        """Whether the dispatched hook is one the library observes (unknown: assume so)."""
        if os.environ.get("JUJU_DISPATCH_PATH", "").startswith("actions/"):
            return False  # an action: the library handles none
        dispatched = dispatched_event_name()
        prefix = endpoint.replace("-", "_") + "_relation_"
        return dispatched is None or dispatched.startswith(prefix) or dispatched in _LIBRARY_EVENTS

    def _relation(self) -> ops.Relation | None:
        """The endpoint's relation; None as it is being removed (its relation-broken hook)."""
        if self._endpoint is None:
            return None
        relations = self.model.relations[self._endpoint]
        broken = self._endpoint.replace("-", "_") + "_relation_broken"
        return relations[0] if relations and dispatched_event_name() != broken else None

    def _library(self) -> Any:
        """The published requirer, constructed (and imported) on first use."""
        if self._requirer is None:
            from charmlibs.interfaces import tls_certificates as tls

            self._requirer = tls.TLSCertificatesRequiresV4(
                self._charm,
                self._endpoint or "certificates",
                certificate_requests=self._requests,
                mode=tls.Mode.UNIT,
            )
        return self._requirer

    def _requests(self, _capabilities: object) -> list[Any]:
        from charmlibs.interfaces import tls_certificates as tls

        names = sorted(set(self._sans()))
        ips = [name for name in names if _is_ip(name)]
        return [
            tls.CertificateRequestAttributes(
                common_name=self._charm.app.name,
                sans_dns=[name for name in names if name not in ips],
                sans_ip=ips or None,
            )
        ]

    def _bags(self, relation: ops.Relation) -> str:
        """A digest of our CSRs and the provider's certificates, as the bags hold them now."""
        ours = relation.data[self._charm.unit].get(CSRS_KEY, "")
        theirs = relation.data[relation.app].get(CERTIFICATES_KEY, "") if relation.app else ""
        return hashlib.sha256(json.dumps([ours, theirs]).encode()).hexdigest()

    def _adopt(self) -> None:
        """Adopt the provider's certificate for our CSR if the bags changed since last time."""
        relation = self._relation()
        if relation is None:
            return
        bags = self._bags(relation)
        if bags == self._applied.tls_bags:
            return
        _check_provider(relation.data[relation.app] if relation.app else {})
        requirer = self._library()
        requests = requirer.get_csrs_from_requirer_relation_data()
        ours = {str(request.certificate_signing_request) for request in requests}
        found = [
            c
            for c in requirer.get_provider_certificates()
            if str(c.certificate_signing_request) in ours and not c.revoked
        ]
        if not found:  # not issued yet (or withdrawn): nothing to adopt, keep what we serve
            self._applied.tls_bags = bags
            return
        issued = found[-1]
        key = requirer.private_key
        if key is None or not issued.certificate.matches_private_key(key):
            raise ValueError("the certificate does not match this unit's private key")
        adopted = ServerCertificate.from_provider(
            _canonical_pem(str(issued.certificate)),
            _canonical_pem(str(issued.ca)),
            [_canonical_pem(str(pem)) for pem in issued.chain],
        )
        self._key = str(key).strip() + "\n"
        self._applied.tls_certificate = json.dumps(dataclasses.asdict(adopted))
        self._applied.tls_bags = bags

    def _adopted(self) -> ServerCertificate | None:
        if not self._applied.tls_certificate:
            return None
        fields = json.loads(self._applied.tls_certificate)
        if "intermediates" not in fields:  # adopted before they were kept: found once, now
            fields["intermediates"] = issuing_path(
                fields["certificate"], (fields["ca"], *fields["chain"])
            )
            self._applied.tls_certificate = json.dumps(fields)
        return ServerCertificate(
            fields["certificate"],
            fields["ca"],
            tuple(fields["chain"]),
            tuple(fields["intermediates"]),
        )


def _check_provider(bag: Mapping[str, str]) -> None:
    """Refuse provider data the library would choke on (raise) or only log and skip.

    Raises:
        ValueError: ``certificates`` is not a JSON list of entries whose PEMs all parse.
    """
    raw = bag.get(CERTIFICATES_KEY)
    if raw is None:
        return
    try:
        entries: object = json.loads(raw)
        raw.encode()
    except (ValueError, RecursionError):  # a lone surrogate, nesting deeper than Python goes
        raise ValueError(f"{CERTIFICATES_KEY!r} is not valid JSON") from None
    if not isinstance(entries, list):
        raise ValueError(f"{CERTIFICATES_KEY!r} is not a JSON list")
    from cryptography import x509

    for n, entry in enumerate(cast("list[object]", entries)):
        if not isinstance(entry, dict):
            raise ValueError(f"certificate {n} is not an object")
        fields = cast("dict[str, object]", entry)
        chain: object = fields.get("chain") or []
        if not isinstance(chain, list):
            raise ValueError(f"certificate {n}: 'chain' is not a list")
        pems = [fields.get("ca"), fields.get("certificate"), *cast("list[object]", chain)]
        if not all(isinstance(pem, str) for pem in pems):
            raise ValueError(f"certificate {n}: 'ca', 'certificate' and 'chain' must be PEMs")
        try:
            x509.load_pem_x509_csr(str(fields.get("certificate_signing_request", "")).encode())
            for pem in pems:
                x509.load_pem_x509_certificate(str(pem).encode())
        except ValueError:
            raise ValueError(f"certificate {n} holds a PEM that does not parse") from None


def issuing_path(certificate: str, candidates: Sequence[str]) -> tuple[str, ...]:
    """The CAs from ``certificate``'s issuer up to, not including, a self-signed root.

    Followed by subject and issuer names (then checked by signature), so the provider's order
    does not matter; a CA that is not among ``candidates`` ends the path. A client trusting the
    root needs the rest: nginx must send every intermediate, and sending the root is useless.
    """
    from cryptography import x509

    loaded = {pem: x509.load_pem_x509_certificate(pem.encode()) for pem in candidates}
    current = x509.load_pem_x509_certificate(certificate.encode())
    path: list[str] = []
    while len(path) < len(loaded):
        issuer = next(
            (
                pem
                for pem, ca in loaded.items()
                if ca.subject == current.issuer and pem not in path and _signed_by(current, ca)
            ),
            None,
        )
        if issuer is None or loaded[issuer].subject == loaded[issuer].issuer:
            break  # the end of what we were given, or the self-signed root
        path.append(issuer)
        current = loaded[issuer]
    return tuple(path)


def _signed_by(certificate: Any, ca: Any) -> bool:
    from cryptography.exceptions import InvalidSignature

    try:
        certificate.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):  # names, key type, signature
        return False
    return True


def _matches(certificate: str, key: str) -> bool:
    """Whether ``key`` (PEM) is the private key of ``certificate`` (PEM)."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        PublicFormat,
        load_pem_private_key,
    )

    try:
        ours = load_pem_private_key(key.encode(), password=None).public_key()
    except TypeError as e:  # encrypted, or a key type cryptography cannot serialise
        raise ValueError(f"unusable private key: {e}") from None
    theirs = x509.load_pem_x509_certificate(certificate.encode()).public_key()
    spki = Encoding.DER, PublicFormat.SubjectPublicKeyInfo
    return ours.public_bytes(*spki) == theirs.public_bytes(*spki)


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _canonical_pem(text: str) -> str:
    """One PEM certificate as cryptography writes it, without trailing newline.

    Whatever surrounded the PEM block in the provider's text (cryptography reads past it) is
    dropped, so only a certificate reaches nginx's files and the workers.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    certificate = x509.load_pem_x509_certificate(text.encode())
    return certificate.public_bytes(Encoding.PEM).decode().strip()
