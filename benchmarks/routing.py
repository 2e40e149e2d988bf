# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""nginx.conf for Tempo, Loki and Mimir's routing tables: build time, size, reloads on scaling.

Run: ``uv run python benchmarks/routing.py`` (or ``tox -e bench``).

What is measured, and how:

1. Config build time and size for each product profile (``tests/support/products.py``, the
   routing tables the live nginx tests prove) at 3, 50 and 200 worker apps: the median wall time
   of building `NginxInputs` and rendering it (`render`, which includes the final check of the
   tree) over repeated runs, and the size of the text. Worker apps share the product's roles
   round-robin (at 3 apps each serves several roles; at 200 each role has several apps).
   Target: under 50 ms at 200 worker apps.
2. nginx reloads per unit-scale event: a coordinator on the library declaring the product's
   servers runs ``config-changed`` through ``ops.testing`` (Kubernetes faked by
   ``service_mesh.testing.FakeKubernetes``), then again with every worker app grown from 1 to 3
   units, then again with one more worker app. Target: 0 reloads for the unit-scale event;
   the worker-app event must reload once (proof that the counter sees a change).
"""

from __future__ import annotations

import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# benchmarks/ holds a script named like the package: keep it off the import path, and put the
# repository root on it for tests.support.products (the product tables).
_HERE = Path(__file__).resolve().parent
ROOT = _HERE.parent
sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != _HERE)]

import ops  # noqa: E402
from ops import testing  # noqa: E402

from coordinated_workers import ClusterRolesConfig  # noqa: E402
from coordinated_workers._coordinator import (  # noqa: E402
    Coordinator,
    CoordinatorConfig,
    CoordinatorEndpoints,
)
from coordinated_workers._nginx import NginxInputs, render  # noqa: E402
from coordinated_workers._telemetry_proxy import WorkerTelemetryProxyConfig  # noqa: E402
from coordinated_workers.testing import worker_relation  # noqa: E402
from service_mesh.testing import FakeKubernetes  # noqa: E402
from tests.support.products import PRODUCTS, Product  # noqa: E402

SIZES = (3, 50, 200)
TARGET_MS = 50.0
MODEL = "bench"


def apps_by_role(product: Product, apps: int) -> dict[str, list[str]]:
    """``apps`` worker apps sharing the product's roles round-robin; every role served."""
    by_role: dict[str, list[str]] = {role: [] for role in product.roles}
    roles = product.roles
    for i in range(max(apps, len(roles))):
        by_role[roles[i % len(roles)]].append(f"{product.name}-w{i % apps:03d}")
    return {role: sorted(set(names)) for role, names in by_role.items()}


def inputs(product: Product, apps: int) -> NginxInputs:
    by_role = apps_by_role(product, apps)
    return NginxInputs(
        model=MODEL,
        api_port=product.api_port,
        routes=(),
        servers=product.servers,
        workers_by_role=by_role,
        resolver="10.152.183.10",
        proxy_port=product.proxy_port,
        worker_apps=sorted({app for names in by_role.values() for app in names}),
        worker_metrics_port=next(iter(product.worker_ports.values()))[0],
    )


def build_time(product: Product, apps: int) -> tuple[float, int]:
    """Median ms of building the inputs and rendering them, and the size in bytes."""
    text = render(inputs(product, apps)).text
    runs = max(20, 2000 // apps)
    times: list[float] = []
    for _ in range(runs):
        start = time.perf_counter()
        render(inputs(product, apps))
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), len(text.encode())


