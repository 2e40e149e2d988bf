# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The ``show-mesh`` action: the mesh in the namespace, against what the coordinator wants.

"Why is my traffic denied?" has two answers a coordinator can give without kubectl: which flows
the AuthorizationPolicies in its namespace allow, given the pods' labels (the allow matrix of
:mod:`service_mesh.allow_matrix`, the code the ``plan`` tool uses), and where the cluster is not
what the coordinator intends:

* a cluster-internal policy (the ones the coordinator applies itself) missing, changed (its
  spec or ownership labels), or extra (ours by its labels, but no longer wanted);
* a policy the coordinator asked the beacon for (its external policies) with no policy of the
  same spec in the namespace: the beacon has not applied it (yet);
* a pod of the cluster (the coordinator's or a worker app's) without the labels it should carry.

The action only reads: three LISTs in the coordinator's namespace (AuthorizationPolicies, Pods,
Services). This module is imported only when the action runs, so hooks never load it.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any, cast

from service_mesh import istio, kubernetes_client, kubernetes_errors, safe_text
from service_mesh.allow_matrix import ANY, Rule, Service, Workload, allow_rules, unprotected
from service_mesh.errors import CRDMissingError, KubernetesError

from . import _mesh as mesh

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    import lightkube
    import ops

    from service_mesh import MeshPolicy

    from ._coordinator import Coordinator

logger = logging.getLogger(__name__)

Manifest = dict[str, Any]

_APP_LABEL = "app.kubernetes.io/name"
"""The label Juju gives every pod of an application: how pods are grouped by app."""


@dataclasses.dataclass(frozen=True)
class Intended:
    """What the coordinator wants in its namespace."""

    namespace: str
    owner_labels: Mapping[str, str]
    """Ownership labels of the cluster-internal policies: how ours are told from others."""
    policies: tuple[Manifest, ...]
    """The cluster-internal AuthorizationPolicies, with their ownership labels."""
    requested: tuple[Manifest, ...]
    """The AuthorizationPolicies the beacon builds from what the coordinator publishes."""
    labels: Mapping[str, str]
    """The labels every pod of the cluster carries."""
    apps: tuple[str, ...]
    """The cluster's applications: the coordinator and its worker apps."""
    compare_policies: bool = True
    """False while the mesh's data is malformed: the coordinator keeps what is in place."""


@dataclasses.dataclass(frozen=True)
class Pod:
    """One pod: its name, the application it belongs to, and its labels."""

    name: str
    app: str
    labels: Mapping[str, str]


@dataclasses.dataclass(frozen=True)
class Live:
    """What the namespace holds: its policies, pods and Services."""

    namespace: str
    policies: tuple[Manifest, ...]
    pods: tuple[Pod, ...]
    services: tuple[Service, ...]


@dataclasses.dataclass(frozen=True, order=True)
class Difference:
    """One way the namespace differs from the coordinator's intent."""

    kind: str
    """``policy-missing``, ``policy-changed``, ``policy-extra``, ``beacon-policy-missing`` or
    ``pod-unlabelled`` (also the key it is listed under in the action's results)."""
    subject: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.subject}: {self.detail}"


@dataclasses.dataclass(frozen=True)
class Matrix:
    """The allow matrix of the live policies, and the policies it could not evaluate."""

    rules: tuple[Rule, ...]
    skipped: tuple[str, ...]
    """``<name>: <why>`` for each policy the evaluation does not model."""
    untargeted: tuple[str, ...]
    """Applications no policy selects: in a hardened mesh nothing may reach them."""


def run(coordinator: Coordinator, event: ops.ActionEvent) -> None:
    """Read the namespace, compare it with the coordinator's intent, and set the results.

    A Kubernetes failure (no trust, Istio not installed, no answer) fails the action with
    the library's message, which says what to do about it.
    """
    intended = intended_state(coordinator)
    app, namespace = coordinator.app_name, intended.namespace
    try:
        with kubernetes_client(namespace, mesh.policy_field_manager(app, namespace)) as client:
            live = read_live(client, namespace, app)
    except KubernetesError as e:
        message = safe_text(str(e), 1000)
        logger.error("show-mesh: %s", message)
        event.fail(f"cannot read the mesh: {message}")
        return
    results = report(intended, live, app)
    event.set_results(results)


