# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The worker's side of TLS: the coordinator's certificate and key, as files in the workload.

The coordinator's cluster bag carries ``ca_cert`` and ``server_cert`` (PEM) and
``privkey_secret_id``, a Juju secret granted to the worker app whose ``private-key`` field is
the key (upstream's wire format). The worker writes them where upstream's worker does, puts
the CA in the container's trust store (``update-ca-certificates``) and asks for one restart
when anything changed.

Reading the secret is a hook-tool call, so it is read only when the bag's TLS keys changed,
on ``secret-changed``, or when the key file on disk is not the one we wrote. A record in the
unit's stored state (digests and the secret id, never a certificate or key) says what was
written; while the bag matches it, a hook that does not verify costs no Pebble request and no
secret read. Verifying hooks (update-status, start, upgrade, pebble-ready) compare the files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import re
from typing import TYPE_CHECKING, Any

import ops

from service_mesh import safe_text
from service_mesh.databag import canonical_json

from ._status import CoordinatedWorkersError

if TYPE_CHECKING:
    from ._cluster_data import ClusterProviderAppData

logger = logging.getLogger(__name__)

CA_PATH = "/etc/worker/ca.cert"
CERT_PATH = "/etc/worker/server.cert"
KEY_PATH = "/etc/worker/private.key"
TRUSTED_CA_PATH = "/usr/local/share/ca-certificates/ca.crt"
"""Where ``update-ca-certificates`` picks the CA up from (the same file as upstream's)."""
UPDATE_CA_CERTIFICATES = ("update-ca-certificates", "--fresh")
PRIVATE_KEY_FIELD = "private-key"
MAX_KEY_LENGTH = 1 << 16
"""Longest private key (characters) we accept; an 8192-bit RSA key is about 6,500."""
_KEY_PEM = re.compile(
    r"-----BEGIN ((RSA|EC) )?PRIVATE KEY-----\r?\n[A-Za-z0-9+/=\r\n]+"
    r"-----END ((RSA|EC) )?PRIVATE KEY-----\s*",
    re.ASCII,  # only ASCII whitespace: OpenSSL takes the key as ASCII text
)
_ALL_PATHS = (CA_PATH, CERT_PATH, KEY_PATH, TRUSTED_CA_PATH)


@dataclasses.dataclass(frozen=True)
class WorkerTLS:
    """Where the workload finds its TLS files while the coordinator serves TLS.

    The CA is also in the container's trust store, so clients in the workload that use the
    system's (most HTTP libraries) trust the coordinator's https URLs.
    """

    ca_path: str = CA_PATH
    cert_path: str = CERT_PATH
    key_path: str = KEY_PATH
    """Mode 0600, owned by Pebble's user (root): a service with its own ``user`` cannot read it."""


class TLSDataError(CoordinatedWorkersError, ValueError):
    """The coordinator's TLS data cannot be used; the last good files are kept."""


class TLSSecretUnreadableError(TLSDataError):
    """The key's secret cannot be read (not granted yet, or removed)."""


class TLSKeyMismatchError(TLSDataError):
    """The key does not belong to the server certificate (a renewal half published)."""


@dataclasses.dataclass(frozen=True)
class Applied:
    """What this unit last wrote: sha256 digests and the secret id, never the content."""

    secret: str = ""
    ca: str = ""
    cert: str = ""
    key: str = ""
    trusted: str = ""
    """The CA digest ``update-ca-certificates`` last succeeded with ("" for none)."""

    @classmethod
    def load(cls, text: str) -> Applied:
        """The record kept in stored state; an empty or unreadable one is "nothing written"."""
        try:
            fields: Any = json.loads(text) if text else {}
        except ValueError:
            return cls()
        if not isinstance(fields, dict):
            return cls()
        return cls(**{name: str(fields.get(name, "")) for name in _RECORD_FIELDS})  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]

    def dump(self) -> str:
        """The text kept in stored state ("" when nothing is written)."""
        return "" if self == Applied() else canonical_json(dataclasses.asdict(self))


_RECORD_FIELDS = tuple(field.name for field in dataclasses.fields(Applied))


@dataclasses.dataclass(frozen=True)
class TLSSync:
    """What one reconcile does to the TLS files: decided by reads only, then applied."""

    record: Applied
    """The record to keep once applied."""
    tls: WorkerTLS | None
    """What the workload is told (``WorkerContext.tls``)."""
    pushes: tuple[tuple[str, str, int], ...] = ()
    removals: tuple[str, ...] = ()
    refresh_trust: bool = False

    @property
    def changes(self) -> bool:
        """Whether files change, so the workload must restart to read them."""
        return bool(self.pushes or self.removals)


