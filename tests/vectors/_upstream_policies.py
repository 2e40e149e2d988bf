# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Vectors of upstream's Istio policy builder and PolicyResourceManager.

The manager's requests go through a real ``lightkube.Client`` to ``FakeKubernetes`` in process.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib.metadata import version
from types import SimpleNamespace
from typing import Any, cast

import yaml
from canonical_service_mesh.k8s.resource_manager import (
    PolicyResourceManager,
    create_charm_default_labels,
)
from canonical_service_mesh.utils import charm_kubernetes_label, generate_telemetry_labels
from canonical_service_mesh.utils.istio import build_policy_resources_istio
from charmlibs.interfaces import service_mesh as upstream
from ops import testing

from service_mesh.testing import FakeKubernetes

from ._upstream_common import (
    COORDINATOR,
    ENVIRONMENT_PACKAGES,
    MESH_LABELS,
    MODEL,
    UPSTREAM_PACKAGES,
    WORKERS,
    Document,
    produced_by,
)
from ._upstream_relations import PROVIDER_META, consumer_databag, upstream_provider

# ----- Istio policy builder -----


def cluster_internal_policies(workers: tuple[str, ...] = WORKERS) -> list[upstream.MeshPolicy]:
    """The cluster-internal policies of a coordinated-workers cluster, in its order."""
    members = {"app.kubernetes.io/part-of": COORDINATOR}

    def policy(source: str, **target: Any) -> upstream.MeshPolicy:
        return upstream.MeshPolicy(
            source_namespace=MODEL,
            source_app_name=source,
            target_namespace=MODEL,
            endpoints=[],
            **target,
        )

    policies = [policy(COORDINATOR, target_selector_labels=members, target_type="unit")]
    for worker in workers:
        policies.append(policy(worker, target_selector_labels=members, target_type="unit"))
        policies.append(policy(worker, target_app_name=COORDINATOR, target_type="app"))
    return policies


def _to_dict(resource: Any) -> Any:
    return None if resource is None else resource.to_dict()


def builder_raw_cluster_internal() -> Document:
    """What upstream's builder makes of the cluster-internal policies, before PRM labels."""
    resources = build_policy_resources_istio(COORDINATOR, MODEL, cluster_internal_policies())
    return {
        "_produced_by": produced_by(*UPSTREAM_PACKAGES, *ENVIRONMENT_PACKAGES),
        "_description": (
            "canonical_service_mesh.utils.istio.build_policy_resources_istio('tempo','cos',"
            " policies).to_dict() (before PRM adds labels)"
        ),
        "resources": [_to_dict(resource) for resource in resources],
    }


def _edge_policies() -> list[tuple[str, str, str, dict[str, Any]]]:
    """(description, owner app, owner model, MeshPolicy fields) of each builder edge case."""
    names = {"source_namespace": "a", "source_app_name": "b", "target_namespace": "c"}
    long_ = {letter: letter * 63 for letter in "amnst"}
    return [
        (
            "app policy with target_service, hosts, two endpoints (cross-namespace source)",
            "app",
            "m",
            {
                **names,
                "source_namespace": "other",
                "target_app_name": "t",
                "target_service": "t-svc",
                "target_type": "app",
                "endpoints": [
                    {
                        "hosts": ["t.c.svc.cluster.local"],
                        "ports": [80],
                        "methods": ["POST", "PUT"],
                        "paths": ["/x"],
                    },
                    {"ports": [90]},
                ],
            },
        ),
        (
            "app policy, Endpoint() with nothing set -> operation.ports == []",
            "app",
            "m",
            {**names, "target_app_name": "t", "target_type": "app", "endpoints": [{}]},
        ),
        (
            "app policy, no endpoints -> rules[0].to == []",
            "app",
            "m",
            {**names, "target_app_name": "t", "target_type": "app", "endpoints": []},
        ),
        (
            "app policy with only target_service (no target_app_name); name uses target_service",
            "app",
            "m",
            {
                **names,
                "target_service": "svc-x",
                "target_type": "app",
                "endpoints": [{"ports": [1]}],
            },
        ),
        (
            "unit policy targeting app -> selector app.kubernetes.io/name",
            "app",
            "m",
            {
                **names,
                "target_app_name": "t",
                "target_type": "unit",
                "endpoints": [{"ports": [8080, 9090]}],
            },
        ),
        (
            "unit policy with neither target_app_name nor selector labels -> NO selector"
            " (namespace-wide!)",
            "app",
            "m",
            {**names, "target_type": "unit", "endpoints": []},
        ),
        (
            "unit policy with methods -> builder returns None (logged error); PRM.reconcile then"
            " crashes with AttributeError",
            "app",
            "m",
            {
                **names,
                "target_app_name": "t",
                "target_type": "unit",
                "endpoints": [{"ports": [1], "methods": ["GET"]}],
            },
        ),
        (
            "very long names -> truncated form (>253 chars)",
            long_["a"],
            long_["m"],
            {
                "source_namespace": long_["n"],
                "source_app_name": long_["s"],
                "target_namespace": "c",
                "target_app_name": long_["t"],
                "target_type": "app",
                "endpoints": [],
            },
        ),
    ]


