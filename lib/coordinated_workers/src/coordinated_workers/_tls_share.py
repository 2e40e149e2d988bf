# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The leader's private key, shared with the workers through one application-owned secret.

Workers serve the coordinator leader's certificate, so they need its key; it never goes into
a databag. As ``_s3_share`` does for the s3 connection, the leader keeps one app secret
(label :data:`SECRET_LABEL`, content key ``private-key`` as upstream's workers read it),
grants it to each cluster relation, and publishes its id as ``privkey_secret_id``. A grant is
revoked as soon as its relation is gone, so exactly the related worker apps can read it.

A fingerprint in stored state (of the certificate, which changes whenever the key does, and
of the granted relations; never of the key itself) lets steady hooks skip every secret hook
tool; the key is read and the secret's content compared only when the certificate changed.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

import ops

from service_mesh import safe_text
from service_mesh.databag import canonical_json

from ._status import Problem

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from ._tls import ServerCertificate

logger = logging.getLogger(__name__)

SECRET_LABEL = "coordinated-workers-tls-key"  # noqa: S105 (a label, not a password)
_UNKNOWN = "?"
KEY_FIELD = "private-key"
"""The content key upstream's workers read the private key from."""


STORED_DEFAULTS = {"tls_key_fingerprint": "", "tls_key_secret_id": "", "tls_key_granted": "[]"}
"""The keys this module keeps in its owner's stored state (loaded by every hook anyway)."""


class TlsKeyShare(ops.Object):
    """The leader's side: one app secret with the key, granted to every cluster relation."""

    def __init__(
        self,
        charm: ops.CharmBase,
        cluster_endpoint: str,
        applied: ops.framework.BoundStoredState,
    ) -> None:
        super().__init__(charm, "tls-key-share")
        self._applied = applied  # the owner's: see STORED_DEFAULTS
        self._charm = charm
        self._endpoint = cluster_endpoint
        self.problems: list[Problem] = []

    def reconcile(
        self,
        certificate: ServerCertificate | None,
        key: Callable[[], str],
        relations: Sequence[ops.Relation],
        *,
        published: str | None = None,
    ) -> str | None:
        """Share ``key`` with ``relations`` (or remove the secret without a certificate).

        ``published`` is the ``server_cert`` the cluster bags carry now: another certificate
        there (another unit led in between, and put its key in the secret) makes this unit
        write its key again, whatever its own fingerprint says.

        Returns:
            The secret's id while it is shared, else None. Never raises: a refusal of the
            controller is a problem (waiting), and the next hook tries again; meanwhile the
            id last shared is still returned, so one failed grant (a new worker app) does not
            take TLS from every worker. (A key that could not be written yet is then a key
            of another certificate, which workers wait out with their last good files.)
        """
        self.problems = []
        granted = sorted(relation.id for relation in relations)
        desired = (
            ""
            if certificate is None
            else canonical_json({"certificate": certificate.fingerprint, "granted": granted})
        )
        current = certificate is None or published in (None, certificate.with_intermediates)
        if desired == self._applied.tls_key_fingerprint and current:
            return self._applied.tls_key_secret_id or None
        try:
            self._applied.tls_key_fingerprint = _UNKNOWN  # until every call below has succeeded
            self._applied.tls_key_secret_id = self._apply(certificate, key, relations)
            self._applied.tls_key_granted = json.dumps(granted if certificate is not None else [])
            self._applied.tls_key_fingerprint = desired
        except (ops.ModelError, ValueError) as e:
            message = safe_text(f"certificates: cannot share the key with workers ({e})", 200)
            logger.error("%s", message)
            self.problems.append(Problem.waiting(message))
            return (self._applied.tls_key_secret_id or None) if certificate is not None else None
        return self._applied.tls_key_secret_id or None

    def _apply(
        self,
        certificate: ServerCertificate | None,
        key: Callable[[], str],
        relations: Sequence[ops.Relation],
    ) -> str:
        try:
            secret = self.model.get_secret(label=SECRET_LABEL)
        except ops.SecretNotFoundError:
            secret = None
        if certificate is None:
            if secret is not None:
                secret.remove_all_revisions()
            return ""
        content = {KEY_FIELD: key()}
        if secret is None:
            secret = self._charm.app.add_secret(
                content, label=SECRET_LABEL, description="coordinator TLS key shared with workers"
            )
        elif secret.peek_content() != content:
            secret.set_content(content)
        current = {relation.id for relation in relations}
        for relation_id in json.loads(self._applied.tls_key_granted):
            if relation_id not in current:
                self._revoke(secret, relation_id)
        for relation in relations:
            secret.grant(relation)
        return secret.id or secret.get_info().id

    def _revoke(self, secret: ops.Secret, relation_id: int) -> None:
        """Take a gone relation's grant back (Juju drops it with the relation anyway)."""
        try:
            relation = self.model.get_relation(self._endpoint, relation_id)
            if relation is not None:
                secret.revoke(relation)
        except ops.ModelError as e:  # the relation is already gone from the model
            logger.debug("tls key: grant of relation %d not revoked: %s", relation_id, e)