def plan_tls(
    container: ops.Container,
    model: ops.Model,
    data: ClusterProviderAppData | None,
    applied: Applied,
    *,
    verify: bool,
    reread_key: bool,
) -> TLSSync:
    """Decide what to write, reading the secret and the files only when needed.

    Args:
        container: the workload container.
        model: for the key's secret.
        data: the coordinator's bag (None: no coordinator data, i.e. no TLS).
        applied: what this unit last wrote.
        verify: compare the files on disk even if the bag did not change.
        reread_key: read the secret's latest revision even if nothing else changed
            (``secret-changed``).

    Raises:
        TLSDataError: the bag or the secret cannot be used (incomplete, malformed, not
            granted, a key of another certificate); nothing is written.
        ops.pebble.Error: Pebble failed.
    """
    wanted = _wanted(data)
    if wanted is None:
        if applied == Applied():
            return TLSSync(applied, None)
        return TLSSync(Applied(), None, removals=_ALL_PATHS, refresh_trust=bool(applied.trusted))
    ca, cert, secret_id = wanted
    ca_digest, cert_digest = _digest(ca), _digest(cert)
    same_bag = applied.key != "" and (applied.secret, applied.ca, applied.cert) == (
        secret_id,
        ca_digest,
        cert_digest,
    )
    if same_bag and applied.trusted == ca_digest and not (verify or reread_key):
        return TLSSync(applied, WorkerTLS())
    on_disk = {path: _digest_on_disk(container, path) for path in _ALL_PATHS}
    key: str | None = None
    key_digest = applied.key
    if not same_bag or reread_key or on_disk[KEY_PATH] != applied.key:
        key = read_key(model, secret_id, latest=reread_key)
        key_digest = _digest(key)
        check_pems(ca, cert, key)
    pushes = [
        (path, text, 0o644)
        for path, text, digest in (
            (CA_PATH, ca, ca_digest),
            (CERT_PATH, cert, cert_digest),
            (TRUSTED_CA_PATH, ca, ca_digest),
        )
        if on_disk[path] != digest
    ]
    if key is not None and on_disk[KEY_PATH] != key_digest:
        pushes.append((KEY_PATH, key, 0o600))
    refresh = on_disk[TRUSTED_CA_PATH] != ca_digest or applied.trusted != ca_digest
    record = Applied(secret_id, ca_digest, cert_digest, key_digest, trusted=ca_digest)
    return TLSSync(record, WorkerTLS(), tuple(pushes), refresh_trust=refresh)


def apply_tls(container: ops.Container, sync: TLSSync) -> tuple[Applied, str | None]:
    """Write and remove the planned files, then refresh the trust store if the CA changed.

    Returns:
        The record to keep, and why the trust store could not be refreshed (None if it
        was, or did not need to be); then the record says so, and the next hook retries.

    Raises:
        ops.pebble.Error: a push or a removal failed (the record is not to be kept).
    """
    for path, text, mode in sync.pushes:
        container.push(path, text, make_dirs=True, permissions=mode)
    for path in sync.removals:
        with contextlib.suppress(ops.pebble.PathError):  # already gone (a restarted container)
            container.remove_path(path)
    if not sync.refresh_trust:
        return sync.record, None
    try:
        container.exec(list(UPDATE_CA_CERTIFICATES)).wait_output()
    except ops.pebble.ExecError as e:  # pyright: ignore[reportUnknownVariableType]
        if e.exit_code == COMMAND_NOT_FOUND:
            _no_trust_store(f"exit {COMMAND_NOT_FOUND}")
            return sync.record, None
        stderr = e.stderr if isinstance(e.stderr, str) else ""  # pyright: ignore[reportUnknownMemberType]
        why = f"update-ca-certificates failed (exit {e.exit_code}): {stderr.strip()}"
        return dataclasses.replace(sync.record, trusted=""), safe_text(why, 300)
    except ops.pebble.APIError as e:  # Pebble found no such executable in the image
        _no_trust_store(e.message)
    return sync.record, None


COMMAND_NOT_FOUND = 127
"""The exit status a command gets when its executable does not exist (as a shell reports it)."""


def _no_trust_store(why: str) -> None:
    """An image without ``update-ca-certificates`` (busybox, distroless) is not an error.

    The CA, certificate and key are written all the same, at the paths the workload is given
    (`WorkerTLS`); only the system trust store is left as it is. Retrying would fail the same
    way on every hook, so the CA counts as handled and is not retried until it changes.
    """
    logger.warning(
        "update-ca-certificates is not in the workload image (%s): the CA is at %s, "
        "not in the system trust store",
        safe_text(why, 200),
        CA_PATH,
    )


