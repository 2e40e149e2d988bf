# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Put labels on a charm's pods (via its StatefulSet) and Service, and take them off again.

Which labels we set is recorded in a ConfigMap (data key ``labels``, a JSON object), so a label
we no longer want can be removed (patched to ``null``) without touching labels others set.

Reconciling:

* when the record already equals the wanted labels we stop after the one GET (a pod-template
  patch is what restarts pods when it changes something);
* the record is written *before* the workloads with the union of recorded and wanted labels,
  and trimmed to the wanted labels only after both workloads are patched, so a failure half way
  never forgets a label that is on an object. When that union already equals the wanted labels
  (first contact, pure additions, ``force``) the record is also marked ``pending`` until the
  workloads are patched: otherwise a failure half way would leave a record that looks finished,
  and every later call would stop after its GET with the labels still missing. On first contact
  that is a POST of the wanted labels plus a PATCH at the end;
* the record patch carries the ``resourceVersion`` we read, so two writers racing on the same
  record fail with :class:`ConflictError` instead of silently losing labels;
* removing the record tolerates its absence (404), and failures are named errors;
* the record carries an ``ownerReference`` to the app's StatefulSet (its uid comes from our
  own StatefulSet patch, so this costs no extra request), so Kubernetes deletes the record with
  the application even if the charm's ``remove`` hook failed. The reference is also the
  record's owner mark: a record owned by another StatefulSet (two record names collided) is
  refused with :class:`LabelRecordOwnerError`, never taken over. A record without one (written
  by another version of this code) is adopted and gets the reference on the next write.
"""

from __future__ import annotations

import json
import logging
import re
from typing import TYPE_CHECKING, Any, cast

from ._k8s import expect_object, kubernetes_errors, patch, statefulset_reference
from ._text import safe_text
from .errors import KubernetesError, LabelRecordOwnerError

if TYPE_CHECKING:
    from collections.abc import Mapping

    import lightkube

__all__ = ["label_problem", "reconcile_charm_labels", "remove_charm_labels"]

logger = logging.getLogger(__name__)

JUJU_SELECTOR_LABEL = "app.kubernetes.io/name"
"""Juju selects an application's pods by this label; changing it orphans the StatefulSet."""

_LABEL_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def label_problem(key: str, value: str) -> str | None:
    """Why a pod label must not be set, or None if it can be.

    Kubernetes refuses a malformed key or value, and Juju's selector label is not ours to
    change. Catching either before the first write matters: a label once recorded as ours is
    later removed, and removing Juju's selector label is refused forever after.
    """
    if key == JUJU_SELECTOR_LABEL:
        return f"{key!r} is Juju's pod selector label"
    prefix, slash, name = key.rpartition("/")
    if slash and (len(prefix) > 253 or not _DNS_SUBDOMAIN.fullmatch(prefix)):
        return f"label key {safe_text(key, 70)!r}: the prefix is not a DNS subdomain"
    if not _LABEL_NAME.fullmatch(name):
        return f"label key {safe_text(key, 70)!r} is not a valid Kubernetes label name"
    if value and not _LABEL_NAME.fullmatch(value):
        shown = f"{safe_text(key, 70)!r}: value {safe_text(value, 70)!r}"
        return f"label {shown} is not a valid label value"
    return None


class _Record:
    """The label record ConfigMap as read from the API server (absent if never written)."""

    def __init__(
        self,
        labels: dict[str, str],
        resource_version: str | None,
        exists: bool,
        pending: bool = False,
        owned: bool = False,
    ):
        self.labels = labels
        self.resource_version = resource_version
        self.exists = exists
        self.pending = pending
        """The workloads may not carry every recorded label yet (a call failed half way)."""
        self.owned = owned
        """The record already names the app's StatefulSet as its owner."""


_PENDING_KEY = "pending"


