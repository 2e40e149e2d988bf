# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""How fast service_mesh imports, and how many Kubernetes requests it makes.

Run: ``uv run python benchmarks/service_mesh.py``

1. Cold import: median wall time of 10 fresh ``python -c "import X"`` processes, with bytecode
   written beforehand (``PYTHONDONTWRITEBYTECODE`` removed, one warm-up run), for
   ``service_mesh`` and, for comparison, bare ``ops`` and an empty interpreter.
2. Requests of the cluster-internal example of the vectors (coordinator ``tempo``, workers
   ``tempo-querier`` and ``tempo-ingester``, model ``cos``, upstream's PRM labels), sent by a real
   lightkube client to ``service_mesh.testing.FakeKubernetes``: first reconcile, steady state,
   and one worker removed; plus label reconciliation on join and in steady state.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

# This file is named like the package it measures: keep its directory off the import path.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

from coordinated_workers import _mesh as mesh  # noqa: E402
from service_mesh import (  # noqa: E402
    MeshPolicy,
    MeshType,
    PolicyResourceManager,
    reconcile_charm_labels,
)
from service_mesh.testing import FakeKubernetes  # noqa: E402

RUNS = 10
COORDINATOR, WORKERS, MODEL = "tempo", ("tempo-querier", "tempo-ingester"), "cos"
PRM_LABELS = {
    "app.kubernetes.io/instance": "tempo-cos",
    "kubernetes-resource-handler-scope": "tempo-cos-cluster-internal",
}


def cold_import_ms(statement: str) -> float:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    command = [sys.executable, "-c", statement]
    subprocess.run(command, env=env, cwd=_HERE.parent, check=True)  # warm-up: writes .pyc files
    times: list[float] = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run(command, env=env, cwd=_HERE.parent, check=True)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def cluster_internal_policies(workers: tuple[str, ...]) -> list[MeshPolicy]:
    """The coordinated-workers cluster-internal set, as the coordinator builds it."""
    return mesh.cluster_internal_policies(COORDINATOR, MODEL, workers)


def report(title: str, fake: FakeKubernetes) -> None:
    requests = fake.clear_requests()
    counts = collections.Counter(r["method"] for r in requests)
    summary = ", ".join(f"{n} {method}" for method, n in sorted(counts.items())) or "none"
    print(f"\n{title}: {len(requests)} requests ({summary})")
    for r in requests:
        query = "&".join(f"{k}={v}" for k, v in r["query"].items())
        print(f"  {r['method']:6} {r['path']}{'?' + query if query else ''}")


@dataclasses.dataclass(frozen=True)
class _Named:
    name: str


@dataclasses.dataclass(frozen=True)
class _Charm:
    """All PolicyResourceManager reads from a charm: its app's and model's names."""

    app: _Named
    model: _Named


def main() -> None:
    print("figures only, no targets: the speed targets are checked by coordinated_workers.py")
    print(f"cold import, median of {RUNS} fresh processes (bytecode precompiled):")
    for label, statement in (
        ("python -c pass", "pass"),
        ("import ops", "import ops"),
        ("import service_mesh", "import service_mesh"),
    ):
        print(f"  {label:22} {cold_import_ms(statement):7.1f} ms")

    fake = FakeKubernetes()
    client = fake.client(namespace=MODEL, field_manager=f"{COORDINATOR}-{MODEL}")
    charm = _Charm(app=_Named(COORDINATOR), model=_Named(MODEL))
    prm = PolicyResourceManager(charm, client, PRM_LABELS)

    prm.reconcile(cluster_internal_policies(WORKERS), MeshType.istio)
    report("PolicyResourceManager, first reconcile", fake)
    prm.reconcile(cluster_internal_policies(WORKERS), MeshType.istio)
    report("PolicyResourceManager, steady state", fake)
    prm.reconcile(cluster_internal_policies(WORKERS[:1]), MeshType.istio)
    report("PolicyResourceManager, tempo-ingester removed", fake)

    fake.add_juju_app(COORDINATOR, MODEL)
    labels = {"app.kubernetes.io/part-of": COORDINATOR}
    reconcile_charm_labels(client, COORDINATOR, MODEL, f"{COORDINATOR}-pod-labels", labels)
    report("reconcile_charm_labels, first call", fake)
    reconcile_charm_labels(client, COORDINATOR, MODEL, f"{COORDINATOR}-pod-labels", labels)
    report("reconcile_charm_labels, steady state", fake)
    client.close()


if __name__ == "__main__":
    main()