def intended_state(coordinator: Coordinator) -> Intended:
    """What the coordinator wants, from what it reads on every hook (no Kubernetes request)."""
    app, namespace = coordinator.app_name, coordinator.model.name
    workers = sorted(worker.name for worker in coordinator.cluster.workers())
    consumer = coordinator.mesh
    meshed = consumer is not None and consumer.enabled and consumer.mesh_type() is not None
    broken = consumer is not None and consumer.provider_problem is not None
    policies: list[MeshPolicy] = []
    requested: list[Manifest] = []
    if meshed and consumer is not None:
        policies = mesh.cluster_internal_policies(
            app, namespace, _nameable(app, namespace, workers)
        )
        beacon = _beacon(coordinator)
        if beacon is not None:  # the beacon names them; only their specs are compared
            requested = istio.authorization_policies(
                beacon, namespace, consumer.published_policies()
            )
    owner = mesh.policy_manager_labels(app, namespace)
    manifests = istio.authorization_policies(app, namespace, policies)
    for manifest in manifests:
        manifest["metadata"]["labels"] = dict(owner)
    return Intended(
        namespace=namespace,
        owner_labels=owner,
        policies=tuple(manifests),
        requested=tuple(requested),
        labels=coordinator.pod_labels(),
        apps=(app, *workers),
        compare_policies=not broken,
    )


def read_live(client: lightkube.Client, namespace: str, app: str) -> Live:
    """List the namespace's AuthorizationPolicies, Pods and Services.

    Raises:
        CRDMissingError: the cluster has no AuthorizationPolicy API (Istio is not installed).
        KubernetesError: a LIST failed (403 without trust, no answer, an unreadable answer).
    """
    from lightkube.generic_resource import (
        create_namespaced_resource,  # pyright: ignore[reportUnknownVariableType]
    )
    from lightkube.resources.core_v1 import Pod as PodResource
    from lightkube.resources.core_v1 import Service as ServiceResource

    policy_resource = create_namespaced_resource(
        istio.GROUP, istio.VERSION, istio.KIND, istio.PLURAL
    )
    try:
        with kubernetes_errors(f"list AuthorizationPolicies in {namespace}", app):
            policies = [
                cast("Manifest", dict(item))
                for item in _typed_list(client, policy_resource, namespace)
            ]
    except KubernetesError as e:
        if e.status_code == 404:
            raise CRDMissingError(
                f"failed to list AuthorizationPolicies in {namespace}: the cluster does not "
                f"serve {istio.API_VERSION} {istio.KIND}, so Istio is not installed (deploy "
                "istio-k8s) or its CRDs were removed",
                status_code=404,
            ) from e
        raise
    with kubernetes_errors(f"list Pods in {namespace}", app):
        pods = [
            Pod(str(pod.metadata.name), labels.get(_APP_LABEL, ""), labels)
            for pod in _typed_list(client, PodResource, namespace)
            if pod.metadata is not None
            for labels in [cast("dict[str, str]", dict(pod.metadata.labels or {}))]
        ]
    with kubernetes_errors(f"list Services in {namespace}", app):
        services = [
            Service(namespace, str(service.metadata.name), dict(service.spec.selector or {}))
            for service in _typed_list(client, ServiceResource, namespace)
            if service.metadata is not None and service.spec is not None
        ]
    return Live(namespace, tuple(policies), tuple(pods), tuple(services))


def differences(intended: Intended, live: Live) -> list[Difference]:
    """Every way the namespace differs from the coordinator's intent, sorted."""
    found: list[Difference] = []
    if intended.compare_policies:
        found += _policy_differences(intended, live.policies)
    cluster_apps = set(intended.apps)
    for pod in live.pods:
        if pod.app in cluster_apps:
            lacking = _lacking(intended.labels, pod.labels)
            if lacking:
                found.append(Difference("pod-unlabelled", pod.name, lacking))
    return sorted(found)


