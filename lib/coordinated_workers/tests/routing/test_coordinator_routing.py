# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""A Loki-shaped coordinator on the library: its servers reach nginx.conf and the mesh.

The charm declares Loki's routing table (``tests/support/products.py``) as `servers`, with no
role routes: nginx.conf serves it on 3100 next to the telemetry proxy, the servers' relations
become external mesh policies, unit scaling reloads nothing and a new worker app one reload.
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Iterator
from typing import Any

import pytest
from ops import testing

from coordinated_workers import ClusterRolesConfig
from coordinated_workers._coordinator import CoordinatorConfig, CoordinatorEndpoints
from coordinated_workers._telemetry_proxy import WorkerTelemetryProxyConfig
from coordinated_workers.testing import worker_relation
from service_mesh import AppPolicy, Endpoint, Method, UnitPolicy
from service_mesh.testing import FakeKubernetes
from tests.support.coordinators import (
    COORDINATOR_CONTAINERS,
    coordinator_charm,
    coordinator_state,
    kubernetes_with,
)
from tests.support.products import loki

MODEL = "cos"
APP = "loki"
LOKI = loki()

META = {
    "name": APP,
    "containers": COORDINATOR_CONTAINERS,
    "provides": {
        "cluster": {"interface": "cluster"},
        "metrics-endpoint": {"interface": "prometheus_scrape"},
        "grafana-source": {"interface": "grafana_datasource"},
        "logging": {"interface": "loki_push_api"},
        "provide-cmr-mesh": {"interface": "cross_model_mesh"},
    },
    "requires": {
        "service-mesh": {"interface": "service_mesh", "limit": 1},
        "require-cmr-mesh": {"interface": "cross_model_mesh"},
    },
}


LokiLike = coordinator_charm(
    CoordinatorConfig(
        roles=ClusterRolesConfig(
            roles={"all", "read", "write", "backend"},
            meta_roles={"all": {"read", "write", "backend"}},
            minimal_deployment={"read", "write", "backend"},
        ),
        workload_config=lambda _context: "loki: true\n",
        routes=(),
        servers=LOKI.servers,
        api_port=LOKI.api_port,
        worker_metrics_port=3100,
        telemetry_proxy=WorkerTelemetryProxyConfig(http_port=3100, https_port=3100),
        endpoints=CoordinatorEndpoints(
            logging=None, charm_tracing=None, workload_tracing=None, remote_write=None
        ),
    )
)


@pytest.fixture
def kube() -> Iterator[FakeKubernetes]:
    with kubernetes_with(APP, MODEL) as fake:
        yield fake


def _state(etc_nginx: pathlib.Path, *relations: testing.RelationBase) -> testing.State:
    """nginx's /etc/nginx is `etc_nginx`, so the file survives from one hook to the next."""
    mount = testing.Mount(location="/etc/nginx", source=etc_nginx)
    return coordinator_state(*relations, model=MODEL, nginx={"mounts": {"etc": mount}})


def _conf(etc_nginx: pathlib.Path) -> str:
    return (etc_nginx / "nginx.conf").read_text()


def _reloads(ctx: testing.Context[Any]) -> int:
    return sum(e.command[1:] == ["-s", "reload"] for e in ctx.exec_history.get("nginx", []))


def _workers(units: int) -> list[testing.Relation]:
    return [
        worker_relation(f"loki-{role}", [role], units=units, model=MODEL, relation_id=i)
        for i, role in enumerate(("backend", "read", "write"), start=10)
    ]


def test_the_servers_are_served_and_unit_scaling_reloads_nothing(
    kube: FakeKubernetes, tmp_path: pathlib.Path
):
    ctx = testing.Context(LokiLike, meta=META, app_name=APP)
    out = ctx.run(ctx.on.config_changed(), _state(tmp_path, *_workers(1)))
    first = _conf(tmp_path)
    assert out.unit_status == testing.ActiveStatus()
    assert "        listen 3100;" in first
    assert "listen 8080" not in first
    assert "        location = /loki/api/v1/push {" in first
    assert "set $backend http://loki-write-endpoints.cos.svc.cluster.local:3100;" in first
    assert "        location ~ '^/proxy/worker/" in first  # the proxy shares the API server

    scaled = dataclasses.replace(out, relations=_workers(3))
    before = _reloads(ctx)
    again = ctx.run(ctx.on.config_changed(), scaled)
    assert _conf(tmp_path) == first
    assert _reloads(ctx) == before

    extra = worker_relation("loki-read-b", ["read"], model=MODEL, relation_id=20)
    grown = ctx.run(
        ctx.on.config_changed(), dataclasses.replace(again, relations=[*_workers(3), extra])
    )
    assert grown.unit_status == testing.ActiveStatus()
    assert "loki-read-b-endpoints.cos.svc.cluster.local" in _conf(tmp_path)
    assert _reloads(ctx) == before + 1


def test_the_servers_relations_become_external_mesh_policies(
    kube: FakeKubernetes, tmp_path: pathlib.Path
):
    ctx = testing.Context(LokiLike, meta=META, app_name=APP)
    with ctx(ctx.on.config_changed(), _state(tmp_path, *_workers(1))) as manager:
        policies = manager.charm.coordinator.external_policies()
        manager.run()
    assert policies == [
        UnitPolicy(relation="metrics-endpoint", ports=[9113]),
        AppPolicy(
            relation="metrics-endpoint",
            endpoints=[
                Endpoint(ports=[3100], methods=[Method.get], paths=["/proxy/worker/{*}/metrics"])
            ],
        ),
        AppPolicy(relation="grafana-source", endpoints=[Endpoint(ports=[3100])]),
        AppPolicy(
            relation="logging", endpoints=[Endpoint(ports=[3100], paths=["/loki/api/v1/push"])]
        ),
    ]
