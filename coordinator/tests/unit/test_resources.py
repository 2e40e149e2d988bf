# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The coordinator sizes its nginx container from charm config (ops.testing + FakeKubernetes)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from coordinator_scenario import APP, MODEL, state
from ops import testing

from coordinated_workers.testing import worker_relation
from service_mesh.testing import FakeKubernetes

STS_PATH = f"/apis/apps/v1/namespaces/{MODEL}/statefulsets/{APP}"
SIZED = {"cpu_limit": "1", "memory_limit": "2Gi", "cpu_request": "50m", "memory_request": "100Mi"}


@pytest.fixture
def kube() -> Iterator[FakeKubernetes]:
    fake = FakeKubernetes()
    fake.add_juju_app(APP, namespace=MODEL, containers=("nginx", "nginx-prometheus-exporter"))
    with fake.serve_to_environment(namespace=MODEL):
        yield fake


def _resource_requests(fake: FakeKubernetes) -> list[tuple[str, dict[str, str]]]:
    """The StatefulSet GETs and the resource applies of the hook (labels use merge patches)."""
    return [
        (r["method"], r["query"])
        for r in fake.clear_requests()
        if r["path"] == STS_PATH
        and (r["method"] == "GET" or r["content_type"] == "application/apply-patch+yaml")
    ]


def _nginx(fake: FakeKubernetes) -> dict:
    sts = fake.get("statefulsets", MODEL, APP)
    assert sts is not None
    return next(c for c in sts["spec"]["template"]["spec"]["containers"] if c["name"] == "nginx")


def test_config_sizes_nginx_once_and_steady_hooks_send_nothing(ctx, kube):
    first = ctx.run(ctx.on.config_changed(), state(worker_relation("w", ["all"]), config=SIZED))
    assert _nginx(kube)["resources"] == {
        "limits": {"cpu": "1", "memory": "2147483648"},
        "requests": {"cpu": "50m", "memory": "100Mi"},
    }
    assert _resource_requests(kube) == [
        ("GET", {}),
        ("GET", {}),
        ("PATCH", {"fieldManager": "ResourcePatcher"}),
    ]
    ctx.run(ctx.on.config_changed(), first)
    assert _resource_requests(kube) == []
    # update-status compares with the cluster: one GET, no patch (the pods do not roll again).
    ctx.run(ctx.on.update_status(), first)
    assert _resource_requests(kube) == [("GET", {})]


def test_nothing_configured_sends_no_request(ctx, kube):
    ctx.run(ctx.on.config_changed(), state(worker_relation("w", ["all"])))
    assert _resource_requests(kube) == []
    assert "resources" not in _nginx(kube)


def test_unsetting_the_limits_takes_them_back(ctx, kube):
    first = ctx.run(ctx.on.config_changed(), state(worker_relation("w", ["all"]), config=SIZED))
    ctx.run(ctx.on.config_changed(), dataclasses.replace(first, config={}))
    assert _nginx(kube)["resources"] == {"limits": {}, "requests": {}}


def test_an_invalid_value_is_blocked_and_patches_nothing(ctx, kube):
    out = ctx.run(
        ctx.on.config_changed(),
        state(worker_relation("w", ["all"]), config={**SIZED, "memory_limit": "2 GB"}),
    )
    assert out.unit_status == testing.BlockedStatus(
        "resources: limit memory: '2 GB' is not a quantity"
    )
    assert not [m for m, _ in _resource_requests(kube) if m == "PATCH"]
    assert "resources" not in _nginx(kube)


def test_a_refused_patch_asks_for_trust_and_the_next_hook_retries(ctx, kube):
    unsized = ctx.run(ctx.on.config_changed(), state(worker_relation("w", ["all"])))
    kube.fail("PATCH", STS_PATH)  # the labels are in place: only the resource patch is sent
    first = ctx.run(ctx.on.config_changed(), dataclasses.replace(unsized, config=SIZED))
    assert first.unit_status == testing.BlockedStatus(
        f"resources: Kubernetes API forbidden; run `juju trust {APP} --scope=cluster`"
    )
    assert "resources" not in _nginx(kube)
    ctx.run(ctx.on.config_changed(), first)
    assert _nginx(kube)["resources"]["limits"] == {"cpu": "1", "memory": "2147483648"}


def test_only_the_leader_patches(ctx, kube):
    ctx.run(
        ctx.on.config_changed(), state(worker_relation("w", ["all"]), config=SIZED, leader=False)
    )
    assert _resource_requests(kube) == []
