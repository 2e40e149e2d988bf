"""Own a set of Istio AuthorizationPolicies directly in Kubernetes (no mesh charm involved).

:class:`PolicyResourceManager` keeps the AuthorizationPolicies carrying its ownership labels
equal to a desired list. Compared with upstream's manager (vector
``prm-cluster-internal-tempo-wire.json``) the list request and the server-side-apply bodies are
identical, but:

* only policies that are missing or whose spec or ownership labels differ are applied, so a
  reconcile that changes nothing costs one LIST and no write (upstream re-applies every policy);
* make before break: every apply happens before any delete, and if an apply fails nothing is
  deleted, so the set of allow rules never shrinks below the old one. Upstream deletes stale
  policies first. Since a policy's name embeds a hash of its content, an updated policy is a new
  name plus a stale one: with us traffic is allowed by one or the other at every instant;
* deletes come in listing order (namespace, name); upstream's order is the reverse of its
  creation sort;
* failures are named errors (:class:`CRDMissingError` when Istio is not installed,
  :class:`ForbiddenError` with the ``juju trust`` advice), never lightkube or httpx2 ones.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import logging
from typing import TYPE_CHECKING, Any, Protocol, cast

from . import istio
from ._k8s import kubernetes_errors, list_all, patch
from ._models import MeshPolicy, MeshType
from .errors import CRDMissingError, KubernetesError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import lightkube

__all__ = ["PolicyResourceManager", "ReconcileResult"]

_Key = tuple[str, str]  # (namespace, name)
_NAMES_LOGGED = 10  # policies named in the one log line per reconcile; the rest are counted


class _Named(Protocol):
    @property
    def name(self) -> str: ...


class _CharmLike(Protocol):
    """What the manager needs from a charm: ``charm.app.name`` and ``charm.model.name``."""

    @property
    def app(self) -> _Named: ...

    @property
    def model(self) -> _Named: ...


@dataclasses.dataclass(frozen=True)
class ReconcileResult:
    """What a reconcile or delete did; each entry is ``"<namespace>/<name>"``.

    Attributes:
        applied: policies created or updated (server-side apply).
        deleted: stale policies removed (including ones already gone).
        unchanged: desired policies that were already as wanted.
    """

    applied: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        """Whether anything was written."""
        return bool(self.applied or self.deleted)


@functools.cache
def _authorization_policy_resource() -> Any:
    """The lightkube resource class, made on first use so importing the library stays cheap."""
    from lightkube.generic_resource import (
        create_namespaced_resource,  # pyright: ignore[reportUnknownVariableType]
    )

    # Same signature as canonical_service_mesh's, so both can live in one process.
    return create_namespaced_resource(istio.GROUP, istio.VERSION, istio.KIND, istio.PLURAL)


class PolicyResourceManager:
    """Create, update and delete the AuthorizationPolicies that carry ``labels``.

    Args:
        charm: anything with ``app.name`` and ``model.name`` (the owner, used in policy names).
        lightkube_client: a client built with a ``field_manager`` (server-side apply needs one).
            Listing spans all namespaces, so the application needs cluster-wide trust.
        labels: ownership labels put on every policy and used to find them again. They must be
            unique to this manager: whatever carries them and is not desired gets deleted.
        logger: where to log what was applied and deleted; this module's logger if None.
        namespace: manage policies in this namespace only. By default (as upstream) the
            manager lists every namespace, so another owner whose labels happen to be equal
            (upstream's ``<app>-<model>`` labels are equal for app ``a-b`` in model ``c`` and
            app ``a`` in model ``b-c``) has its policies deleted as stale. An owner whose
            policies all live in its own namespace should pass it.

    Raises:
        ValueError: ``labels`` is empty. (A client without a field manager makes lightkube
            refuse the first server-side apply with a ValueError, before anything is deleted.)
    """

    def __init__(
        self,
        charm: _CharmLike,
        lightkube_client: lightkube.Client,
        labels: Mapping[str, str],
        logger: logging.Logger | None = None,
        *,
        namespace: str | None = None,
    ) -> None:
        if not labels:
            raise ValueError(
                "PolicyResourceManager needs ownership labels: they are how it finds its own "
                "AuthorizationPolicies, and without them it would own every policy in the cluster"
            )
        self._owner_app = charm.app.name
        self._owner_model = charm.model.name
        self._client = lightkube_client
        self._labels = dict(labels)
        self._log = logger or logging.getLogger(__name__)
        self._namespace = namespace

    def reconcile(
        self,
        policies: Sequence[MeshPolicy],
        mesh_type: MeshType,
        raw_policies: Sequence[Mapping[str, Any]] | None = None,
    ) -> ReconcileResult:
        """Make the owned AuthorizationPolicies exactly ``policies`` plus ``raw_policies``.

        Args:
            policies: what to allow; each becomes one AuthorizationPolicy.
            mesh_type: the mesh the provider announced; only Istio is supported.
            raw_policies: complete AuthorizationPolicy manifests (``security.istio.io/v1``, with
                ``metadata.name`` and ``metadata.namespace``) to manage alongside.

        Returns:
            What was applied, deleted and left unchanged.

        Raises:
            ValueError: an unsupported mesh type, a malformed raw policy, or a policy outside
                the manager's ``namespace``.
            CRDMissingError: the cluster has no AuthorizationPolicy API (Istio not installed).
            KubernetesError: an API call failed; if it was an apply, nothing was deleted.
        """
        if MeshType(mesh_type) is not MeshType.istio:
            raise ValueError(f"unsupported mesh type {mesh_type!r}; only istio is supported")
        desired = self._desired(policies, raw_policies or ())
        existing = self._list()
        if existing is None:
            raise CRDMissingError(
                f"the cluster does not serve {istio.API_VERSION} {istio.KIND}: Istio is not "
                "installed (deploy istio-k8s) or its CRDs were removed",
                status_code=404,
            )
        to_apply = [
            key for key, manifest in desired.items() if _differs(existing.get(key), manifest)
        ]
        applied = self._apply_all([desired[key] for key in to_apply])
        deleted = self._delete_all([key for key in existing if key not in desired])
        unchanged = [_show(key) for key in desired if key not in to_apply]
        return ReconcileResult(tuple(applied), tuple(deleted), tuple(unchanged))

    def delete(self) -> ReconcileResult:
        """Delete every AuthorizationPolicy carrying this manager's labels.

        Without the AuthorizationPolicy API (Istio not installed) there is nothing to delete.

        Raises:
            KubernetesError: an API call failed (after trying every delete).
        """
        existing = self._list()
        if existing is None:
            return ReconcileResult()
        return ReconcileResult(deleted=tuple(self._delete_all(list(existing))))

    def _desired(
        self, policies: Sequence[MeshPolicy], raw_policies: Sequence[Mapping[str, Any]]
    ) -> dict[_Key, dict[str, Any]]:
        manifests = istio.authorization_policies(self._owner_app, self._owner_model, policies)
        manifests += [_checked_raw_policy(raw) for raw in raw_policies]
        desired: dict[_Key, dict[str, Any]] = {}
        for manifest in manifests:
            metadata = manifest["metadata"]
            if self._namespace is not None and metadata["namespace"] != self._namespace:
                raise ValueError(
                    f"policy {metadata['name']!r} is in namespace {metadata['namespace']!r}, "
                    f"but this manager only manages {self._namespace!r}"
                )
            metadata["labels"] = {**(metadata.get("labels") or {}), **self._labels}
            desired.setdefault((metadata["namespace"], metadata["name"]), manifest)
        return desired

    def _list(self) -> dict[_Key, dict[str, Any]] | None:
        """The owned policies by (namespace, name); None if the API does not exist."""
        resource = _authorization_policy_resource()
        try:
            with kubernetes_errors(f"list {istio.KIND}s labelled {self._labels}", self._owner_app):
                listed = list_all(
                    self._client, resource, namespace=self._namespace or "*", labels=self._labels
                )
        except KubernetesError as e:
            if e.status_code == 404:
                return None
            raise
        return {(item["metadata"]["namespace"], item["metadata"]["name"]): item for item in listed}

    def _apply_all(self, manifests: list[dict[str, Any]]) -> list[str]:
        """Apply each manifest; on failure try the rest, then raise (so nothing gets deleted)."""
        applied: list[str] = []
        failures: list[tuple[str, KubernetesError]] = []
        for manifest in manifests:
            shown = _show((manifest["metadata"]["namespace"], manifest["metadata"]["name"]))
            error = self._apply(manifest)
            if error is None:
                applied.append(shown)
                continue
            failures.append((shown, error))
            if error.status_code is None:
                break  # the API is unreachable: more attempts would only each wait for a timeout
        self._log_changes("applied", applied)
        if failures:
            raise _combined(
                failures,
                f"{len(failures)} of {len(manifests)} AuthorizationPolicies could not be applied, "
                "so no stale policy was deleted",
            )
        return applied

    def _apply(self, manifest: dict[str, Any]) -> KubernetesError | None:
        from lightkube.types import PatchType

        metadata = manifest["metadata"]
        try:
            with kubernetes_errors(f"apply {istio.KIND} {metadata['name']}", self._owner_app):
                patch(
                    self._client,
                    _authorization_policy_resource(),
                    metadata["name"],
                    manifest,
                    metadata["namespace"],
                    patch_type=PatchType.APPLY,
                    force=True,
                )
        except KubernetesError as e:
            return e
        return None

    def _delete_all(self, keys: list[_Key]) -> list[str]:
        """Delete each policy (gone already is fine); on failure try the rest, then raise."""
        deleted: list[str] = []
        failures: list[tuple[str, KubernetesError]] = []
        for key in keys:
            error = self._delete(key)
            if error is None:
                deleted.append(_show(key))
            else:
                failures.append((_show(key), error))
        self._log_changes("deleted", deleted)
        if failures:
            raise _combined(
                failures, f"{len(failures)} of {len(keys)} stale AuthorizationPolicies remain"
            )
        return deleted

    def _log_changes(self, done: str, shown: list[str]) -> None:
        """One line for all the policies a reconcile changed, naming the first few.

        Not a line per policy: under Juju every log record is a `juju-log` process, and a first
        reconcile of a large cluster applies hundreds of policies.
        """
        if not shown:
            return
        names = ", ".join(shown[:_NAMES_LOGGED])
        more = len(shown) - _NAMES_LOGGED
        if more > 0:
            names += f" and {more} more"
        self._log.info("%s %d AuthorizationPolicies: %s", done, len(shown), names)

    def _delete(self, key: _Key) -> KubernetesError | None:
        namespace, name = key
        try:
            with kubernetes_errors(f"delete {istio.KIND} {name}", self._owner_app):
                self._client.delete(_authorization_policy_resource(), name, namespace=namespace)
        except KubernetesError as e:
            return None if e.status_code == 404 else e
        return None


def _differs(existing: dict[str, Any] | None, manifest: dict[str, Any]) -> bool:
    """Whether applying ``manifest`` would change ``existing`` (labels others added are fine)."""
    if existing is None or existing.get("spec") != manifest["spec"]:
        return True
    metadata: dict[str, Any] = existing.get("metadata") or {}
    labels: dict[str, Any] = metadata.get("labels") or {}
    wanted: dict[str, str] = manifest["metadata"]["labels"]
    return any(labels.get(k) != v for k, v in wanted.items())


def _checked_raw_policy(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of a raw policy (a dict or a lightkube generic resource), validated."""
    to_dict = getattr(raw, "to_dict", None)
    source = cast("Mapping[str, Any]", to_dict()) if callable(to_dict) else raw
    manifest = copy.deepcopy(dict(source))
    metadata: dict[str, Any] = manifest.get("metadata") or {}
    problems: list[str] = []
    if manifest.get("apiVersion") != istio.API_VERSION or manifest.get("kind") != istio.KIND:
        problems.append(f"apiVersion/kind must be {istio.API_VERSION}/{istio.KIND}")
    if not metadata.get("name") or not metadata.get("namespace"):
        problems.append("metadata.name and metadata.namespace are required")
    if problems:
        raise ValueError(
            f"raw policy {metadata.get('name')!r} is not usable: " + "; ".join(problems)
        )
    return manifest


def _combined(failures: list[tuple[str, KubernetesError]], summary: str) -> KubernetesError:
    """One error of the first failure's kind that lists every failed policy."""
    names = ", ".join(shown for shown, _ in failures)
    first = failures[0][1]
    error = type(first)(
        f"{summary} ({names}); first error: {first}", status_code=first.status_code
    )
    error.__cause__ = first
    return error


def _show(key: _Key) -> str:
    return f"{key[0]}/{key[1]}"
