# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Own a set of Istio AuthorizationPolicies directly in Kubernetes (no mesh charm involved).

:class:`PolicyResourceManager` keeps the AuthorizationPolicies carrying its ownership labels
equal to a desired list:

* only policies that are missing or whose spec or ownership labels differ are applied, so a
  reconcile that changes nothing costs one LIST and no write;
* make before break: every apply happens before any delete, and a stale policy that a failed
  apply was to replace (one that lets a source of the failed policy into the same namespace) is
  kept, so no source loses access before its new rules are in place. Since a policy's name
  embeds a hash of its content, an updated policy is a new name plus a stale one: traffic is
  allowed by one or the other at every instant. Stale policies of other sources are still
  deleted: one refused policy does not hold back every revocation (when the API does not
  answer at all, nothing is deleted);
* with ``owner_statefulset``, every policy carries an ``ownerReference`` to the owner's
  StatefulSet, so Kubernetes deletes them when Juju removes the application even if no hook
  cleaned up;
* deletes come in listing order (namespace, name);
* failures are named errors (:class:`CRDMissingError` when Istio is not installed,
  :class:`ForbiddenError` with the ``juju trust`` advice, :class:`MalformedResponseError` for
  an answer that is not what was asked for), never lightkube, msgspec or httpx2 ones.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import logging
from typing import TYPE_CHECKING, Any, Protocol, cast