def charm_for(product: Product) -> type[ops.CharmBase]:
    class ProductCoordinator(ops.CharmBase):
        def __init__(self, framework: ops.Framework):
            super().__init__(framework)
            roles = set(product.roles)
            self.coordinator = Coordinator(
                self,
                CoordinatorConfig(
                    roles=ClusterRolesConfig(roles=roles, meta_roles={}, minimal_deployment=roles),
                    workload_config=lambda _context: "bench: true\n",
                    routes=(),
                    servers=product.servers,
                    api_port=product.api_port,
                    worker_metrics_port=next(iter(product.worker_ports.values()))[0],
                    telemetry_proxy=WorkerTelemetryProxyConfig(
                        http_port=product.proxy_port, https_port=product.proxy_port
                    ),
                    endpoints=CoordinatorEndpoints(
                        logging=None,
                        charm_tracing=None,
                        workload_tracing=None,
                        remote_write=None,
                        service_mesh=None,
                        require_cmr_mesh=None,
                        provide_cmr_mesh=None,
                    ),
                ),
            )

    return ProductCoordinator


META: dict[str, Any] = {
    "containers": {"nginx": {}, "nginx-prometheus-exporter": {}},
    "provides": {
        "cluster": {"interface": "cluster"},
        "metrics-endpoint": {"interface": "prometheus_scrape"},
    },
}


def reloads(product: Product) -> tuple[int, int]:
    """nginx reloads caused by (every worker app going 1 -> 3 units, one worker app joining)."""
    app = f"{product.name}-coordinator"
    fake = FakeKubernetes()
    fake.add_juju_app(app, namespace=MODEL)

    def workers(units: int) -> list[testing.Relation]:
        return [
            worker_relation(product.app(role), [role], units, MODEL, relation_id=10 + i)
            for i, role in enumerate(product.roles)
        ]

    with tempfile.TemporaryDirectory() as etc, fake.serve_to_environment(namespace=MODEL):
        ctx = testing.Context(charm_for(product), meta={"name": app, **META}, app_name=app)
        nginx = testing.Container(
            "nginx",
            can_connect=True,
            mounts={"etc": testing.Mount(location="/etc/nginx", source=etc)},
            execs={testing.Exec(["nginx", "-t"]), testing.Exec(["nginx", "-s", "reload"])},
        )
        exporter = testing.Container("nginx-prometheus-exporter", can_connect=True)
        state = testing.State(
            leader=True,
            model=testing.Model(name=MODEL),
            containers=[nginx, exporter],
            relations=workers(1),
        )

        def count() -> int:
            history = ctx.exec_history.get("nginx", [])
            return sum(e.command[1:] == ["-s", "reload"] for e in history)

        state = ctx.run(ctx.on.config_changed(), state)
        before = count()
        state = ctx.run(ctx.on.config_changed(), dataclasses.replace(state, relations=workers(3)))
        scaled = count() - before
        extra = worker_relation(f"{product.name}-extra", [product.roles[0]], 1, MODEL)
        grown = dataclasses.replace(state, relations=[*workers(3), extra])
        ctx.run(ctx.on.config_changed(), grown)
        return scaled, count() - before - scaled


def main() -> int:
    failed = 0
    print("nginx.conf of each product's routing table (build NginxInputs + render + final check):")
    print(f"  {'product':<7}  {'worker apps':>11}  {'build':>8}  {'size':>8}")
    for name, factory in PRODUCTS.items():
        product = factory()
        for size in SIZES:
            ms, size_bytes = build_time(product, size)
            verdict = "figure, no target"
            if size == SIZES[-1]:
                ok = ms < TARGET_MS
                failed += not ok
                verdict = f"target < {TARGET_MS:.0f} ms  {'PASS' if ok else 'FAIL'}"
            print(f"  {name:<7}  {size:>11}  {ms:6.2f}ms  {size_bytes / 1024:6.1f}kB   {verdict}")
    print("\nnginx reloads per event (coordinator on ops.testing, one app per role):")
    for name, factory in PRODUCTS.items():
        scaled, joined = reloads(factory())
        ok = scaled == 0 and joined == 1
        failed += not ok
        print(
            f"  {name:<7}  unit-scale event (1 -> 3 units per app): {scaled}   "
            f"worker app joining: {joined}   target 0 and 1  {'PASS' if ok else 'FAIL'}"
        )
    print(f"\n{failed} target(s) failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
