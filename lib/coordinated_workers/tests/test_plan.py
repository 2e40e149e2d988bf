# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The coordinator's plan is a pure function of its inputs: no Juju, Pebble or Kubernetes."""

from __future__ import annotations

import dataclasses

import pytest

from coordinated_workers import (
    CatalogueItem,
    ClusterRolesConfig,
    Location,
    S3ConnectionInfo,
    Server,
    WorkerApp,
    WorkerUnit,
    WorkloadConfigContext,
)
from coordinated_workers._coordinator import CoordinatorConfig
from coordinated_workers._nginx import NoNameserverError, RoleRoute
from coordinated_workers._plan import (
    KEEP,
    CoordinatorInputs,
    MeshInputs,
    enrolled_labels,
    plan_coordinator,
)
from coordinated_workers._s3_share import SharedS3
from coordinated_workers._telemetry_proxy import TelemetryTargets, WorkerTelemetryProxyConfig
from service_mesh import MeshType

MESH_LABELS = {"istio.io/dataplane-mode": "ambient"}
MEMBERSHIP = {"app.kubernetes.io/part-of": "coord"}

CONFIG = CoordinatorConfig(
    roles=ClusterRolesConfig(roles={"work"}, meta_roles={}, minimal_deployment={"work"}),
    workload_config=lambda context: f"workers: {[w.name for w in context.workers]}\n",
    routes=[RoleRoute("/work", "work", 9000)],
    worker_metrics_port=9000,
    telemetry_proxy=WorkerTelemetryProxyConfig(http_port=8081),
)


def _worker(name: str) -> WorkerApp:
    unit = WorkerUnit(f"{name}/0", f"{name}-0.{name}-endpoints.m.svc.cluster.local")
    return WorkerApp(name, frozenset({"work"}), (unit,))


def _inputs(**changes: object) -> CoordinatorInputs:
    inputs = CoordinatorInputs(
        app="coord",
        model="m",
        model_uuid="uuid",
        unit="coord/0",
        is_leader=True,
        workers=(_worker("w1"), _worker("w2")),
        coordinator_units=("coord/0",),
        mesh=MeshInputs(
            enabled=True,
            broken=False,
            mesh_type=MeshType.istio,
            labels=MESH_LABELS,
            last_good=None,
        ),
        telemetry=TelemetryTargets(),
        telemetry_problems=(),
        resolver="10.0.0.10",
        ipv6=False,
        force_labels=False,
        verify=False,
        applied_fingerprint="",
    )
    return dataclasses.replace(inputs, **changes)


def test_the_same_inputs_give_the_same_plan():
    assert plan_coordinator(CONFIG, _inputs()) == plan_coordinator(CONFIG, _inputs())


def test_a_meshed_leader_plans_every_worker_apps_policies_and_labels():
    plan = plan_coordinator(CONFIG, _inputs())

    assert plan.labels == {**MESH_LABELS, **MEMBERSHIP}
    assert plan.apply_kubernetes
    assert plan.policies.action == "reconcile"
    assert {p.source_app_name for p in plan.policies.policies} == {"coord", "w1", "w2"}
    assert plan.nginx is not None and "resolver 10.0.0.10" in plan.nginx.text
    assert plan.cluster_data is not None
    assert plan.cluster_data.worker_config == "workers: ['w1', 'w2']\n"
    assert plan.scrape_jobs is not None and len(plan.scrape_jobs) == 3  # 2 workers, 1 exporter
    assert plan.unit_address == "coord-0.coord-endpoints.m.svc.cluster.local"


def test_an_applied_fingerprint_skips_kubernetes_unless_the_event_verifies():
    applied = plan_coordinator(CONFIG, _inputs()).fingerprint

    assert not plan_coordinator(CONFIG, _inputs(applied_fingerprint=applied)).apply_kubernetes
    verifying = _inputs(applied_fingerprint=applied, verify=True)
    assert plan_coordinator(CONFIG, verifying).apply_kubernetes


