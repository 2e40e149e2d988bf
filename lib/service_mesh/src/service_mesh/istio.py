# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Turn :class:`~service_mesh.MeshPolicy` objects into Istio AuthorizationPolicy manifests.

The output is plain JSON-ready data, so this module needs no Kubernetes client and can be used
(and tested) anywhere. Names and specs are exactly what the upstream builder
(``canonical_service_mesh.utils.istio.build_policy_resources_istio``) produces: a resource
manager that switches between the two finds its existing policies under the same names and
does not churn them.

:class:`MeshPolicy` refuses a unit policy carrying hosts, methods or paths and a unit policy
with no target at construction, so every policy given here yields exactly one manifest.

Example:
    >>> from service_mesh import MeshPolicy
    >>> from service_mesh import istio
    >>> policy = MeshPolicy(
    ...     source_namespace="cos", source_app_name="grafana",
    ...     target_namespace="cos", target_app_name="tempo",
    ... )
    >>> [manifest] = istio.authorization_policies("istio-beacon-k8s", "cos", [policy])
    >>> manifest["spec"]["targetRefs"]
    [{'group': '', 'kind': 'Service', 'name': 'tempo'}]
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from ._models import Endpoint, MeshPolicy, PolicyTargetType

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "API_VERSION",
    "GROUP",
    "KIND",
    "PLURAL",
    "VERSION",
    "authorization_policies",
    "policy_name",
]

GROUP = "security.istio.io"
VERSION = "v1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "AuthorizationPolicy"
PLURAL = "authorizationpolicies"

# Kubernetes limits object names (DNS-1123 subdomains) to this many characters.
_MAX_NAME_LENGTH = 253
# Upstream's fallback when a name is too long: cut these parts to this many characters.
_TRUNCATED_PART_LENGTH = 30


def authorization_policies(
    owner_app: str, owner_model: str, policies: Iterable[MeshPolicy]
) -> list[dict[str, Any]]:
    """Build one AuthorizationPolicy manifest per policy, in the order given.

    Args:
        owner_app: application that owns (applies) the resources; only used in their names.
        owner_model: that application's model; only used in the names.
        policies: what to allow.

    Returns:
        Manifests with keys in upstream's serialisation order (``metadata``, ``spec``,
        ``apiVersion``, ``kind``), each in the policy's ``target_namespace`` and without
        ownership labels, which the resource manager adds.
    """
    return [_authorization_policy(owner_app, owner_model, policy) for policy in policies]


def policy_name(owner_app: str, owner_model: str, policy: MeshPolicy) -> str:
    """Return the resource name upstream gives ``policy`` when ``owner_app`` applies it.

    The name ends with a hash of ``str(policy)``, so any change to the policy gives a new name;
    that is what lets a resource manager tell changed policies apart without reading specs.
    """
    target = policy.target_app_name or policy.target_service or "custom-selector"
    digest = hashlib.sha256(str(policy).encode()).hexdigest()[:8]
    parts = [policy.source_app_name, policy.source_namespace, target]
    name = "-".join([owner_app, owner_model, "policy", *parts, digest])
    if len(name) > _MAX_NAME_LENGTH:
        cut = [part[:_TRUNCATED_PART_LENGTH] for part in parts]
        name = "-".join([owner_app, owner_model, "policy", *cut, digest])
    return name


def _authorization_policy(owner_app: str, owner_model: str, policy: MeshPolicy) -> dict[str, Any]:
    if policy.target_type is PolicyTargetType.unit:
        target = _workload_selector(policy)
        operations = [{"ports": _ports(endpoint)} for endpoint in policy.endpoints]
    else:
        service = policy.target_service or policy.target_app_name
        target = {"targetRefs": [{"group": "", "kind": "Service", "name": service}]}
        operations = [_l7_operation(endpoint) for endpoint in policy.endpoints]
    principal = f"cluster.local/ns/{policy.source_namespace}/sa/{policy.source_app_name}"
    rule = {
        "from": [{"source": {"principals": [principal]}}],
        "to": [{"operation": operation} for operation in operations],
    }
    return {
        "metadata": {
            "name": policy_name(owner_app, owner_model, policy),
            "namespace": policy.target_namespace,
        },
        "spec": {**target, "rules": [rule]},
        "apiVersion": API_VERSION,
        "kind": KIND,
    }


def _workload_selector(policy: MeshPolicy) -> dict[str, Any]:
    """Select the target pods: explicit labels win over Juju's per-application pod label."""
    if policy.target_selector_labels:
        labels = dict(policy.target_selector_labels)
    else:
        labels = {"app.kubernetes.io/name": policy.target_app_name}
    return {"selector": {"matchLabels": labels}}


def _l7_operation(endpoint: Endpoint) -> dict[str, Any]:
    """Keep every restriction the endpoint sets, in Istio's field order; ``None`` means any."""
    operation: dict[str, Any] = {}
    if endpoint.hosts is not None:
        operation["hosts"] = list(endpoint.hosts)
    operation["ports"] = _ports(endpoint)
    if endpoint.methods is not None:
        operation["methods"] = [method.value for method in endpoint.methods]
    if endpoint.paths is not None:
        operation["paths"] = list(endpoint.paths)
    return operation


def _ports(endpoint: Endpoint) -> list[str]:
    """Istio wants ports as strings; an empty list (not a missing key) means any port."""
    return [str(port) for port in endpoint.ports or ()]