def reconcile_charm_labels(
    client: lightkube.Client,
    app_name: str,
    namespace: str,
    label_configmap_name: str,
    labels: Mapping[str, str],
    *,
    force: bool = False,
) -> bool:
    """Make ``labels`` the labels we own on the app's pod template and Service.

    Labels recorded by an earlier call but missing from ``labels`` are removed; labels set by
    anyone else are left alone. Changing pod-template labels rolls the StatefulSet's pods.

    Args:
        client: a lightkube client; its ``field_manager`` is used for the patches.
        app_name: the application, i.e. the StatefulSet's and the Service's name.
        namespace: the model's namespace.
        label_configmap_name: the record of the labels this caller owns; callers owning
            different labels on the same app must use different names.
        labels: every label this caller wants, now.
        force: patch the workloads even if the record says they are labelled already, e.g.
            after an upgrade, when Juju may have rewritten the StatefulSet.

    Returns:
        Whether anything was written.

    Raises:
        KubernetesError: an API call failed (:class:`ForbiddenError` without ``juju trust``).
    """
    wanted = dict(labels)
    record = _read_record(client, app_name, namespace, label_configmap_name)
    # A record from before ownerReferences (exists, not owned) gets one round of no-op patches
    # to learn the StatefulSet's uid; then it is garbage-collected with the app like new ones.
    settled = record.owned or not record.exists
    if record.labels == wanted and not record.pending and not force and settled:
        return False
    owned = {**record.labels, **wanted}
    # Without a final trim to tell "done" apart, the record must say it is not done yet.
    pending = owned == wanted
    if not record.exists:
        record = _create_record(client, app_name, namespace, label_configmap_name, owned)
    elif owned != record.labels or pending != record.pending:
        record = _write_record(
            client, app_name, namespace, label_configmap_name, record, owned, pending=pending
        )
    changes: dict[str, str | None] = {
        **wanted,
        **dict.fromkeys(sorted(set(record.labels) - set(wanted))),
    }
    owner_uid = _patch_workloads(client, app_name, namespace, changes, missing_ok=False)
    owner = None if record.owned or not owner_uid else (app_name, owner_uid)
    if record.labels != wanted or record.pending or owner is not None:
        _write_record(
            client, app_name, namespace, label_configmap_name, record, wanted, owner=owner
        )
    return True


def remove_charm_labels(
    client: lightkube.Client, app_name: str, namespace: str, label_configmap_name: str
) -> bool:
    """Remove every label recorded in ``label_configmap_name``, then the record itself.

    For relation-broken and application removal. Tolerates a StatefulSet, Service or record that
    is already gone.

    Returns:
        Whether anything was written.

    Raises:
        KubernetesError: an API call failed (:class:`ForbiddenError` without ``juju trust``).
    """
    try:
        record = _read_record(client, app_name, namespace, label_configmap_name)
    except LabelRecordOwnerError as e:
        # Not our record, so nothing of ours to remove; leave the owner's labels alone.
        logger.warning("%s; nothing to remove", e)
        return False
    if not record.exists:
        return False
    if record.labels:
        removals: dict[str, str | None] = dict.fromkeys(sorted(record.labels))
        _patch_workloads(client, app_name, namespace, removals, missing_ok=True)
    from lightkube.resources.core_v1 import ConfigMap

    try:
        with kubernetes_errors(f"delete ConfigMap {label_configmap_name}", app_name):
            client.delete(ConfigMap, label_configmap_name, namespace=namespace)
    except KubernetesError as e:
        if e.status_code != 404:
            raise
    return True


def _read_record(client: lightkube.Client, app_name: str, namespace: str, name: str) -> _Record:
    from lightkube.resources.core_v1 import ConfigMap

    try:
        with kubernetes_errors(f"get ConfigMap {name}", app_name):
            configmap = client.get(ConfigMap, name, namespace=namespace)
        expect_object(configmap, "ConfigMap", name, f"get ConfigMap {name}")
    except KubernetesError as e:
        if e.status_code == 404:
            return _Record({}, None, exists=False)
        raise
    metadata = configmap.metadata
    version = metadata.resourceVersion if metadata else None
    owners = [
        ref.name
        for ref in (metadata.ownerReferences or [] if metadata else [])
        if ref.kind == "StatefulSet"
    ]
    if any(owner != app_name for owner in owners):
        raise LabelRecordOwnerError(
            f"ConfigMap {name} records the labels of StatefulSet "
            f"{safe_text(', '.join(owners), 70)}, not {app_name}: two label record names "
            "collided; rename or remove one of the applications"
        )
    data = cast("dict[str, str]", configmap.data or {})  # pyright: ignore[reportUnknownMemberType]
    labels = _parse_record(name, data.get("labels"))
    pending = data.get(_PENDING_KEY) == "true"
    return _Record(labels, version, exists=True, pending=pending, owned=bool(owners))


def _parse_record(name: str, raw: str | None) -> dict[str, str]:
    """The recorded labels; a record someone mangled counts as empty (and is logged)."""
    if raw is None:
        return {}
    try:
        parsed: Any = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than json follows
        parsed = None
    if isinstance(parsed, dict) and all(
        isinstance(k, str) and isinstance(v, str)
        for k, v in parsed.items()  # pyright: ignore[reportUnknownVariableType]
    ):
        return _usable_labels(name, cast("dict[str, str]", parsed))
    logger.warning(
        "ConfigMap %s: 'labels' is not a JSON object of strings (%r); treating it as empty, "
        "so labels it recorded will not be removed",
        name,
        safe_text(raw, 200),
    )
    return {}


