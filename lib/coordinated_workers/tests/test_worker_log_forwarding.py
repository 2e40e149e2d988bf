# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""A worker forwards every container's logs, sidecars included, not only its workload's."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import ops
import pytest
from ops import testing

from coordinated_workers import ClusterProviderAppData
from coordinated_workers._worker import WorkerConfig
from coordinated_workers.testing import coordinator_relation
from service_mesh.testing import FakeKubernetes
from tests.support.coordinators import kubernetes_with
from tests.support.workers import worker_charm

MODEL = "logs"
APP = "w"
LOKI = {"loki/0": "http://coordinator.logs.svc.cluster.local:8081/proxy/loki/loki-0/push"}
META = {
    "name": "worker-with-sidecar",
    "containers": {"workload": {}, "sidecar": {}},
    "requires": {"cluster": {"interface": "cluster", "limit": 1}},
}
CONFIG = {"options": {"role-all": {"type": "boolean", "default": True}}}


SidecarWorker = worker_charm(
    WorkerConfig(
        container="workload",
        layer=lambda _context: {
            "services": {
                "workload": {"override": "replace", "command": "run", "startup": "enabled"}
            }
        },
    )
)


@pytest.fixture
def kube() -> Iterator[FakeKubernetes]:
    with kubernetes_with(APP, MODEL) as fake:
        yield fake


def _state(loki: dict[str, str], sidecar_reachable: bool = True) -> testing.State:
    data = ClusterProviderAppData.model_validate(
        {"worker_config": "x: 1\n", "loki_endpoints": loki or None}
    )
    sidecar_layer = ops.pebble.Layer(
        {"services": {"proxy": {"override": "replace", "command": "proxy", "startup": "enabled"}}}
    )
    return testing.State(
        leader=True,
        model=testing.Model(name=MODEL),
        relations=[coordinator_relation(data)],
        containers=[
            testing.Container("workload", can_connect=True),
            testing.Container(
                "sidecar", can_connect=sidecar_reachable, layers={"sidecar": sidecar_layer}
            ),
        ],
    )


def test_every_container_forwards_its_logs_and_stops_when_loki_goes(kube):
    ctx = testing.Context(SidecarWorker, meta=META, config=CONFIG, app_name=APP)
    out = ctx.run(ctx.on.config_changed(), _state(LOKI))

    for name in ("workload", "sidecar"):
        target = out.get_container(name).plan.log_targets["loki-loki-0"]
        assert target.location == LOKI["loki/0"]
        assert target.labels is not None
        assert target.labels["juju_application"] == APP

    gone = _state({})
    after = ctx.run(
        ctx.on.config_changed(), dataclasses.replace(gone, containers=frozenset(out.containers))
    )
    assert after.get_container("sidecar").plan.log_targets["loki-loki-0"].services == ["-all"]


def test_an_unreachable_sidecar_does_not_block_the_worker(kube):
    ctx = testing.Context(SidecarWorker, meta=META, config=CONFIG, app_name=APP)
    out = ctx.run(ctx.on.config_changed(), _state(LOKI, sidecar_reachable=False))
    assert out.get_container("workload").plan.log_targets["loki-loki-0"].location == LOKI["loki/0"]
    assert not isinstance(out.unit_status, ops.BlockedStatus)
