# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""A minimal coordinator built on the library with the worker telemetry proxy switched off.

The reference charm always proxies; this inline charm shows the other branch: workers get the
real telemetry URLs, Prometheus scrapes workers directly, nginx serves no proxy port, and the
beacon is only asked to let scrapers reach the exporter.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from ops import testing

from coordinated_workers import ClusterRolesConfig
from coordinated_workers._coordinator import CoordinatorConfig, CoordinatorEndpoints
from coordinated_workers._nginx import RoleRoute
from coordinated_workers.testing import read_provider_data, worker_relation
from service_mesh.testing import FakeKubernetes
from tests.support.coordinators import (
    COORDINATOR_CONTAINERS,
    coordinator_charm,
    coordinator_state,
    kubernetes_with,
)

MODEL = "plain"
APP = "mini"
LOKI_URL = "http://loki-0.loki-endpoints.cos.svc.cluster.local:3100/loki/api/v1/push"

META = {
    "name": APP,
    "containers": COORDINATOR_CONTAINERS,
    "provides": {
        "cluster": {"interface": "cluster"},
        "metrics-endpoint": {"interface": "prometheus_scrape"},
        "provide-cmr-mesh": {"interface": "cross_model_mesh"},
    },
    "requires": {
        "logging": {"interface": "loki_push_api"},
        "service-mesh": {"interface": "service_mesh", "limit": 1},
        "require-cmr-mesh": {"interface": "cross_model_mesh"},
    },
}


# `peers` keeps its default though META declares no peer endpoint: a charm without the optional
# endpoint must still work.
MiniCoordinator = coordinator_charm(
    CoordinatorConfig(
        roles=ClusterRolesConfig(roles={"work"}, meta_roles={}, minimal_deployment={"work"}),
        workload_config=lambda _context: "plain: true\n",
        routes=[RoleRoute("/work", "work", 9000)],
        worker_metrics_port=9000,
        endpoints=CoordinatorEndpoints(
            charm_tracing=None, workload_tracing=None, remote_write=None
        ),
    )
)


@pytest.fixture
def kube() -> Iterator[FakeKubernetes]:
    with kubernetes_with(APP, MODEL) as fake:
        yield fake


def _run(*relations: testing.RelationBase) -> tuple[testing.State, str]:
    """Run config-changed; return the output state and the nginx.conf the charm wrote."""
    ctx = testing.Context(MiniCoordinator, meta=META, app_name=APP)
    out = ctx.run(ctx.on.config_changed(), coordinator_state(*relations, model=MODEL))
    conf = (out.get_container("nginx").get_filesystem(ctx) / "etc/nginx/nginx.conf").read_text()
    return out, conf


def test_workers_get_the_real_telemetry_urls(kube):
    loki = testing.Relation(
        "logging",
        remote_app_name="loki",
        remote_units_data={0: {"endpoint": json.dumps({"url": LOKI_URL})}},
    )
    out, nginx_conf = _run(worker_relation("w", ["work"], model=MODEL), loki)
    cluster = next(
        r for r in out.relations if r.endpoint == "cluster" and isinstance(r, testing.Relation)
    )
    assert read_provider_data(cluster).loki_endpoints == {"loki/0": LOKI_URL}
    assert "/proxy/" not in nginx_conf
    assert "listen 8081" not in nginx_conf


def test_prometheus_scrapes_workers_directly(kube):
    metrics = testing.Relation("metrics-endpoint", remote_app_name="prometheus")
    out, _ = _run(worker_relation("w", ["work"], units=2, model=MODEL), metrics)
    relation = next(r for r in out.relations if r.endpoint == "metrics-endpoint")
    jobs = json.loads(relation.local_app_data["scrape_jobs"])
    worker_targets = sorted(
        target
        for job in jobs
        if job["job_name"].startswith("worker-")
        for config in job["static_configs"]
        for target in config["targets"]
    )
    assert worker_targets == [
        f"w-0.w-endpoints.{MODEL}.svc.cluster.local:9000",
        f"w-1.w-endpoints.{MODEL}.svc.cluster.local:9000",
    ]


def test_only_the_exporter_policy_goes_to_the_beacon(kube):
    mesh = testing.Relation(
        "service-mesh",
        remote_app_name="istio-beacon-k8s",
        remote_app_data={"labels": json.dumps({}), "mesh_type": json.dumps("istio")},
    )
    metrics = testing.Relation("metrics-endpoint", remote_app_name="prometheus")
    out, _ = _run(worker_relation("w", ["work"], model=MODEL), mesh, metrics)
    published = json.loads(
        next(r for r in out.relations if r.endpoint == "service-mesh").local_app_data["policies"]
    )
    assert [
        (p["source_app_name"], p["target_type"], p["endpoints"][0]["ports"]) for p in published
    ] == [("prometheus", "unit", [9113])]
    assert len(kube.list("authorizationpolicies", MODEL)) == 3
