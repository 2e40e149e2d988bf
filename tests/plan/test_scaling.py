# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The plan grows linearly with the worker apps: counted (hooks, requests, objects), not timed.

``benchmarks/plan.py`` prints the time and memory at 50, 200 and 500 worker apps; these tests
pin down what makes them linear, so a change that brings back per-worker work over all the
workers (or per-hook leftovers) fails here on any machine, however fast.
"""

from __future__ import annotations

import gc
import pathlib

import ops
import pytest
import yaml

from service_mesh.allow_matrix import Service, Workload, allow_rules
from tools.plan import simulate, topology

SIZES = (2, 4, 8)


def _topology(tmp: pathlib.Path, workers: int) -> topology.Topology:
    data = {
        "model": "demo",
        "workers": [{"app": f"worker-w{i}", "roles": ["all"]} for i in range(workers)],
        "mesh": {"enabled": True},
        "telemetry": {"prometheus": {"app": "prometheus"}, "loki": {"app": "loki"}},
    }
    path = tmp / f"workers-{workers}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return topology.load(path)


def _frameworks() -> set[int]:
    gc.collect()
    return {id(o) for o in gc.get_objects() if isinstance(o, ops.Framework)}


@pytest.fixture(scope="module")
def frameworks_before() -> set[int]:
    """The Frameworks other tests of this process left alive (pytest-xdist mixes modules)."""
    return _frameworks()


@pytest.fixture(scope="module")
def simulations(
    tmp_path_factory: pytest.TempPathFactory, frameworks_before: set[int]
) -> dict[int, simulate.Simulation]:
    tmp = tmp_path_factory.mktemp("scaling")
    runs: dict[int, simulate.Simulation] = {}
    for size in SIZES:
        with simulate.scratch_directory() as files:
            runs[size] = simulate.simulate(_topology(tmp, size), files)
    return runs


def test_every_worker_unit_runs_three_hooks_however_many_workers(simulations):
    """Three is the least that settles a worker: ``start`` announces its roles and address,
    ``relation-changed`` applies the coordinator's answer (which names every worker, so it
    can only come after all of them announced), and the final ``update-status`` shows that
    a repeat writes nothing. The coordinator and the beacon run three each whatever n is."""
    for size, sim in simulations.items():
        assert sim.steady and sim.rounds == 2, size
        hooks = {actor.unit: actor.hooks for actor in sim.actors}
        workers = {unit: n for unit, n in hooks.items() if unit.startswith("worker-")}
        assert len(workers) == size
        assert set(workers.values()) == {3}, hooks
        assert hooks["coordinator/0"] == 3, hooks
        assert hooks["istio-beacon-k8s/0"] == 3, hooks


def test_each_added_worker_app_adds_the_same_kubernetes_requests(simulations):
    """A worker labels its pods once (5 requests) and checks them in update-status (1); the
    coordinator applies two policies for it. Nothing is listed or patched per worker pair."""
    requests = {size: sim.requests for size, sim in simulations.items()}
    small, medium, large = SIZES
    per_app = (requests[medium] - requests[small]) / (medium - small)
    assert per_app == 8, requests
    assert requests[large] - requests[medium] == per_app * (large - medium), requests


def test_no_hook_leaves_its_framework_behind(simulations, frameworks_before):
    """ops keeps every Framework reachable from ``Framework.on`` unless the plan lets go; each
    hook's framework, model and storage then stayed alive (about 45 kB a hook)."""
    assert simulations  # every simulation above has run all its hooks
    assert _frameworks() - frameworks_before == set()


class _CountingLabels(dict[str, str]):
    """Pod labels that count how often a selector looks at them."""

    lookups = 0

    def get(self, key, default=None):  # type: ignore[override]
        _CountingLabels.lookups += 1
        return super().get(key, default)


def test_the_allow_matrix_looks_at_each_workload_once_per_way_of_picking_targets():
    """2n cluster-internal policies pick their targets in two ways (the members' label, the
    coordinator's Service); each way is worked out once, not once per policy."""
    n = 200
    member = {"app.kubernetes.io/part-of": "c"}
    workloads = [
        Workload("m", f"w{i}", _CountingLabels({**member, "app.kubernetes.io/name": f"w{i}"}))
        for i in range(n)
    ]
    services = [Service("m", "c", {"app.kubernetes.io/name": "w0"})]

    def policy(name: str, spec: dict) -> dict:
        principal = f"cluster.local/ns/m/sa/{name}"
        rules = [{"from": [{"source": {"principals": [principal]}}]}]
        return {"metadata": {"name": name, "namespace": "m"}, "spec": {**spec, "rules": rules}}

    policies = [policy(f"w{i}", {"selector": {"matchLabels": member}}) for i in range(n)]
    policies += [
        policy(f"s{i}", {"targetRefs": [{"kind": "Service", "group": "", "name": "c"}]})
        for i in range(n)
    ]
    _CountingLabels.lookups = 0

    rules = allow_rules(policies, workloads, services)

    assert len(rules) == 2 * n
    assert {len(rule.targets) for rule in rules} == {n, 1}
    assert _CountingLabels.lookups <= 2 * n, _CountingLabels.lookups
