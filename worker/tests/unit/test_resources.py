# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The worker sizes its workload container from charm config (ops.testing + FakeKubernetes)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from ops import testing
from worker_scenario import APP, MODEL, state

from coordinated_workers._cluster_data import ClusterProviderAppData
from coordinated_workers.testing import coordinator_relation
from service_mesh.testing import FakeKubernetes, WireRequest

STS_PATH = f"/apis/apps/v1/namespaces/{MODEL}/statefulsets/{APP}"


@pytest.fixture
def kube() -> Iterator[FakeKubernetes]:
    fake = FakeKubernetes()
    fake.add_juju_app(APP, namespace=MODEL, containers=("workload",))
    with fake.serve_to_environment(namespace=MODEL):
        yield fake


def _applies(fake: FakeKubernetes) -> list[WireRequest]:
    return [
        r
        for r in fake.clear_requests()
        if r["path"] == STS_PATH and r["content_type"] == "application/apply-patch+yaml"
    ]


def _cluster() -> testing.Relation:
    return coordinator_relation(ClusterProviderAppData(worker_config="a: 1\n"))


def test_the_workload_container_is_sized_once(ctx, kube):
    config = {"memory_limit": "1Gi", "memory_request": "256Mi"}
    first = ctx.run(ctx.on.config_changed(), state(_cluster(), config=config))
    (apply,) = _applies(kube)
    assert apply["query"] == {"fieldManager": "ResourcePatcher"}
    assert apply["body"]["spec"]["template"]["spec"]["containers"] == [
        {
            "name": "workload",
            "resources": {
                "limits": {"memory": "1073741824"},
                "requests": {"memory": "256Mi"},
            },
        }
    ]
    ctx.run(ctx.on.config_changed(), first)
    assert _applies(kube) == []


def test_an_invalid_value_is_blocked(ctx, kube):
    out = ctx.run(ctx.on.config_changed(), state(_cluster(), config={"cpu_request": "-1"}))
    assert out.unit_status == testing.BlockedStatus(
        "resources: request cpu: '-1' is not a quantity"
    )
    assert _applies(kube) == []
