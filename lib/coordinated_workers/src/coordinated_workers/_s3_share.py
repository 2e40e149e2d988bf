# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Both ends of handing the s3 connection to workers: an app secret, granted per relation.

The coordinator's leader keeps one application-owned secret (label :data:`SECRET_LABEL`)
equal to the connection, grants it to every cluster relation and publishes its id as
``s3_secret_id`` beside the CA chain (``s3_tls_ca_chain``). A fingerprint in stored state
(a digest of the content and the granted relations, never the content) lets steady hooks skip
every secret hook tool. While the provider's data is malformed, the secret and the two keys stay
as last published, so workers keep running with the last good connection.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from typing import TYPE_CHECKING

import ops

from service_mesh import safe_text
from service_mesh.databag import canonical_json

from ._cluster_data import ClusterDataError, ClusterProviderAppData
from ._s3 import S3ConnectionInfo, S3DataError, S3Status, from_secret_content, secret_content
from ._status import Problem

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._s3 import S3Requirer

logger = logging.getLogger(__name__)

SECRET_LABEL = "coordinated-workers-s3"  # noqa: S105 (a label, not a password)
MISSING_S3 = "missing s3 integration"


@dataclasses.dataclass(frozen=True)
class SharedS3:
    """What goes into the cluster bags (and the worker-config callback) this hook."""

    info: S3ConnectionInfo | None = None
    secret_id: str | None = None
    ca_chain: str | None = None


class S3Share(ops.Object):
    """The coordinator's side: read the ``s3`` endpoint, share it with the workers."""

    _applied = ops.StoredState()

    def __init__(self, charm: ops.CharmBase, requirer: S3Requirer | None, required: bool) -> None:
        super().__init__(charm, "s3-share")
        self._applied.set_default(fingerprint="", secret_id="")
        self._charm = charm
        self._requirer = requirer
        self._required = required
        self._status: S3Status | None = None
        self._share_problem: str | None = None

    def status(self) -> S3Status:
        """The provider's connection this hook (read once: remote data is fixed in a hook)."""
        if self._status is None:
            requirer = self._requirer
            self._status = S3Status(related=False) if requirer is None else requirer.status()
        return self._status

    def problems(self) -> list[Problem]:
        """Missing (when required), malformed or not yet shared object storage."""
        status = self.status()
        problems: list[Problem] = []
        if not status.related:
            if self._required:
                problems.append(Problem.blocked(MISSING_S3))
        elif status.problem is not None:
            problems.append(Problem.blocked(f"s3: {status.problem}"))
        elif status.info is None and self._required:
            problems.append(Problem.waiting("waiting for the s3 provider's credentials"))
        if self._share_problem is not None:
            problems.append(Problem.waiting(self._share_problem))
        return problems

    def reconcile(self, cluster_relations: Sequence[ops.Relation]) -> SharedS3:
        """Ask for a bucket and share the connection with the workers (leader only).

        Never raises: a secret the controller refuses is a problem (waiting) and the next
        hook retries, the cluster bags keeping what they had.
        """
        if self._requirer is not None:
            self._requirer.request_bucket()
        status = self.status()
        if status.problem is not None:
            return self._kept(cluster_relations)
        info = status.info
        content = secret_content(info) if info is not None else None
        desired = self._fingerprint(content, cluster_relations)
        try:
            if desired != self._applied.fingerprint:
                self._applied.fingerprint = ""
                self._applied.secret_id = self._apply(content, cluster_relations)
                self._applied.fingerprint = desired
        except ops.ModelError as e:
            self._share_problem = f"s3: cannot share the credentials with workers ({e})"
            self._share_problem = safe_text(self._share_problem, 200)
            logger.error("%s", self._share_problem)
            return self._kept(cluster_relations)
        if info is None:
            return SharedS3()
        return SharedS3(info, self._applied.secret_id or None, info.ca_chain_text)

    @staticmethod
    def _fingerprint(content: dict[str, str] | None, relations: Sequence[ops.Relation]) -> str:
        if content is None:
            return canonical_json({"s3": None})
        digest = hashlib.sha256(canonical_json(content).encode()).hexdigest()
        return canonical_json({"s3": digest, "granted": sorted(r.id for r in relations)})

    def _apply(self, content: dict[str, str] | None, relations: Sequence[ops.Relation]) -> str:
        """Make the secret hold ``content`` (or be gone) and grant it; its id or ``""``."""
        try:
            secret = self.model.get_secret(label=SECRET_LABEL)
        except ops.SecretNotFoundError:
            secret = None
        if content is None:
            if secret is not None:
                secret.remove_all_revisions()
            return ""
        if secret is None:
            secret = self._charm.app.add_secret(
                content, label=SECRET_LABEL, description="s3 connection shared with workers"
            )
        elif secret.peek_content() != content:
            secret.set_content(content)
        for relation in relations:
            secret.grant(relation)
        return secret.id or secret.get_info().id

    def _kept(self, relations: Sequence[ops.Relation]) -> SharedS3:
        """The s3 keys as last published in our own cluster bags (the last good state)."""
        for relation in relations:
            try:
                data = ClusterProviderAppData.load(relation.data[self._charm.app])
            except (ClusterDataError, ops.ModelError):
                continue
            if data.s3_secret_id or data.s3_tls_ca_chain:
                return SharedS3(
                    self._kept_info(data.s3_secret_id), data.s3_secret_id, data.s3_tls_ca_chain
                )
        return SharedS3()

    def _kept_info(self, secret_id: str | None) -> S3ConnectionInfo | None:
        """The connection in our own secret, so the worker config keeps it too."""
        if secret_id is None:
            return None
        try:
            return from_secret_content(self.model.get_secret(id=secret_id).peek_content())
        except (ops.ModelError, S3DataError) as e:
            logger.warning("s3: the last shared connection cannot be read back: %s", e)
            return None


class S3SecretUnreadableError(S3DataError):
    """The worker cannot read the s3 secret (not granted yet, or just removed)."""


def worker_s3(model: ops.Model, secret_id: str | None) -> S3ConnectionInfo | None:
    """The worker's side: the connection behind ``secret_id`` (None: no object storage).

    The latest revision is read (``refresh``), so new credentials take effect on the next
    hook, which ``secret-changed`` is.

    Raises:
        S3SecretUnreadableError: the secret cannot be read (not granted yet, removed).
        S3DataError: the secret's content is malformed.
    """
    if secret_id is None:
        return None
    try:
        content = model.get_secret(id=secret_id).get_content(refresh=True)
    except ops.ModelError as e:  # SecretNotFoundError too
        detail = safe_text(str(e), 120)
        raise S3SecretUnreadableError(f"cannot read the s3 secret yet ({detail})") from None
    return from_secret_content(content)


def sync_file(container: ops.Container, path: str, text: str | None, present: bool) -> bool:
    """Make ``path`` hold ``text``, or remove it (if ``present``, as we last left it).

    Returns:
        Whether the file changed (the workload reads it only at start).
    """
    if text is None:
        if present:
            container.remove_path(path, recursive=True)
        return present
    try:
        with container.pull(path, encoding=None) as current:
            if current.read() == text.encode():
                return False
    except ops.pebble.PathError:
        pass
    container.push(path, text, make_dirs=True)
    return True
