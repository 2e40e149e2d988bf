# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The events both libraries subscribe to in a hook of each reference charm.

Run: ``uv run python benchmarks/observers.py`` (or ``tox -e bench``).

A hook is a fresh process that handles the one event Juju dispatched, so every
``framework.observe`` call for another event is set-up paid for nothing (observing the ~85
events a coordinator reacts to cost about 6,000 function calls a hook). Both libraries observe
only the dispatched event (``JUJU_DISPATCH_PATH``), and nothing for an event they do not act
on. This script runs each charm through ops.testing (Kubernetes faked on loopback), records
every ``framework.observe`` call made during the hook by wrapping it for the run, and prints,
per hook, the events the libraries' own handlers subscribed to; the target is that they are
the dispatched event or none. The charm's own observers (collect-status, its actions) are
counted apart, for information.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ops
from ops import testing

# benchmarks/ holds scripts named like the packages: keep it off the import path, the root on.
_HERE = Path(__file__).resolve().parent
ROOT = _HERE.parent
sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() not in (_HERE, ROOT))]

from coordinated_workers import ClusterProviderAppData  # noqa: E402
from coordinated_workers.testing import coordinator_relation, worker_relation  # noqa: E402
from service_mesh.testing import FakeKubernetes  # noqa: E402
from tools.plan.charms import coordinator_charm, worker_charm  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Callable, Generator

MODEL = "bench"
COORDINATOR = "coordinator-k8s"
WORKER = "worker-read"
LIBRARIES = ("coordinated_workers", "service_mesh")

_failed: list[str] = []


@contextlib.contextmanager
def recorded_observers() -> Generator[list[tuple[str, str]], None, None]:
    """(module of the handler's owner, event kind) of every framework.observe call inside."""
    calls: list[tuple[str, str]] = []
    observe = ops.Framework.observe

    def recording(framework: ops.Framework, bound_event: Any, observer: Any) -> None:
        owner = getattr(observer, "__self__", None)
        calls.append((type(owner).__module__, str(bound_event.event_kind)))
        observe(framework, bound_event, observer)

    ops.Framework.observe = recording  # pyright: ignore[reportAttributeAccessIssue]
    try:
        yield calls
    finally:
        ops.Framework.observe = observe


def check(what: str, measured: str, target: str, ok: bool | None) -> None:
    """One printed figure; ``ok=None`` for figures printed for information."""
    verdict = "figure, no target" if ok is None else ("PASS" if ok else "FAIL")
    if ok is False:
        _failed.append(what)
    print(f"  {what:44} {measured:>40}   {target:20} {verdict}")


def measure(
    label: str, ctx: testing.Context[Any], event: Any, state: testing.State, dispatched: str
) -> None:
    """Run one hook and print the events the libraries and the charm observed in it."""
    with recorded_observers() as calls:
        ctx.run(event, state)
    library = [kind for module, kind in calls if module.startswith(LIBRARIES)]
    charm = [kind for module, kind in calls if not module.startswith(LIBRARIES)]
    check(
        f"{label}: libraries observe",
        f"{len(library)}: {', '.join(library)}" if library else "0",
        f"<= {dispatched}",
        set(library) <= {dispatched},
    )
    check(f"{label}: the charm observes", f"{len(charm)} event(s)", "", None)


def published() -> ClusterProviderAppData:
    return ClusterProviderAppData.model_validate(
        {
            "worker_config": "coordinator: c\n",
            "worker_labels": {"app.kubernetes.io/part-of": COORDINATOR},
            "worker_ports": [8080],
        }
    )


def coordinator_hooks(kube: FakeKubernetes) -> None:
    print(f"coordinator ({COORDINATOR}), one worker app:")
    kube.add_juju_app(COORDINATOR, namespace=MODEL)
    ctx = testing.Context(coordinator_charm(), app_name=COORDINATOR)
    cluster = worker_relation("worker-read", ["read"], units=1, model=MODEL)
    nginx = testing.Container(
        "nginx",
        can_connect=True,
        execs={testing.Exec(["nginx", "-t"]), testing.Exec(["nginx", "-s", "reload"])},
    )
    exporter = testing.Container("nginx-prometheus-exporter", can_connect=True)
    state = testing.State(
        leader=True,
        model=testing.Model(name=MODEL),
        relations=[cluster],
        containers=[nginx, exporter],
    )
    hooks: list[tuple[str, Callable[[], Any], str]] = [
        ("config-changed", ctx.on.config_changed, "config_changed"),
        ("update-status", ctx.on.update_status, "update_status"),
        ("leader-elected", ctx.on.leader_elected, "leader_elected"),
        (
            "cluster-relation-changed",
            lambda: ctx.on.relation_changed(cluster, remote_unit=0),
            "cluster_relation_changed",
        ),
        ("nginx-pebble-ready", lambda: ctx.on.pebble_ready(nginx), "nginx_pebble_ready"),
    ]
    for label, event, dispatched in hooks:
        measure(label, ctx, event(), state, dispatched)


def worker_hooks(kube: FakeKubernetes) -> None:
    print(f"worker ({WORKER}), related to the coordinator:")
    kube.add_juju_app(WORKER, namespace=MODEL)
    ctx = testing.Context(worker_charm(), app_name=WORKER)
    cluster = coordinator_relation(published())
    workload = testing.Container("workload", can_connect=True)
    state = testing.State(
        leader=True, model=testing.Model(name=MODEL), relations=[cluster], containers=[workload]
    )
    hooks: list[tuple[str, Callable[[], Any], str]] = [
        ("config-changed", ctx.on.config_changed, "config_changed"),
        ("update-status", ctx.on.update_status, "update_status"),
        (
            "cluster-relation-changed",
            lambda: ctx.on.relation_changed(cluster, remote_unit=0),
            "cluster_relation_changed",
        ),
        ("workload-pebble-ready", lambda: ctx.on.pebble_ready(workload), "workload_pebble_ready"),
    ]
    for label, event, dispatched in hooks:
        measure(label, ctx, event(), state, dispatched)


def main() -> int:
    print("events observed in one hook (framework.observe calls made while it runs):")
    kube = FakeKubernetes()
    with kube.serve_to_environment(namespace=MODEL):
        coordinator_hooks(kube)
        worker_hooks(kube)
    print(
        "columns: hook and what is counted | the events observed | the target ('<= X': X or"
        " nothing) | PASS or FAIL ('figure, no target': printed for information)."
        " The script exits 1 if any line says FAIL."
    )
    failed = bool(_failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