def evaluate(live: Live) -> Matrix:
    """The allow matrix of the live policies, given each application's pod labels.

    An application's labels are the ones all its pods share, so a rule selecting by labels
    counts an app as a target only when every one of its pods matches (pods half-way through
    a roll-out may carry more). A policy the evaluation does not model (a DENY, a source
    matched other than by principals) is listed as skipped rather than misread.
    """
    by_app: dict[str, dict[str, str]] = {}
    for pod in live.pods:
        if not pod.app:
            continue
        shared = by_app.get(pod.app)
        by_app[pod.app] = (
            dict(pod.labels)
            if shared is None
            else {k: v for k, v in shared.items() if pod.labels.get(k) == v}
        )
    workloads = [Workload(live.namespace, app, labels) for app, labels in sorted(by_app.items())]
    rules: set[Rule] = set()
    skipped: list[str] = []
    for policy in live.policies:
        evaluated = _rules_of(policy, workloads, live.services)
        if isinstance(evaluated, str):
            skipped.append(f"{safe_text(_name(policy), 100)}: {evaluated}")
        else:
            rules.update(evaluated)
    ordered = sorted(rules)
    untargeted = unprotected(workloads, ordered)
    return Matrix(tuple(ordered), tuple(sorted(skipped)), tuple(untargeted))


def report(intended: Intended, live: Live, app: str) -> dict[str, Any]:
    """The action's results: counts, the differences by kind, and the readable report."""
    matrix = evaluate(live)
    found = differences(intended, live)
    flows = sum(len(rule.targets) for rule in matrix.rules)
    summary = f"{_count(len(live.policies), 'AuthorizationPolicy', 'AuthorizationPolicies')} "
    summary += f"allow {_count(flows, 'flow')}; "
    summary += (
        f"{_count(len(found), 'difference')} from what {app} intends"
        if found
        else f"as {app} intends"
    )
    by_kind: dict[str, list[str]] = {}
    for difference in found:
        by_kind.setdefault(difference.kind, []).append(
            f"{difference.subject}: {difference.detail}"
        )
    text = [summary, "", "allowed (source -> targets):"]
    text += [f"  {_describe(rule, intended.namespace)}" for rule in matrix.rules] or ["  nothing"]
    if matrix.untargeted:
        shown = ", ".join(a.removeprefix(f"{intended.namespace}/") for a in matrix.untargeted)
        text += ["", f"selected by no policy (in a hardened mesh, nothing reaches them): {shown}"]
    if matrix.skipped:
        text += ["", "not evaluated:", *(f"  {line}" for line in matrix.skipped)]
    text += (
        ["", "differences:", *(f"  {d}" for d in found)] if found else ["", "differences: none"]
    )
    if not intended.compare_policies:
        text += ["", "policies not compared: the mesh's data is malformed (see the status)"]
    results: dict[str, Any] = {
        "summary": summary,
        "in-sync": str(not found).lower() if intended.compare_policies else "unknown",
        "policies": str(len(live.policies)),
        "flows": str(flows),
        "report": "\n".join(text),
    }
    if by_kind:
        results["differences"] = {kind: "\n".join(lines) for kind, lines in by_kind.items()}
    return results


def _policy_differences(intended: Intended, policies: Sequence[Manifest]) -> list[Difference]:
    ours = {
        _name(p): p
        for p in policies
        if _labels_include(_map(_map(p.get("metadata")).get("labels")), intended.owner_labels)
    }
    found: list[Difference] = []
    wanted_names: set[str] = set()
    for manifest in intended.policies:
        name = _name(manifest)
        wanted_names.add(name)
        current = ours.get(name) or next((p for p in policies if _name(p) == name), None)
        if current is None:
            found.append(Difference("policy-missing", name, _purpose(manifest)))
        elif current.get("spec") != manifest["spec"]:
            found.append(Difference("policy-changed", name, "its spec is not the intended one"))
        elif name not in ours:
            found.append(Difference("policy-changed", name, "its ownership labels are missing"))
    found += [
        Difference("policy-extra", name, "carries our ownership labels but is not wanted")
        for name in sorted(ours.keys() - wanted_names)
    ]
    specs = [p.get("spec") for p in policies]
    found += [
        Difference("beacon-policy-missing", _name(manifest), _purpose(manifest))
        for manifest in intended.requested
        if manifest["spec"] not in specs
    ]
    return found


