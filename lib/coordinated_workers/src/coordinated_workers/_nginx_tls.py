# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""nginx's certificate and key files in its container, written through Pebble on change only.

Which certificate nginx has on disk is remembered as a fingerprint (of the public PEMs) in the
unit's stored state, so a steady hook makes no Pebble call for them; an event that verifies
(``update-status``, ``start``...) reads the certificate file back once, which also repairs a
container that restarted with an empty disk. The key is asked for (a secret read) only when
the files are written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import ops

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._tls import ServerCertificate

CERTS_DIR = "/etc/nginx/certs"
CERT_FILE = "server.cert"
KEY_FILE = "server.key"
CERT_PATH = f"{CERTS_DIR}/{CERT_FILE}"
"""The certificate nginx serves (``ssl_certificate``): the server certificate, then the
chain's intermediates."""
KEY_PATH = f"{CERTS_DIR}/{KEY_FILE}"
"""Its private key (``ssl_certificate_key``), readable by the owner only."""


def sync_certificate(
    container: ops.Container,
    certificate: ServerCertificate | None,
    key: Callable[[], str],
    applied: str,
    *,
    verify: bool,
) -> tuple[str, bool]:
    """Write (or, with ``certificate`` None, remove) nginx's certificate and key if needed.

    Args:
        container: the nginx container.
        certificate: what to serve; None removes the files we wrote.
        key: this unit's private key, called only when the files are written.
        applied: the fingerprint of what we last wrote ("" for nothing).
        verify: read the certificate back even if ``applied`` says it is there.

    Returns:
        The fingerprint now on disk ("" for none), and whether the files changed (then nginx
        must reload to serve them).

    Raises:
        ops.pebble.Error: Pebble failed (the caller reports it; the next hook retries).
    """
    if certificate is None:
        if applied:
            for path in (CERT_PATH, KEY_PATH):
                _remove(container, path)
        return "", bool(applied)
    wanted = certificate.fingerprint
    if wanted == applied and not (verify and _on_disk(container) != certificate.served):
        return applied, False
    container.push(KEY_PATH, key(), make_dirs=True, permissions=0o600)
    container.push(CERT_PATH, certificate.served, make_dirs=True, permissions=0o644)
    return wanted, True


def _remove(container: ops.Container, path: str) -> None:
    """Remove ``path``; one already gone (a container that restarted empty) is removed."""
    try:
        container.remove_path(path)
    except ops.pebble.PathError as e:
        if e.kind != "not-found":
            raise


def _on_disk(container: ops.Container) -> str | None:
    try:
        with container.pull(CERT_PATH) as served:
            return served.read()
    except ops.pebble.PathError:
        return None