from . import istio
from ._k8s import (
    expect_object,
    kubernetes_errors,
    list_all,
    patch,
    statefulset_owner_reference,
)
from ._models import MeshPolicy, MeshType
from .errors import CRDMissingError, KubernetesError, MalformedResponseError

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
        failed: desired policies that are not in place: their apply failed or, with the API
            unreachable, was not tried.
        held: stale policies kept because a failed policy was to replace them.
    """

    applied: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    held: tuple[str, ...] = ()

    @property
    def in_place(self) -> frozenset[str]:
        """Desired policies that are in the cluster as wanted (applied or unchanged)."""
        return frozenset(self.applied + self.unchanged)

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
        owner_statefulset: give every policy an ``ownerReference`` to this StatefulSet (in
            ``namespace``, which it requires), usually the owner app's own, so Kubernetes
            deletes the policies when Juju removes the application, even if no hook cleaned up.
            Its uid costs one GET, made only when something is to be applied.

    Raises:
        ValueError: ``labels`` is empty, or ``owner_statefulset`` comes without ``namespace``.
            (A client without a field manager makes lightkube refuse the first server-side
            apply with a ValueError, before anything is deleted.)
    """

    def __init__(
        self,
        charm: _CharmLike,
        lightkube_client: lightkube.Client,
        labels: Mapping[str, str],
        logger: logging.Logger | None = None,
        *,
        namespace: str | None = None,
        owner_statefulset: str | None = None,
    ) -> None:
        if owner_statefulset is not None and namespace is None:
            raise ValueError(
                "an owner StatefulSet needs the manager's namespace: an ownerReference only "
                "reaches objects in the owner's own namespace"
            )
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
        self._owner_statefulset = owner_statefulset
        self.last_result: ReconcileResult | None = None
        """What the latest :meth:`reconcile` did, also when it raised (then partly done)."""

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
            KubernetesError: an API call failed, after every other apply and every delete not
                held back by a failed apply was tried; :attr:`last_result` says what was done.
        """
        self.last_result = None
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
        owner = self._owner_statefulset
        to_apply = [
            key
            for key, manifest in desired.items()
            if _differs(existing.get(key), manifest, owner)
        ]
        if to_apply and owner is not None:
            assert self._namespace is not None  # checked at construction
            reference = statefulset_owner_reference(self._client, owner, self._namespace)
            for key in to_apply:
                metadata = desired[key]["metadata"]
                others = [  # a raw policy may name owners of its own
                    ref
                    for ref in _items(metadata.get("ownerReferences"))
                    if _map(ref).get("uid") != reference["uid"]
                ]
                metadata["ownerReferences"] = [*others, reference]
        applied, apply_failures, not_in_place = self._apply_all(to_apply, desired)
        stale = [key for key in existing if key not in desired]
        if apply_failures and apply_failures[-1][1].status_code is None:
            held = stale  # the API does not answer: each delete would only wait for a timeout
        else:
            failed_manifests = [desired[key] for key in not_in_place]
            held = [key for key in stale if _replaced_by_any(existing[key], failed_manifests)]
        deleted, delete_failures = self._delete_all([key for key in stale if key not in held])
        result = ReconcileResult(
            applied=tuple(_show(key) for key in applied),
            deleted=tuple(deleted),
            unchanged=tuple(_show(key) for key in desired if key not in to_apply),
            failed=tuple(_show(key) for key in not_in_place),
            held=tuple(_show(key) for key in held),
        )
        self.last_result = result
        if held:
            self._log.warning(
                "kept %d stale AuthorizationPolicies until their replacements apply: %s",
                len(held),
                _names(list(result.held)),
            )
        if apply_failures or delete_failures:
            raise _combined(
                apply_failures + delete_failures, _summary(result, len(to_apply), len(stale))
            )
        return result

    def delete(self) -> ReconcileResult:
        """Delete every AuthorizationPolicy carrying this manager's labels.

        Without the AuthorizationPolicy API (Istio not installed) there is nothing to delete.

        Raises:
            KubernetesError: an API call failed (after trying every delete).
        """
        existing = self._list()
        if existing is None:
            return ReconcileResult()
        deleted, failures = self._delete_all(list(existing))
        if failures:
            raise _combined(
                failures, f"{len(failures)} of {len(existing)} stale AuthorizationPolicies remain"
            )
        return ReconcileResult(deleted=tuple(deleted))

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
        owned: dict[_Key, dict[str, Any]] = {}
        for item in listed:
            # Listed custom resources carry their kind; anything else is not what we asked for.
            expect_object(item, istio.KIND, None, f"list {istio.KIND}s")
            metadata = _map(item.get("metadata"))
            namespace = metadata.get("namespace")
            if not isinstance(namespace, str):
                raise MalformedResponseError(
                    f"failed to list {istio.KIND}s: Kubernetes listed one without a namespace",
                    status_code=200,
                )
            owned[namespace, metadata["name"]] = item
        return owned

    def _apply_all(
        self, keys: list[_Key], desired: dict[_Key, dict[str, Any]]
    ) -> tuple[list[_Key], list[tuple[str, KubernetesError]], list[_Key]]:
        """Apply each policy, trying the rest after a failure (unless the API is unreachable).

        Returns:
            What was applied, each failure, and every policy not in place (failed or untried).
        """
        applied: list[_Key] = []
        failures: list[tuple[str, KubernetesError]] = []
        for key in keys:
            error = self._apply(desired[key])
            if error is None:
                applied.append(key)
                continue
            failures.append((_show(key), error))
            if error.status_code is None:
                break  # the API is unreachable: more attempts would only each wait for a timeout
        self._log_changes("applied", [_show(key) for key in applied])
        return applied, failures, [key for key in keys if key not in applied]

    def _apply(self, manifest: dict[str, Any]) -> KubernetesError | None:
        from lightkube.types import PatchType

        metadata = manifest["metadata"]
        try:
            with kubernetes_errors(f"apply {istio.KIND} {metadata['name']}", self._owner_app):
                applied = patch(
                    self._client,
                    _authorization_policy_resource(),
                    metadata["name"],
                    manifest,
                    metadata["namespace"],
                    patch_type=PatchType.APPLY,
                    force=True,
                )
            doing = f"apply {istio.KIND} {metadata['name']}"
            expect_object(dict(applied), istio.KIND, metadata["name"], doing)
        except KubernetesError as e:
            return e
        return None

    def _delete_all(self, keys: list[_Key]) -> tuple[list[str], list[tuple[str, KubernetesError]]]:
        """Delete each policy (gone already is fine), trying the rest after a failure."""
        deleted: list[str] = []
        failures: list[tuple[str, KubernetesError]] = []
        for key in keys:
            error = self._delete(key)
            if error is None:
                deleted.append(_show(key))
            else:
                failures.append((_show(key), error))
        self._log_changes("deleted", deleted)
        return deleted, failures

    def _log_changes(self, done: str, shown: list[str]) -> None:
        """One line for all the policies a reconcile changed, naming the first few.

        Not a line per policy: under Juju every log record is a `juju-log` process, and a first
        reconcile of a large cluster applies hundreds of policies.
        """
        if not shown:
            return
        self._log.info("%s %d AuthorizationPolicies: %s", done, len(shown), _names(shown))

    def _delete(self, key: _Key) -> KubernetesError | None:
        namespace, name = key
        try:
            with kubernetes_errors(f"delete {istio.KIND} {name}", self._owner_app):
                self._client.delete(_authorization_policy_resource(), name, namespace=namespace)
        except KubernetesError as e:
            return None if e.status_code == 404 else e
        return None


def _names(shown: list[str]) -> str:
    """The first few names, and how many more there are."""
    names = ", ".join(shown[:_NAMES_LOGGED])
    more = len(shown) - _NAMES_LOGGED
    if more > 0:
        names += f" and {more} more"
    return names


def _summary(result: ReconcileResult, tried: int, stale: int) -> str:
    parts: list[str] = []
    if result.failed:
        parts.append(f"{len(result.failed)} of {tried} AuthorizationPolicies could not be applied")
    if result.held:
        parts.append(f"{len(result.held)} stale ones they replace were kept")
    remaining = stale - len(result.held) - len(result.deleted)
    if remaining:
        parts.append(f"{remaining} stale AuthorizationPolicies could not be deleted")
    return "; ".join(parts)


def _sources(manifest: Mapping[str, Any]) -> frozenset[str] | None:
    """The principals a policy lets in; None when it (also) lets in sources not so named."""
    rules = _items(_map(manifest.get("spec")).get("rules"))
    if not rules:
        return None
    principals: set[str] = set()
    for rule in rules:
        sources_of_rule = _items(_map(rule).get("from"))
        if not sources_of_rule:
            return None  # a rule without "from" admits any source
        for entry in sources_of_rule:
            source = _map(_map(entry).get("source"))
            named = _items(source.get("principals"))
            if not named or len(source) > 1:
                return None  # namespaces, IP blocks, ...: not a list of principals alone
            principals.update(str(principal) for principal in named)
    return frozenset(principals)


def _replaced_by_any(stale: Mapping[str, Any], failed: list[dict[str, Any]]) -> bool:
    """Whether a policy that failed to apply may be the replacement of ``stale``.

    It may when it lets a source of ``stale`` into the same namespace: until it is in place,
    that source still needs the old rules. Where the sources cannot be told, assume it may.
    """
    namespace = _map(stale.get("metadata")).get("namespace")
    stale_sources = _sources(stale)
    for manifest in failed:
        if manifest["metadata"]["namespace"] != namespace:
            continue
        sources = _sources(manifest)
        if sources is None or stale_sources is None or sources & stale_sources:
            return True
    return False


def _map(value: Any) -> dict[str, Any]:
    return cast("dict[str, Any]", value) if isinstance(value, dict) else {}


def _items(value: Any) -> list[Any]:
    return cast("list[Any]", value) if isinstance(value, list) else []


def _differs(existing: dict[str, Any] | None, manifest: dict[str, Any], owner: str | None) -> bool:
    """Whether applying ``manifest`` would change ``existing`` (labels others added are fine).

    With an ``owner`` StatefulSet, a policy without an ownerReference to it (one applied
    before owners were set, or by upstream) differs too, so it gets one.
    """
    if existing is None or existing.get("spec") != manifest["spec"]:
        return True
    metadata: dict[str, Any] = existing.get("metadata") or {}
    labels: dict[str, Any] = metadata.get("labels") or {}
    wanted: dict[str, str] = manifest["metadata"]["labels"]
    if any(labels.get(k) != v for k, v in wanted.items()):
        return True
    return owner is not None and not any(
        (_map(ref).get("apiVersion"), _map(ref).get("kind"), _map(ref).get("name"))
        == ("apps/v1", "StatefulSet", owner)
        for ref in _items(metadata.get("ownerReferences"))
    )


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