def test_a_non_leader_plans_no_cluster_data_and_no_kubernetes_work():
    plan = plan_coordinator(CONFIG, _inputs(is_leader=False))

    assert plan.cluster_data is None
    assert not plan.apply_kubernetes
    assert plan.policies.action == "none"


@pytest.mark.parametrize(
    ("mesh", "action"),
    [
        (MeshInputs(True, True, None, {}, None), "keep"),
        (MeshInputs(False, False, None, {}, None), "delete"),
        (None, "none"),
    ],
)
def test_the_policy_action_follows_the_mesh(mesh: MeshInputs | None, action: str):
    assert plan_coordinator(CONFIG, _inputs(mesh=mesh)).policies.action == action


def test_a_broken_mesh_keeps_the_last_labels_published():
    last_good = {"istio.io/dataplane-mode": "ambient", **MEMBERSHIP}
    mesh = MeshInputs(True, True, None, {}, last_good)

    plan = plan_coordinator(CONFIG, _inputs(mesh=mesh))

    assert plan.labels == last_good
    assert plan.labels_known and not plan.mesh_complete


def test_a_refused_worker_app_name_is_left_out_and_named():
    refused = WorkerApp("Bad_Name", frozenset({"work"}), ())
    plan = plan_coordinator(CONFIG, _inputs(workers=(_worker("w1"), refused)))

    assert {p.source_app_name for p in plan.policies.policies} == {"coord", "w1"}
    assert ["Bad_Name" in p.message for p in plan.policies.problems] == [True]


def test_no_resolver_plans_no_nginx_config_and_names_why():
    plan = plan_coordinator(CONFIG, _inputs(resolver=NoNameserverError("no nameserver")))

    assert plan.nginx is None
    assert [p.message for p in plan.nginx_problems] == ["nginx: no nameserver"]


def test_an_app_is_enrolled_only_once_its_policies_are_in_place():
    plan = plan_coordinator(CONFIG, _inputs())
    published = {"w2": {**MESH_LABELS, **MEMBERSHIP}}

    assert enrolled_labels("w1", plan, "coord", frozenset({"w1"}), {}) == plan.labels
    assert enrolled_labels("w1", plan, "coord", frozenset(), {}) == MEMBERSHIP
    assert enrolled_labels("w2", plan, "coord", KEEP, published) == published["w2"]
    assert enrolled_labels("w1", plan, "coord", KEEP, published) == MEMBERSHIP


def test_the_features_inputs_reach_the_plan():
    # Routing, object storage and the catalogue are part of the pure plan, like the rest.
    s3 = S3ConnectionInfo("https://s3.example", "bucket", "ak", "sk", tls_ca_chain=("PEM",))
    seen: list[WorkloadConfigContext] = []

    def workload_config(context: WorkloadConfigContext) -> str:
        seen.append(context)
        return "x: 1\n"

    config = dataclasses.replace(
        CONFIG,
        workload_config=workload_config,
        servers=[Server(9096, locations=(Location("/grpc", "work", 9095),))],
        catalogue=lambda host: CatalogueItem(name="Coord", icon="cog", url=f"http://{host}"),
    )
    plan = plan_coordinator(config, _inputs(s3=SharedS3(s3, "secret:abc", "PEM")))

    assert plan.nginx is not None and "listen 9096" in plan.nginx.text
    assert "/grpc" in plan.nginx.text
    assert plan.cluster_data is not None
    assert plan.cluster_data.s3_secret_id == "secret:abc"
    assert plan.cluster_data.s3_tls_ca_chain == "PEM"
    assert seen[-1].s3 == s3
    assert plan.catalogue == CatalogueItem(
        name="Coord", icon="cog", url="http://coord.m.svc.cluster.local"
    )
    # Without them: no s3 in the bag, no catalogue entry.
    bare = plan_coordinator(CONFIG, _inputs())
    assert bare.cluster_data is not None and bare.cluster_data.s3_secret_id is None
    assert bare.catalogue is None