def _wanted(data: ClusterProviderAppData | None) -> tuple[str, str, str] | None:
    """The bag's (ca, cert, secret id), or None without TLS.

    Raises:
        TLSDataError: some of the three keys are set, not all.
    """
    if data is None:
        return None
    fields = {
        "ca_cert": data.ca_cert,
        "server_cert": data.server_cert,
        "privkey_secret_id": data.privkey_secret_id,
    }
    missing = sorted(name for name, value in fields.items() if not value)
    if len(missing) == len(fields):
        return None
    if missing:
        raise TLSDataError(f"TLS data incomplete (no {', '.join(missing)})")
    assert data.ca_cert and data.server_cert and data.privkey_secret_id  # checked just above
    return data.ca_cert, data.server_cert, data.privkey_secret_id


def read_key(model: ops.Model, secret_id: str, *, latest: bool) -> str:
    """The private key in the secret.

    ``secret-get`` returns the revision this unit tracks (the latest on first read) in one
    call; ``latest`` (on ``secret-changed``) makes it a second call that moves to the newest.
    A new key always comes with a ``secret-changed``, so the tracked revision is enough
    otherwise; until then a new certificate does not match the tracked key and waits.

    Raises:
        TLSSecretUnreadableError: the secret cannot be read.
        TLSDataError: its content holds no usable key.
    """
    try:
        secret = model.get_secret(id=secret_id)
        content = secret.get_content(refresh=True) if latest else secret.get_content()
    except ops.ModelError as e:  # SecretNotFoundError too
        raise TLSSecretUnreadableError(
            f"cannot read the TLS key secret yet ({safe_text(str(e), 120)})"
        ) from None
    key = content.get(PRIVATE_KEY_FIELD)
    if not key:
        raise TLSDataError(f"the TLS key secret has no {PRIVATE_KEY_FIELD!r} field")
    if len(key) > MAX_KEY_LENGTH:
        raise TLSDataError(f"the TLS private key is too large ({len(key)} characters)")
    if not _KEY_PEM.fullmatch(key):
        raise TLSDataError("the TLS private key is not an unencrypted PEM key")
    return key


def check_pems(ca: str, cert: str, key: str) -> None:
    """Parse the certificates and the key as OpenSSL will, and check the key is the cert's.

    ``ssl`` (the standard library) loads certificates from memory but a key only from a
    file, so the pair is written to a private temporary directory (0700) for the check and
    deleted with it. Imported here: only hooks that received new TLS data pay for it.

    Raises:
        TLSKeyMismatchError: the key belongs to another certificate.
        TLSDataError: a certificate or the key does not parse.
    """
    import ssl
    import tempfile

    _check_certificates("ca_cert", ca)
    _check_certificates("server_cert", cert)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory(prefix="worker-tls-") as directory:
        cert_file = os.path.join(directory, "cert.pem")
        key_file = os.path.join(directory, "key.pem")
        for path, text in ((cert_file, cert), (key_file, key)):
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w", encoding="ascii") as file:
                file.write(text)
        try:
            context.load_cert_chain(cert_file, key_file)
        except ssl.SSLError as e:
            # Another key of the certificate's type, or a key of another type (which OpenSSL
            # files apart from the certificate: "no certificate assigned" to it).
            if e.reason in ("KEY_VALUES_MISMATCH", "NO_CERTIFICATE_ASSIGNED"):
                raise TLSKeyMismatchError(
                    "the TLS key does not match the server certificate (a renewal half "
                    "published?); keeping the last good files"
                ) from None
            raise TLSDataError(f"the TLS key is not usable ({_reason(e)})") from None


def _check_certificates(name: str, pem: str) -> None:
    import ssl

    if not pem.isascii():  # ssl takes PEM text as ASCII only (else a TypeError)
        raise TLSDataError(f"{name} is not a usable certificate (not ASCII)")
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=pem)
    except (ssl.SSLError, ValueError) as e:
        raise TLSDataError(f"{name} is not a usable certificate ({_reason(e)})") from None


def _reason(error: Exception) -> str:
    reason = getattr(error, "reason", None)
    return safe_text(str(reason or error), 80)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _digest_on_disk(container: ops.Container, path: str) -> str:
    """The sha256 of the file at ``path`` as bytes, or "" if it is missing."""
    try:
        with container.pull(path, encoding=None) as current:
            return hashlib.sha256(current.read()).hexdigest()
    except ops.pebble.PathError:
        return ""