def _usable_labels(name: str, recorded: dict[str, str]) -> dict[str, str]:
    """The recorded labels we may patch: never Juju's selector label, never a malformed key.

    Anyone with access to the namespace can edit the record, and every recorded label that is
    no longer wanted is patched to ``null``: nulling the selector label is refused by the API
    server (the template would no longer match the StatefulSet's selector) on every call, for
    good, and a malformed key is refused too. Such entries cannot be ours, so they are dropped.
    """
    usable = {key: value for key, value in recorded.items() if not label_problem(key, value)}
    if len(usable) != len(recorded):
        dropped = sorted(set(recorded) - set(usable))
        logger.warning(
            "ConfigMap %s: ignoring %d recorded labels that cannot be ours (%s)",
            name,
            len(dropped),
            safe_text(", ".join(dropped), 200),
        )
    return usable


def _configmap_body(
    name: str,
    namespace: str,
    labels: dict[str, str],
    pending: bool | None,
    owner: tuple[str, str] | None,
) -> dict[str, Any]:
    data: dict[str, str | None] = {"labels": json.dumps(labels)}
    if pending is not None:
        # A merge patch deletes a key set to None, so a finished record has no pending key.
        data[_PENDING_KEY] = "true" if pending else None
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if owner is not None:
        metadata["ownerReferences"] = [statefulset_reference(*owner)]
    return {"apiVersion": "v1", "data": data, "kind": "ConfigMap", "metadata": metadata}


def _create_record(
    client: lightkube.Client, app_name: str, namespace: str, name: str, labels: dict[str, str]
) -> _Record:
    from lightkube.models.meta_v1 import ObjectMeta
    from lightkube.resources.core_v1 import ConfigMap

    configmap = ConfigMap(
        metadata=ObjectMeta(name=name, namespace=namespace),
        data={"labels": json.dumps(labels), _PENDING_KEY: "true"},
    )
    with kubernetes_errors(f"create ConfigMap {name}", app_name):
        created = client.create(configmap)
    version = created.metadata.resourceVersion if created.metadata else None
    return _Record(labels, version, exists=True, pending=True)


def _write_record(
    client: lightkube.Client,
    app_name: str,
    namespace: str,
    name: str,
    record: _Record,
    labels: dict[str, str],
    *,
    pending: bool = False,
    owner: tuple[str, str] | None = None,
) -> _Record:
    """Patch the record; ``owner`` (StatefulSet name, uid) adds the ownerReference."""
    from lightkube.resources.core_v1 import ConfigMap

    # Only mention the pending mark and the owner when they change, so plain writes stay
    # upstream's bytes.
    mark = pending if pending != record.pending else None
    body = _configmap_body(name, namespace, labels, mark, owner)
    if record.resource_version is not None:
        body["metadata"]["resourceVersion"] = record.resource_version
    with kubernetes_errors(f"update ConfigMap {name}", app_name):
        patched = patch(client, ConfigMap, name, body, namespace)
    version = patched.metadata.resourceVersion if patched.metadata else None
    owned = record.owned or owner is not None
    return _Record(labels, version, exists=True, pending=pending, owned=owned)


def _patch_workloads(
    client: lightkube.Client,
    app_name: str,
    namespace: str,
    labels: dict[str, str | None],
    *,
    missing_ok: bool,
) -> str | None:
    """Strategic-merge the labels into the pod template, then the Service (null deletes).

    Returns:
        The StatefulSet's uid, as its patch answered (None if it is gone or did not say).
    """
    from lightkube.resources.apps_v1 import StatefulSet
    from lightkube.resources.core_v1 import Service

    template_patch = {"spec": {"template": {"metadata": {"labels": labels}}}}
    patched = _patch_labels(client, StatefulSet, app_name, namespace, template_patch, missing_ok)
    _patch_labels(
        client, Service, app_name, namespace, {"metadata": {"labels": labels}}, missing_ok
    )
    metadata = getattr(patched, "metadata", None)
    uid = getattr(metadata, "uid", None)
    return uid if isinstance(uid, str) and uid else None


def _patch_labels(
    client: lightkube.Client,
    resource: type[Any],
    app_name: str,
    namespace: str,
    body: dict[str, Any],
    missing_ok: bool,
) -> Any:
    try:
        with kubernetes_errors(f"label {resource.__name__} {app_name}", app_name):
            return patch(client, resource, app_name, body, namespace)
    except KubernetesError as e:
        if not (missing_ok and e.status_code == 404):
            raise
        return None
