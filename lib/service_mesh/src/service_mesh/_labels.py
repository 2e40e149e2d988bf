"""Put labels on a charm's pods (via its StatefulSet) and Service, and take them off again.

Which labels we set is recorded in a ConfigMap (data key ``labels``, a JSON object), so a label
we no longer want can be removed (patched to ``null``) without touching labels others set.

Compared with upstream ``reconcile_charm_labels`` (vector ``reconcile-charm-labels-wire.json``)
the objects end up the same and each write has the same shape, but:

* when the record already equals the wanted labels we stop after the one GET: upstream
  re-patches both workloads and the record on every call, and a pod-template patch is what
  restarts pods when it changes something;
* the record is written *before* the workloads with the union of recorded and wanted labels,
  and trimmed to the wanted labels only after both workloads are patched, so a failure half way
  never forgets a label that is on an object. When that union already equals the wanted labels
  (first contact, pure additions, ``force``) the record is also marked ``pending`` until the
  workloads are patched: otherwise a failure half way would leave a record that looks finished,
  and every later call would stop after its GET with the labels still missing. On first contact
  that is a POST of the wanted labels plus a PATCH at the end, as many writes as upstream's POST
  of ``{}`` plus a PATCH;
* the record patch carries the ``resourceVersion`` we read, so two writers racing on the same
  record fail with :class:`ConflictError` instead of silently losing labels (upstream does this
  too against a real API server; its vector's fake server returned no resourceVersion);
* removing the record tolerates its absence (404), and failures are named errors.
"""

from __future__ import annotations

import json
import logging
import re
from typing import TYPE_CHECKING, Any, cast

from ._k8s import expect_object, kubernetes_errors, patch
from ._text import safe_text
from .errors import KubernetesError

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
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.fullmatch(prefix)):
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
    ):
        self.labels = labels
        self.resource_version = resource_version
        self.exists = exists
        self.pending = pending
        """The workloads may not carry every recorded label yet (a call failed half way)."""


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
    if record.labels == wanted and not record.pending and not force:
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
    _patch_workloads(client, app_name, namespace, changes, missing_ok=False)
    if record.labels != wanted or record.pending:
        _write_record(client, app_name, namespace, label_configmap_name, record, wanted)
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
    record = _read_record(client, app_name, namespace, label_configmap_name)
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
    version = configmap.metadata.resourceVersion if configmap.metadata else None
    data = cast("dict[str, str]", configmap.data or {})  # pyright: ignore[reportUnknownMemberType]
    labels = _parse_record(name, data.get("labels"))
    return _Record(labels, version, exists=True, pending=data.get(_PENDING_KEY) == "true")


def _parse_record(name: str, raw: str | None) -> dict[str, str]:
    """The recorded labels; a record someone mangled counts as empty (and is logged)."""
    if raw is None:
        return {}
    try:
        parsed: Any = json.loads(raw)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and all(
        isinstance(k, str) and isinstance(v, str)
        for k, v in parsed.items()  # pyright: ignore[reportUnknownVariableType]
    ):
        return dict(parsed)  # pyright: ignore[reportUnknownArgumentType]
    logger.warning(
        "ConfigMap %s: 'labels' is not a JSON object of strings (%r); treating it as empty, "
        "so labels it recorded will not be removed",
        name,
        raw[:200],
    )
    return {}


def _configmap_body(
    name: str, namespace: str, labels: dict[str, str], pending: bool | None
) -> dict[str, Any]:
    data: dict[str, str | None] = {"labels": json.dumps(labels)}
    if pending is not None:
        # A merge patch deletes a key set to None, so a finished record has no pending key.
        data[_PENDING_KEY] = "true" if pending else None
    return {
        "apiVersion": "v1",
        "data": data,
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
    }


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
) -> _Record:
    from lightkube.resources.core_v1 import ConfigMap

    # Only mention the pending mark when it changes, so plain writes stay upstream's bytes.
    mark = pending if pending != record.pending else None
    body = _configmap_body(name, namespace, labels, mark)
    if record.resource_version is not None:
        body["metadata"]["resourceVersion"] = record.resource_version
    with kubernetes_errors(f"update ConfigMap {name}", app_name):
        patched = patch(client, ConfigMap, name, body, namespace)
    version = patched.metadata.resourceVersion if patched.metadata else None
    return _Record(labels, version, exists=True, pending=pending)


def _patch_workloads(
    client: lightkube.Client,
    app_name: str,
    namespace: str,
    labels: dict[str, str | None],
    *,
    missing_ok: bool,
) -> None:
    """Strategic-merge the labels into the pod template, then the Service (null deletes)."""
    from lightkube.resources.apps_v1 import StatefulSet
    from lightkube.resources.core_v1 import Service

    template_patch = {"spec": {"template": {"metadata": {"labels": labels}}}}
    _patch_labels(client, StatefulSet, app_name, namespace, template_patch, missing_ok)
    _patch_labels(
        client, Service, app_name, namespace, {"metadata": {"labels": labels}}, missing_ok
    )


def _patch_labels(
    client: lightkube.Client,
    resource: type[Any],
    app_name: str,
    namespace: str,
    body: dict[str, Any],
    missing_ok: bool,
) -> None:
    try:
        with kubernetes_errors(f"label {resource.__name__} {app_name}", app_name):
            patch(client, resource, app_name, body, namespace)
    except KubernetesError as e:
        if not (missing_ok and e.status_code == 404):
            raise