def _quietly(function: Callable[[], Any]) -> Any:
    """Run ``function`` with upstream's expected error logs (the refused unit policy) muted."""
    previous = logging.root.manager.disable
    logging.disable(logging.ERROR)
    try:
        return function()
    finally:
        logging.disable(previous)


def builder_edge_cases() -> Document:
    """Upstream's builder on edge cases, and its label and name helpers."""
    cases: list[dict[str, Any]] = []
    for description, app, model, fields in _edge_policies():
        policy = upstream.MeshPolicy.model_validate(fields)
        [resource] = _quietly(lambda: build_policy_resources_istio(app, model, [policy]))  # noqa: B023
        cases.append(
            {
                "description": description,
                "prm_app": app,
                "prm_model": model,
                "meshpolicy": policy.model_dump(mode="json"),
                "str_for_hash": str(policy),
                "resource": _to_dict(resource),
            }
        )
    a40, m40 = "a" * 40, "m" * 40
    return {
        "_produced_by": produced_by(*sorted(UPSTREAM_PACKAGES), "pydantic"),
        "_description": (
            "build_policy_resources_istio(app, model, [policy]) edge cases (resource.to_dict(),"
            " before PRM labels) and label/name helpers. name = '-'.join([app, model, 'policy',"
            " source_app, source_ns, target_app or target_service or 'custom-selector',"
            " sha256(str(MeshPolicy))[:8]])."
        ),
        "builder_cases": cases,
        "label_helpers": {
            "charm_kubernetes_label(model='cos', app='istio-beacon-k8s', suffix='-waypoint',"
            " separator='-')": charm_kubernetes_label(
                model_name="cos", app_name="istio-beacon-k8s", suffix="-waypoint", separator="-"
            ),
            "charm_kubernetes_label(model='m'*40, app='a'*40, suffix='-waypoint',"
            " separator='-')": charm_kubernetes_label(
                model_name=m40, app_name=a40, suffix="-waypoint", separator="-"
            ),
            "create_charm_default_labels('istio-beacon-k8s','cos','istio-authorization-policy')": (
                create_charm_default_labels(
                    "istio-beacon-k8s", "cos", "istio-authorization-policy"
                )
            ),
            "create_charm_default_labels('a'*40,'m'*40,'s')": create_charm_default_labels(
                a40, m40, "s"
            ),
            "generate_telemetry_labels(app='istio-beacon-k8s', model='cos')": (
                generate_telemetry_labels("istio-beacon-k8s", "cos")
            ),
            "generate_telemetry_labels(app='a'*40, model='m'*40)": generate_telemetry_labels(
                a40, m40
            ),
        },
    }


# ----- Kubernetes requests (a real lightkube Client against FakeKubernetes) -----

# coordinated-workers' own owner labels (instance "<app>-<model>"), not upstream's default
# ("<model>-<app>"): the file records what a coordinator's manager sends.
PRM_LABELS = {
    "app.kubernetes.io/instance": f"{COORDINATOR}-{MODEL}",
    "kubernetes-resource-handler-scope": f"{COORDINATOR}-{MODEL}-cluster-internal",
}


def _policy_record(policy: upstream.MeshPolicy) -> dict[str, Any]:
    return {"meshpolicy_json": policy.model_dump(mode="json"), "str_for_hash": str(policy)}


def deletes_sorted(requests: list[Any]) -> list[Any]:
    """``requests`` with each run of consecutive DELETEs sorted by path.

    Upstream deletes what it finds in the order of a Python ``set`` of (group, version, kind,
    name, namespace) tuples, which changes with ``PYTHONHASHSEED`` from one process to the next;
    sorting makes the log reproducible without claiming an order upstream does not keep.
    """
    ordered: list[Any] = []
    run: list[Any] = []
    for request in [*requests, None]:
        if request is not None and request["method"] == "DELETE":
            run.append(request)
            continue
        ordered.extend(sorted(run, key=lambda r: r["path"]))
        run = []
        if request is not None:
            ordered.append(request)
    return ordered