def _rules_of(
    policy: Manifest, workloads: Sequence[Workload], services: Sequence[Service]
) -> list[Rule] | str:
    """What one policy allows, or why it cannot be evaluated (a feature not modelled)."""
    try:
        return allow_rules([policy], workloads, services)
    except (ValueError, TypeError, AttributeError, KeyError) as e:  # not modelled, or odd
        return safe_text(str(e), 200)


def _typed_list(client: lightkube.Client, resource: type[Any], namespace: str) -> list[Any]:
    """``client.list`` in ``namespace`` (lightkube's overloads leave the item type unknown)."""
    return list(client.list(resource, namespace=namespace))  # pyright: ignore[reportUnknownMemberType]


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


def _purpose(manifest: Manifest) -> str:
    """What an intended policy allows, in words."""
    spec = manifest["spec"]
    rule = spec["rules"][0]
    principal = rule["from"][0]["source"]["principals"][0]
    source = principal.rsplit("/sa/", 1)[-1]
    if "targetRefs" in spec:
        target = f"Service {spec['targetRefs'][0]['name']}"
    else:
        target = "pods labelled " + ",".join(
            f"{k}={v}" for k, v in spec["selector"]["matchLabels"].items()
        )
    return f"lets {source} reach {target}"


def _lacking(wanted: Mapping[str, str], labels: Mapping[str, str]) -> str:
    """The wanted labels a pod does not carry (or carries with another value), in words."""
    parts: list[str] = []
    for key, value in sorted(wanted.items()):
        if key not in labels:
            parts.append(f"lacks {key}={value}")
        elif labels[key] != value:
            shown = safe_text(labels[key], 63)
            parts.append(f"has {key}={shown} instead of {value}")
    return "; ".join(parts)


def _describe(rule: Rule, namespace: str) -> str:
    def short(key: str) -> str:
        return "anyone" if key == ANY else key.removeprefix(f"{namespace}/")

    targets = ", ".join(short(t) for t in rule.targets)
    limits = [
        f"ports {','.join(rule.ports)}" if rule.ports else "any port",
        *([f"methods {','.join(rule.methods)}"] if rule.methods else []),
        *([f"paths {','.join(rule.paths)}"] if rule.paths else []),
        *([f"hosts {','.join(rule.hosts)}"] if rule.hosts else []),
    ]
    policy = rule.policy.removeprefix(f"{namespace}/")
    return f"{short(rule.source)} -> {targets} via {rule.via}, {'; '.join(limits)} [{policy}]"


def _beacon(coordinator: Coordinator) -> str | None:
    """The application on the other end of the service-mesh relation (the beacon)."""
    endpoint = coordinator.config.endpoints.service_mesh
    relations = coordinator.model.relations[endpoint] if endpoint else []
    app = relations[0].app if relations else None
    return app.name if app is not None else None


def _nameable(app: str, namespace: str, workers: Iterable[str]) -> list[str]:
    """The worker apps a policy can name (the reconcile leaves the others out, and says so)."""
    accepted: list[str] = []
    for worker in workers:
        try:
            mesh.cluster_internal_policies(app, namespace, [worker])
        except ValueError:
            continue
        accepted.append(worker)
    return accepted


def _name(policy: Mapping[str, Any]) -> str:
    return str(_map(policy.get("metadata")).get("name", ""))


def _labels_include(labels: Mapping[str, Any], wanted: Mapping[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in wanted.items())


def _map(value: object) -> Mapping[str, Any]:
    return cast("Mapping[str, Any]", value) if isinstance(value, dict) else {}
