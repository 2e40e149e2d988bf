# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The mesh footprint of a coordinated-worker cluster, as pure data.

A cluster needs two kinds of authorization in a hardened mesh:

- *cluster-internal* traffic (coordinator and workers talking to each other), which follows
  cluster membership rather than Juju relations, so the coordinator applies those policies
  itself with :class:`service_mesh.PolicyResourceManager`;
- *external* traffic into the coordinator, which follows Juju relations, so it is described with
  :class:`service_mesh.AppPolicy` / :class:`service_mesh.UnitPolicy` and handed to the beacon
  through :class:`service_mesh.ServiceMeshConsumer`.

Everything here is a pure function of names and ports, so it can be tested, diffed and printed
without Juju or Kubernetes.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from service_mesh import AppPolicy, Endpoint, MeshPolicy, Method, PolicyTargetType, UnitPolicy

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

CLUSTER_MEMBERSHIP_LABEL = "app.kubernetes.io/part-of"
"""Pod label that marks every coordinator and worker pod as a member of one cluster."""

WORKER_METRICS_PROXY_PATH = "/proxy/worker/{*}/metrics"
"""Istio path template matching every worker's metrics behind the coordinator's proxy."""

_MAX_LABEL_VALUE = 63


def membership_labels(coordinator_app: str) -> dict[str, str]:
    """The labels that make a pod a member of ``coordinator_app``'s cluster."""
    return {CLUSTER_MEMBERSHIP_LABEL: coordinator_app}


def cluster_internal_policies(
    coordinator_app: str, namespace: str, worker_apps: Iterable[str]
) -> list[MeshPolicy]:
    """The three kinds of cluster-internal policies, for the current set of worker apps.

    1. the coordinator may reach every cluster pod (selected by the membership label);
    2. each worker app may reach every cluster pod (worker-to-worker and worker-to-coordinator
       pod traffic such as memberlist gossip);
    3. each worker app may reach the coordinator's Service (its stable address).

    No endpoints are set: members trust each other on every port. Worker apps are sorted so the
    result does not depend on relation order.
    """
    members = membership_labels(coordinator_app)
    policies = [_to_members(coordinator_app, namespace, members)]
    for worker in sorted(set(worker_apps)):
        policies.append(_to_members(worker, namespace, members))
        policies.append(
            MeshPolicy(
                source_namespace=namespace,
                source_app_name=worker,
                target_namespace=namespace,
                target_app_name=coordinator_app,
                target_type=PolicyTargetType.app,
            )
        )
    return policies


def _to_members(source_app: str, namespace: str, members: dict[str, str]) -> MeshPolicy:
    return MeshPolicy(
        source_namespace=namespace,
        source_app_name=source_app,
        target_namespace=namespace,
        target_selector_labels=dict(members),
        target_type=PolicyTargetType.unit,
    )


def default_external_policies(
    metrics_relation: str | None,
    exporter_port: int,
    proxy_port: int | None,
    *,
    tls: bool = False,
) -> list[AppPolicy | UnitPolicy]:
    """Policies every coordinator needs for the traffic that reaches it from outside.

    Scrapers related on ``metrics_relation`` may read the nginx exporter on each coordinator pod
    (L4) and, when the worker telemetry proxy is on, GET worker metrics through the
    coordinator's Service (L7, nothing else on the proxy port). With ``tls`` (the proxy port
    may speak TLS that nginx terminates) the rule names the port only: the waypoint sees
    encrypted bytes there, so a rule with methods or paths would never match.
    """
    if metrics_relation is None:
        return []
    policies: list[AppPolicy | UnitPolicy] = [
        UnitPolicy(relation=metrics_relation, ports=[exporter_port])
    ]
    if proxy_port is not None:
        endpoint = (
            Endpoint(ports=[proxy_port])
            if tls
            else Endpoint(
                ports=[proxy_port], methods=[Method.get], paths=[WORKER_METRICS_PROXY_PATH]
            )
        )
        policies.append(AppPolicy(relation=metrics_relation, endpoints=[endpoint]))
    return policies


def external_policies(
    defaults: Sequence[AppPolicy | UnitPolicy], charm_policies: Sequence[AppPolicy | UnitPolicy]
) -> list[AppPolicy | UnitPolicy]:
    """Defaults first, then the charm's own, as upstream orders them (the bag order follows)."""
    return [*defaults, *charm_policies]


def policy_manager_labels(coordinator_app: str, model: str) -> dict[str, str]:
    """Ownership labels of the cluster-internal AuthorizationPolicies.

    These select what the coordinator owns, so they must stay identical to upstream's
    (``<app>-<model>`` instance, ``<app>-<model>-cluster-internal`` scope): a different value
    would orphan the policies an upstream-built coordinator left in the cluster.
    """
    instance = f"{coordinator_app}-{model}"
    return {
        "app.kubernetes.io/instance": _fit_label_value(instance),
        "kubernetes-resource-handler-scope": _fit_label_value(f"{instance}-cluster-internal"),
    }


def policy_field_manager(coordinator_app: str, model: str) -> str:
    """The server-side-apply field manager upstream's coordinator uses for its policies."""
    return f"{coordinator_app}-{model}"


def pod_labels_configmap(app: str) -> str:
    """Name of the ConfigMap recording which pod labels a coordinator or worker has set."""
    return f"{app}-pod-labels"


def _fit_label_value(value: str) -> str:
    """Keep a label value within Kubernetes' 63 characters, stable and collision-resistant."""
    if len(value) <= _MAX_LABEL_VALUE:
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:8]
    return f"{value[:54]}-{digest}"
