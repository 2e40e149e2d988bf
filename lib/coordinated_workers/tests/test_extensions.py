# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Extension points a product charm needs (issue 16): workload version, readiness callable,
per-unit config transform (worker), and a coherence check beyond roles (coordinator).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import ops
import pytest
from ops import testing

from coordinated_workers import WorkerApp
from coordinated_workers._cluster_data import ClusterProviderAppData
from coordinated_workers._worker import WorkerConfig, WorkerContext
from coordinated_workers.testing import coordinator_relation, worker_relation
from service_mesh.testing import FakeKubernetes
from tests.support.coordinators import (
    COORDINATOR_CONTAINERS,
    coordinator_charm,
    coordinator_state,
    kubernetes_with,
    minimal_coordinator_config,
)
from tests.support.workers import worker_charm

# --- worker ----------------------------------------------------------------------------------

WORKER_META = {
    "name": "w",
    "containers": {"workload": {}},
    "requires": {"cluster": {"interface": "cluster", "limit": 1}},
}
WORKER_CONFIG = {
    "options": {
        "role-all": {"type": "boolean", "default": True},
        "role-none": {"type": "boolean", "default": False},
    }
}
PROBES: list[str] = []


def _version(container: ops.Container) -> str | None:
    PROBES.append(container.name)
    stdout, _ = container.exec(["/bin/app", "-version"]).wait_output()
    return stdout.split()[-1] if stdout else None


def _ready(context: WorkerContext) -> str | None:
    return None if "none" in context.roles else "http://localhost:3200/ready"


def _per_unit(text: str) -> str:
    if "refuse" in text:
        raise ValueError("this unit cannot run that")
    return text + "instance_id: w-0\n"


ExtendedWorker = worker_charm(
    WorkerConfig(
        container="workload",
        layer=lambda _c: {"services": {"app": {"override": "replace", "command": "a"}}},
        readiness_url=_ready,
        config_transform=_per_unit,
        workload_version=_version,
    )
)


def _worker_run(
    event: str, config_text: str = "a: 1\n", **config
) -> tuple[testing.Context, testing.State]:
    ctx = testing.Context(ExtendedWorker, meta=WORKER_META, config=WORKER_CONFIG, app_name="w")
    workload = testing.Container(
        "workload",
        can_connect=True,
        execs={testing.Exec(["/bin/app", "-version"], stdout="app, version 2.7.1\n")},
    )
    state = testing.State(
        leader=False,
        relations=[coordinator_relation(ClusterProviderAppData(worker_config=config_text))],
        containers=[workload],
        config=config,
    )
    on = ctx.on.pebble_ready(workload) if event == "pebble_ready" else getattr(ctx.on, event)()
    return ctx, ctx.run(on, state)


def test_the_workload_version_is_read_when_the_container_starts_only():
    PROBES.clear()
    _, out = _worker_run("pebble_ready")
    assert out.workload_version == "2.7.1"
    assert PROBES == ["workload"]
    _, out = _worker_run("config_changed")
    assert PROBES == ["workload"]  # not asked again
    assert out.workload_version == ""


def test_a_readiness_callable_chooses_the_url():
    _, out = _worker_run("config_changed")
    check = out.get_container("workload").layers["worker"].checks["ready"]
    assert check.http == {"url": "http://localhost:3200/ready"}


def test_a_readiness_callable_may_add_no_check():
    roles: dict[str, Any] = {"role-all": False, "role-none": True}
    _, out = _worker_run("config_changed", **roles)
    assert not out.get_container("workload").layers["worker"].checks


def test_each_unit_runs_its_own_transform_of_the_config():
    ctx, out = _worker_run("config_changed")
    written = out.get_container("workload").get_filesystem(ctx) / "etc/worker/config.yaml"
    assert written.read_text() == "a: 1\ninstance_id: w-0\n"


def test_a_transform_that_refuses_keeps_the_last_good_state():
    _, out = _worker_run("config_changed", config_text="refuse: true\n")
    assert out.unit_status == testing.BlockedStatus("worker config: this unit cannot run that")
    assert not out.get_container("workload").layers


# --- coordinator -----------------------------------------------------------------------------

COORDINATOR_META = {
    "name": "c",
    "containers": COORDINATOR_CONTAINERS,
    "provides": {"cluster": {"interface": "cluster"}},
}


def _two_apps_at_least(workers: Sequence[WorkerApp]) -> str | None:
    return None if len(workers) >= 2 else "replication needs two worker apps"


CoherentCoordinator = coordinator_charm(minimal_coordinator_config(coherence=_two_apps_at_least))


@pytest.fixture
def kube() -> Iterator[FakeKubernetes]:
    with kubernetes_with("c", "test") as fake:
        yield fake


def _coordinator(*relations: testing.Relation) -> testing.State:
    ctx = testing.Context(CoherentCoordinator, meta=COORDINATOR_META, app_name="c")
    return ctx.run(ctx.on.config_changed(), coordinator_state(*relations, model="test"))


def test_a_coherence_check_beyond_roles_blocks(kube):
    out = _coordinator(worker_relation("a", ["work"]))
    assert out.unit_status == testing.BlockedStatus(
        "[consistency] replication needs two worker apps"
    )


def test_a_coherent_cluster_is_active(kube):
    out = _coordinator(worker_relation("a", ["work"]), worker_relation("b", ["work"]))
    assert out.unit_status == testing.ActiveStatus()