def prm_cluster_internal_wire() -> Document:
    """Every request upstream's PolicyResourceManager sends for the cluster-internal policies."""
    fake = FakeKubernetes()
    charm = SimpleNamespace(
        app=SimpleNamespace(name=COORDINATOR), model=SimpleNamespace(name=MODEL)
    )
    client = fake.client(namespace=MODEL, field_manager=f"{COORDINATOR}-{MODEL}")
    try:
        prm = PolicyResourceManager(charm, client, dict(PRM_LABELS))  # type: ignore[arg-type]
        prm.reconcile(cluster_internal_policies(), upstream.MeshType.istio)
        pass1 = fake.clear_requests()
        prm.reconcile(cluster_internal_policies(WORKERS[:1]), upstream.MeshType.istio)
        pass2 = deletes_sorted(fake.clear_requests())
        prm.delete()
        pass3 = deletes_sorted(fake.clear_requests())
    finally:
        client.close()
    return {
        "_produced_by": produced_by(*UPSTREAM_PACKAGES, *ENVIRONMENT_PACKAGES),
        "_description": (
            "Full HTTP request log of PolicyResourceManager (canonical_service_mesh) for the"
            " coordinated-workers cluster-internal policies. Pass 1: 5 policies (1 coordinator"
            " unit, 2 per worker). Pass 2: tempo-ingester removed -> its 2 policies DELETEd, the"
            " rest re-applied. Pass 3: prm.delete() -> list + delete all labelled. Upstream"
            " deletes in Python set order (it varies with PYTHONHASHSEED): each run of DELETEs"
            " is listed sorted by path."
            " Client(field_manager='tempo-cos')."
        ),
        "prm_labels": PRM_LABELS,
        "mesh_policies": [_policy_record(p) for p in cluster_internal_policies()],
        "pass1_reconcile_requests": pass1,
        "pass2_reconcile_without_tempo_ingester": pass2,
        "pass3_delete": pass3,
    }


CLUSTER_INTERNAL_YAML_HEADER = """\
# Istio AuthorizationPolicies that canonical-service-mesh {version} PolicyResourceManager
# .reconcile(policies, MeshType.istio) applies for the coordinated-workers cluster-internal
# MeshPolicies of model 'cos', coordinator 'tempo', workers 'tempo-querier', 'tempo-ingester'
# (PRM charm app='tempo', model='cos': names embed these). Bodies are exactly what it sends as
# server-side-apply PATCH (application/apply-patch+yaml) through a real lightkube Client.
# Labels = coordinated-workers PRM labels (instance '<app>-<model>',
# scope '<app>-<model>-cluster-internal'). Written by tests/vectors/generate.py.
"""


def cluster_internal_yaml() -> str:
    """The apply bodies of PRM's first pass as one YAML stream (what the cluster holds)."""
    bodies = [
        request["body"] for request in prm_cluster_internal_wire()["pass1_reconcile_requests"]
    ]
    applied = [body for body in bodies if body is not None]
    header = CLUSTER_INTERNAL_YAML_HEADER.format(version=version("canonical-service-mesh"))
    return header + yaml.safe_dump_all(applied, sort_keys=False)


BEACON = "istio-beacon-k8s"
BEACON_YAML_HEADER = """\
# AuthorizationPolicies istio-beacon-k8s (managed mode) would apply for the consumer databag in
# consumer-databag-tempo.json: ServiceMeshProvider.mesh_info() -> PolicyResourceManager(app=
# 'istio-beacon-k8s', model='cos', labels=create_charm_default_labels(..., scope=
# 'istio-authorization-policy')).reconcile(..., MeshType.istio). canonical-service-mesh {version}.
# NOTE instance label is '<model>-<app>' here (canonical-service-mesh>=0.0.2 /
# lightkube-extensions 1.0.0); older lightkube-extensions<=0.3.0 produced '<app>-<model>'
# (e.g. 'istio-beacon-k8s-cos'). Written by tests/vectors/generate.py.
"""


def beacon_from_consumer_wire() -> Document:
    """What the beacon's library calls send for the consumer bag of :func:`consumer_databag`.

    The beacon charm itself is not installable; its managed mode is these two calls: read the
    consumer's policies with ``ServiceMeshProvider.mesh_info()``, reconcile them with
    ``PolicyResourceManager`` under its own labels.
    """
    relation = testing.Relation(
        "service-mesh", remote_app_name=COORDINATOR, remote_app_data=consumer_databag()["databag"]
    )
    ctx = testing.Context(upstream_provider(MESH_LABELS), meta=PROVIDER_META, app_name=BEACON)
    state = testing.State(model=testing.Model(name=MODEL), relations=[relation])
    with ctx(ctx.on.update_status(), state) as manager:
        policies = cast("Any", manager.charm).mesh.mesh_info()  # upstream's provider charm
    labels = create_charm_default_labels(BEACON, MODEL, "istio-authorization-policy")
    fake = FakeKubernetes()
    charm = SimpleNamespace(app=SimpleNamespace(name=BEACON), model=SimpleNamespace(name=MODEL))
    client = fake.client(namespace=MODEL, field_manager=BEACON)
    try:
        prm = PolicyResourceManager(charm, client, dict(labels))  # type: ignore[arg-type]
        prm.reconcile(policies, upstream.MeshType.istio)
    finally:
        client.close()
    return {
        "_produced_by": produced_by(*UPSTREAM_PACKAGES, *ENVIRONMENT_PACKAGES),
        "prm_labels": labels,
        "mesh_policies": [_policy_record(p) for p in policies],
        "requests": fake.clear_requests(),
    }


def beacon_from_consumer_yaml() -> str:
    """The apply bodies of :func:`beacon_from_consumer_wire` as one YAML stream."""
    bodies = [r["body"] for r in beacon_from_consumer_wire()["requests"] if r["body"] is not None]
    header = BEACON_YAML_HEADER.format(version=version("canonical-service-mesh"))
    return header + yaml.safe_dump_all(bodies, sort_keys=False)
