# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The minimal allow-set: what the generated policies let through, and nothing more.

Both charms run on a fake cluster: the coordinator applies its cluster-internal policies and
publishes its external ones to the beacon, the workers label their pods from the cluster
relation. The beacon's policies are built from the published bag with the same builder the
beacon uses. :func:`service_mesh.allow_matrix.allow_matrix` then reads every (source app, target
app, port, method, path) the policies allow, given the pod labels and Services in the cluster,
and the test compares that with the matrix the topology should have.
"""

from __future__ import annotations

import json

from ops import testing
from reliability_charms import (
    COORDINATOR,
    MODEL,
    WORKERS,
    coordinator_context,
    coordinator_state,
    mesh_relation,
    worker_context,
    worker_state,
    workers_relations,
)

from coordinated_workers import ClusterProviderAppData
from coordinated_workers.testing import coordinator_relation
from service_mesh import MeshPolicy, istio
from service_mesh.allow_matrix import Service, Workload, allow_matrix
from service_mesh.testing import FakeKubernetes

ALL = ()
CLIENT, PROMETHEUS = "client", "prometheus"


def _deploy(kube: FakeKubernetes) -> list[dict]:
    """Run the charms; return every AuthorizationPolicy that would be in the cluster."""
    ctx = coordinator_context()
    api = testing.Relation("api", remote_app_name=CLIENT)
    metrics = testing.Relation("metrics-endpoint", remote_app_name=PROMETHEUS)
    out = ctx.run(
        ctx.on.config_changed(),
        coordinator_state(*workers_relations(), mesh_relation(), api, metrics),
    )
    for relation in out.relations:
        if relation.endpoint == "cluster" and isinstance(relation, testing.Relation):
            data = ClusterProviderAppData.load(relation.local_app_data)
            worker_ctx = worker_context(relation.remote_app_name)
            worker_ctx.run(
                worker_ctx.on.config_changed(),
                worker_state(coordinator_relation(data, COORDINATOR)),
            )
    mesh = next(r for r in out.relations if r.endpoint == "service-mesh")
    published = [MeshPolicy.model_validate(p) for p in json.loads(mesh.local_app_data["policies"])]
    beacon_policies = istio.authorization_policies("istio-beacon-k8s", MODEL, published)
    return kube.list("authorizationpolicies") + beacon_policies


def _cluster(kube: FakeKubernetes) -> tuple[list[Workload], list[Service]]:
    workloads = [
        Workload(MODEL, s["metadata"]["name"], s["spec"]["template"]["metadata"]["labels"])
        for s in kube.list("statefulsets", MODEL)
    ]
    for app in (CLIENT, PROMETHEUS):
        workloads.append(Workload(MODEL, app, {"app.kubernetes.io/name": app}))
    services = [
        Service(MODEL, s["metadata"]["name"], s["spec"]["selector"])
        for s in kube.list("services", MODEL)
    ]
    return workloads, services


def _expected() -> set[tuple]:
    def key(app: str) -> str:
        return f"{MODEL}/{app}"

    members = (COORDINATOR, *WORKERS)
    rows = {(key(src), key(dst), "pods", ALL, ALL, ALL) for src in members for dst in members}
    rows |= {(key(w), key(COORDINATOR), f"service {COORDINATOR}", ALL, ALL, ALL) for w in WORKERS}
    rows |= {
        (key(PROMETHEUS), key(COORDINATOR), "pods", ("9113",), ALL, ALL),
        (
            key(PROMETHEUS),
            key(COORDINATOR),
            f"service {COORDINATOR}",
            ("8081",),
            ("GET",),
            ("/proxy/worker/{*}/metrics",),
        ),
        (key(CLIENT), key(COORDINATOR), f"service {COORDINATOR}", ("8080",), ALL, ALL),
    }
    return rows


def test_the_generated_policies_allow_exactly_the_expected_matrix(kube):
    policies = _deploy(kube)
    workloads, services = _cluster(kube)
    matrix = allow_matrix(policies, workloads, services)
    got = {(a.source, a.target, a.via, a.ports, a.methods, a.paths) for a in matrix}
    expected = _expected()
    assert got - expected == set(), "allowed but not expected"
    assert expected - got == set(), "expected but not allowed"
    assert not any(a.hosts for a in matrix)


def test_every_policy_names_its_sources_and_its_targets(kube):
    for policy in _deploy(kube):
        spec = policy["spec"]
        name = policy["metadata"]["name"]
        assert spec.get("selector", {}).get("matchLabels") or spec.get("targetRefs"), (
            f"{name} is namespace-wide"
        )
        assert spec["rules"], f"{name} has no rule"
        for rule in spec["rules"]:
            assert rule["from"], f"{name} allows any source"
            for source in rule["from"]:
                assert source["source"].get("principals"), f"{name} has no source principal"
                assert set(source["source"]) == {"principals"}, name
