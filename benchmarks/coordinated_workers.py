# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""How fast coordinated_workers imports and reconciles, against the README's speed targets.

Run: ``uv run python benchmarks/coordinated_workers.py`` (or ``tox -e bench``).

What is measured, and how:

1. Cold import of ``coordinated_workers``: median wall time of 10 fresh ``python -c`` processes,
   bytecode precompiled (``compileall`` on the libraries, ``PYTHONDONTWRITEBYTECODE`` removed,
   one warm-up run), next to bare ``import ops`` measured the same way in the same run.
2. One coordinator ``config-changed`` through ``ops.testing`` with 2 worker apps (3 units) and a
   service-mesh relation (the event upstream's figures in the README were taken on): median
   wall time of ``ctx.run`` over several runs, Python function calls (cProfile around
   ``ctx.run`` only) and the Kubernetes requests recorded by
   ``service_mesh.testing.FakeKubernetes`` (a real lightkube client over loopback HTTP).
   "First" runs against an empty cluster; "steady" re-runs the event on the output state.
   Upstream's figures were taken with a mocked lightkube client, so the targets are checked
   on figures with lightkube's own work (client set-up, request building, HTTP, decoding)
   excluded (``LightkubeMeter``); the figures with it are printed beside them.
3. The same at 10, 50 and 200 worker apps: time, policy count, nginx.conf size.
4. Unit scaling: a worker unit joining or leaving an existing app reloads nothing and writes
   no policy; a worker app joining does both (proof that the counters see changes).
5. One worker ``pebble-ready`` through ``ops.testing``, first and steady state; then a
   non-leader worker with TLS off and on (issue 14): Pebble requests and ``secret-get`` calls
   of the first config-changed, and function calls, Pebble requests and ``secret-get`` calls
   of a steady config-changed (no verification), update-status and pebble-ready (both compare
   the TLS files).
6. Self-observability (issue 15): config-changed with ~10 kB of alert rules and a dashboard
   in the charm dir, Prometheus, Loki and Grafana related, against the same hook without the
   files; and the share of a steady hook spent on rules, dashboards and log forwarding.
7. The coordinator ``config-changed`` of 2. with what a product coordinator also has (issue
   16): an ``s3`` relation holding the real s3-integrator's bag (the coordinator shares it
   through a Juju secret) and resource limits configured (a StatefulSet patch): first and
   steady wall time, function calls and Kubernetes requests, like for like with an upstream
   coordinator that has them.
8. The coordinator's ``show-mesh`` action on the converged cluster of 2. (its Pods seeded as a
   roll-out would label them): its Kubernetes requests (reads only), calls and wall time, and
   whether any hook measured before it loaded the action's modules (none should), and whether
   the action imports the tls-certificates library or cryptography (it should not).
9. TLS (issue 14): the steady coordinator ``config-changed`` of 2. with the certificates
   relation off and on (a certificate issued by a test CA): wall time, function calls,
   Kubernetes and Pebble requests, secret hook tools run (``secret-get``, ``secret-info-get``,
   counted on ops.testing's backend), and whether the hook imported the tls-certificates
   library or cryptography; and the hook that adopts a renewed certificate (one reload).
   Then, without the certificates relation, whether ``leader-elected`` (one of the library's
   hooks) imports either (it should not; 8. asks the same of the ``show-mesh`` action).
10. Design figures the library's code relies on: the calls a steady ``config-changed`` would
   make if the coordinator observed every event rather than the dispatched one
   (``_events.observe_reconcile_events``), and the cold import of crossplane, which nginx.conf
   rendering avoids (``_nginx_text.build``).
"""

from __future__ import annotations

import collections
import cProfile
import dataclasses
import functools
import importlib.util
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

# This file is named like the package it measures: keep its directory off the import path.
_HERE = Path(__file__).resolve().parent
ROOT = _HERE.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import ops  # noqa: E402
import yaml  # noqa: E402
from ops import testing  # noqa: E402

from coordinated_workers import ClusterProviderAppData  # noqa: E402
from coordinated_workers.testing import coordinator_relation, worker_relation  # noqa: E402
from service_mesh import testing as service_mesh_testing  # noqa: E402
from service_mesh.testing import FakeKubernetes  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from service_mesh.testing import WireRequest

IMPORT_RUNS = 10
EVENT_RUNS = 20
MODEL = "bench"
COORDINATOR = "coordinator-k8s"
WORKER = "worker-read"
MESH_LABELS = {
    "istio.io/dataplane-mode": "ambient",
    "istio.io/use-waypoint": f"{MODEL}-istio-beacon-k8s-waypoint",
    "istio.io/use-waypoint-namespace": MODEL,
}

# Upstream's figures (measured for this project on the same kind of machine; quoted in the
# README's Performance section), from which the targets (a tenth of them) are derived.
UPSTREAM_CALLS = 668_000
UPSTREAM_MS = (110, 160)

_results: list[tuple[str, str, str, bool | None]] = []


def check(what: str, measured: str, target: str, ok: bool | None) -> None:
    """Record one figure with its target; ``ok=None`` for figures printed for information."""
    _results.append((what, measured, target, ok))
    verdict = "figure, no target" if ok is None else ("PASS" if ok else "FAIL")
    print(f"  {what:46} {measured:>24}   {target:26} {verdict}")


LEGEND = (
    "columns: what is measured | our figure | the target, or in brackets upstream's figure for"
    " comparison | PASS or FAIL against the target ('figure, no target': printed for"
    " information). The script exits 1 if any line says FAIL."
)


# --- cold import ---------------------------------------------------------------------------


def precompile() -> None:
    """Write bytecode for the libraries and charms, as a packed charm's venv would hold it."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    paths = [
        *map(str, ROOT.glob("lib/*/src")),
        str(ROOT / "coordinator/src"),
        str(ROOT / "worker/src"),
    ]
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", *paths],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def cold_import_ms(statement: str, cwd: Path = ROOT, runs: int = IMPORT_RUNS) -> float:
    """Median wall time of a fresh interpreter running `statement` (bytecode already written)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    command = [sys.executable, "-c", statement]
    subprocess.run(command, env=env, cwd=cwd, check=True)  # warm-up: writes any missing .pyc
    times: list[float] = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, env=env, cwd=cwd, check=True)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


# --- scenario helpers ------------------------------------------------------------------------


def load_charm(charm_dir: str, module_name: str) -> Any:
    """Import a charm's src/charm.py under its own name, as the charms' unit tests do."""
    spec = importlib.util.spec_from_file_location(module_name, ROOT / charm_dir / "src/charm.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


class Cluster:
    """A FakeKubernetes served on loopback, with KUBECONFIG pointing at it while open.

    It also owns the host directories mounted into containers: ops.testing wipes a
    container's filesystem between runs unless it is a mount, and a steady state needs the
    files pushed by the previous hook (nginx.conf, the worker's config) to still be there.
    """

    def __init__(self, app: str, containers: tuple[str, ...] = ()) -> None:
        self.fake = FakeKubernetes()
        self.fake.add_juju_app(app, namespace=MODEL, containers=containers)
        self._stack = ExitStack()

    def __enter__(self) -> Cluster:
        self._stack.enter_context(self.fake.serve_to_environment(namespace=MODEL))
        self.files = Path(self._stack.enter_context(tempfile.TemporaryDirectory()))
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def mount(self, location: str) -> testing.Mount:
        """A host directory standing for `location`, kept for as long as the cluster."""
        source = self.files / location.strip("/").replace("/", "_")
        source.mkdir(exist_ok=True)
        return testing.Mount(location=location, source=source)

    def take_requests(self) -> list[WireRequest]:
        return self.fake.clear_requests()


def mesh_relation() -> testing.Relation:
    return service_mesh_testing.mesh_relation(MESH_LABELS)


def worker_apps(count: int) -> list[testing.Relation]:
    """`count` worker apps: the reference pair (2 read units, 1 write unit), then more readers."""
    relations = [
        worker_relation("worker-read", ["read"], units=2, model=MODEL),
        worker_relation("worker-write", ["write"], units=1, model=MODEL),
    ]
    relations += [
        worker_relation(f"worker-n{n}", ["read"], units=1, model=MODEL) for n in range(count - 2)
    ]
    return relations


def coordinator_state(cluster: Cluster, relations: list[testing.Relation]) -> testing.State:
    """A deployed coordinator's state: its API, proxy and exporter ports are open."""
    return testing.State(
        leader=True,
        opened_ports={testing.TCPPort(port) for port in (8080, 8081, 9113)},
        model=testing.Model(name=MODEL),
        containers=[
            testing.Container(
                "nginx",
                can_connect=True,
                execs={testing.Exec(["nginx", "-t"]), testing.Exec(["nginx", "-s", "reload"])},
                mounts={"config": cluster.mount("/etc/nginx")},
            ),
            testing.Container("nginx-prometheus-exporter", can_connect=True),
        ],
        relations=relations,
    )


def timed(run: Callable[..., testing.State], *args: Any) -> tuple[float, testing.State]:
    start = time.perf_counter()
    out = run(*args)
    return (time.perf_counter() - start) * 1000, out


def profiled_calls(
    run: Callable[..., testing.State], *args: Any, without_lightkube: bool = False
) -> tuple[int, testing.State]:
    """Python function calls made by ``run(*args)`` (cProfile, main thread), and its output.

    With `without_lightkube`, the profiler is paused inside lightkube (see `LightkubeMeter`):
    what is left is ops, ops.testing, the charm and the libraries, which is what a count
    taken with a mocked client (as upstream's charm tests use) covers.
    """
    profile = cProfile.Profile()
    with LightkubeMeter(profile if without_lightkube else None):
        profile.enable()
        out = run(*args)
        profile.disable()
    # typeshed does not declare Stats.total_calls (set in Stats.__init__ from the profile)
    stats = pstats.Stats(profile)
    total = cast("int", stats.total_calls)  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]
    return total, out


class LightkubeMeter:
    """Wall time spent inside lightkube, optionally with a profiler paused there.

    "Inside lightkube" is building the client (reading the kubeconfig) and closing it, and
    for each request serializing it, building the HTTP request (httpx2 URL parsing), sending
    it over loopback to the fake and decoding the answer. Upstream's figures were taken with
    a mocked client, which does none of that; subtracting it gives the like-for-like figure.
    Measurement only: the wrapped methods' arguments and results pass through untouched.
    """

    def __init__(self, profile: cProfile.Profile | None = None) -> None:
        from lightkube.core.client import Client
        from lightkube.core.generic_client import GenericSyncClient

        self.ms = 0.0
        self._profile = profile
        self._depth = 0
        self._methods: list[tuple[type, str]] = [(Client, "__init__"), (Client, "close")]
        self._methods += [
            (GenericSyncClient, name)
            for name in ("prepare_request", "build_adapter_request", "send", "handle_response")
        ]
        self._own: list[tuple[type, str, Any]] = []  # methods defined on the class itself

    def __enter__(self) -> LightkubeMeter:
        for owner, name in self._methods:
            if name in owner.__dict__:
                self._own.append((owner, name, owner.__dict__[name]))
            setattr(owner, name, self._metered(getattr(owner, name)))
        return self

    def __exit__(self, *exc: object) -> None:
        for owner, name in self._methods:
            delattr(owner, name)  # uncovers an inherited method...
        for owner, name, method in self._own:
            setattr(owner, name, method)  # ...and puts back the class's own

    def take(self) -> float:
        """The milliseconds measured since the last call, and start again from zero."""
        ms, self.ms = self.ms, 0.0
        return ms

    def _metered(self, method: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            outermost = self._depth == 0
            self._depth += 1
            if outermost and self._profile is not None:
                self._profile.disable()
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self._depth -= 1
                if outermost:
                    self.ms += (time.perf_counter() - start) * 1000
                    if self._profile is not None:
                        self._profile.enable()

        return call


class PebbleCounter:
    """Requests a charm makes to Pebble: outermost calls on ops.testing's Pebble client.

    Each such call is one API request (a round trip on Pebble's socket) in production; calls
    the client makes to itself (replan -> autostart) are not counted twice. Measurement only.
    """

    def __init__(self) -> None:
        from scenario.mocking import _MockPebbleClient  # pyright: ignore[reportPrivateUsage]

        self.count = 0
        self._depth = 0
        self._class = _MockPebbleClient
        self._names = [
            name
            for name in dir(_MockPebbleClient)
            if not name.startswith("_") and callable(getattr(_MockPebbleClient, name))
        ]
        self._own: dict[str, Any] = {}

    def __enter__(self) -> PebbleCounter:
        for name in self._names:
            if name in self._class.__dict__:
                self._own[name] = self._class.__dict__[name]
            setattr(self._class, name, self._counted(getattr(self._class, name)))
        return self

    def __exit__(self, *exc: object) -> None:
        for name in self._names:
            delattr(self._class, name)
        for name, method in self._own.items():
            setattr(self._class, name, method)

    def take(self) -> int:
        """The requests counted since the last call, and start again from zero."""
        count, self.count = self.count, 0
        return count

    def _counted(self, method: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            self.count += self._depth == 0
            self._depth += 1
            try:
                return method(*args, **kwargs)
            finally:
                self._depth -= 1

        return call


def first_and_steady_calls(
    run: Callable[[testing.State], testing.State], state: testing.State, without_lightkube: bool
) -> tuple[int, int]:
    """Function calls of `run` on `state` (a first hook), then on its output (steady)."""
    first, out = profiled_calls(run, state, without_lightkube=without_lightkube)
    steady, _ = profiled_calls(run, out, without_lightkube=without_lightkube)
    return first, steady


def check_requests(
    first: list[WireRequest], steady: list[WireRequest], upstream: str, pebble: tuple[int, int]
) -> None:
    """The Kubernetes requests of a first and a steady hook, and their Pebble requests."""
    check("Kubernetes requests, first", f"{len(first)} ({describe(first)})", upstream, None)
    steady_writes = len(writes(steady))
    steady_reads = len(steady) - steady_writes
    check("Kubernetes writes, steady", str(steady_writes), "0", steady_writes == 0)
    check("Kubernetes reads, steady", str(steady_reads), "<= 2", steady_reads <= 2)
    check("Pebble requests, first / steady", "{} / {}".format(*pebble), "", None)


def describe(requests: list[WireRequest]) -> str:
    counts = collections.Counter(r["method"] for r in requests)
    return ", ".join(f"{n} {m}" for m, n in sorted(counts.items())) or "none"


def writes(requests: list[WireRequest]) -> list[WireRequest]:
    return [r for r in requests if r["method"] != "GET"]


def nginx_reloads(ctx: testing.Context[Any]) -> int:
    return sum(
        1
        for e in ctx.exec_history.get("nginx", [])
        if list(e.command) == ["nginx", "-s", "reload"]
    )


# --- coordinator -----------------------------------------------------------------------------


def coordinator_runs(
    charm: Any, apps: int, runs: int
) -> Iterator[tuple[Cluster, testing.Context[Any], testing.State]]:
    """Yield `runs` fresh (cluster, context, state) triples for `apps` worker apps on a mesh.

    Each cluster is open (KUBECONFIG pointing at it) while the caller uses the triple.
    """
    for _ in range(runs):
        with Cluster(COORDINATOR) as cluster:
            ctx = testing.Context(charm.CoordinatorCharm, app_name=COORDINATOR)
            yield cluster, ctx, coordinator_state(cluster, [*worker_apps(apps), mesh_relation()])


def bench_coordinator(charm: Any) -> None:
    print("\ncoordinator config-changed, 2 worker apps (3 units) + service-mesh relation:")
    bare = bare_charm(charm)
    floor_ms: list[float] = []
    first_ms: list[float] = []
    steady_ms: list[float] = []
    first_lightkube: list[float] = []
    first_requests: list[WireRequest] = []
    steady_requests: list[WireRequest] = []
    # Each of these is set by a loop below that runs once (a fresh cluster for one run).
    first_pebble = steady_pebble = floor_calls = 0
    steady_imports: list[str] = []
    verify_imports: list[str] = []
    with LightkubeMeter() as meter:
        # Interleaved, so that the machine's drift hits the floor and the charm alike.
        for cluster, ctx, state in coordinator_runs(charm, 2, EVENT_RUNS):
            bare_ctx = testing.Context(bare, app_name=COORDINATOR)
            floor_ms.append(timed(bare_ctx.run, bare_ctx.on.config_changed(), state)[0])
            ms, out = timed(ctx.run, ctx.on.config_changed(), state)
            first_ms.append(ms)
            first_lightkube.append(meter.take())
            first_requests = cluster.take_requests()
            ms, out = timed(ctx.run, ctx.on.config_changed(), out)
            steady_ms.append(ms)
            steady_requests = cluster.take_requests()
    with PebbleCounter() as pebble:
        for _cluster, ctx, state in coordinator_runs(charm, 2, 1):
            out = ctx.run(ctx.on.config_changed(), state)
            first_pebble = pebble.take()
            ctx.run(ctx.on.config_changed(), out)
            steady_pebble = pebble.take()
            steady_imports = packages_imported(ctx.run, ctx.on.config_changed(), out)
            verify_imports = packages_imported(ctx.run, ctx.on.update_status(), out)
    calls: dict[tuple[str, bool], int] = {}
    for without_lightkube in (True, False):
        for _cluster, ctx, state in coordinator_runs(charm, 2, 1):
            calls["first", without_lightkube], calls["steady", without_lightkube] = (
                first_and_steady_calls(
                    functools.partial(ctx.run, ctx.on.config_changed()), state, without_lightkube
                )
            )
    for _cluster, _ctx, state in coordinator_runs(charm, 2, 1):
        bare_ctx = testing.Context(bare, app_name=COORDINATOR)
        floor_calls, _ = profiled_calls(bare_ctx.run, bare_ctx.on.config_changed(), state)

    floor = statistics.median(floor_ms)
    first_own = [m - k for m, k in zip(first_ms, first_lightkube, strict=True)]
    first = statistics.median(first_own)
    steady = statistics.median(steady_ms)
    first_added = statistics.median(m - f for m, f in zip(first_own, floor_ms, strict=True))
    steady_added = statistics.median(m - f for m, f in zip(steady_ms, floor_ms, strict=True))
    tenth_ms = UPSTREAM_MS[0] / 10
    # Upstream's 110 ms also ran ops.testing; its charm added at least 110 ms minus that.
    tenth_added_ms = (UPSTREAM_MS[0] - floor) / 10
    tenth_calls = UPSTREAM_CALLS // 10
    check(
        "ops.testing alone (a bare charm, same state)",
        f"{floor:.1f} ms, {floor_calls:,} calls",
        "(included in every figure)",
        None,
    )
    print("  like for like with upstream's figures (its lightkube client was mocked):")
    check(
        "wall time, first, lightkube excluded",
        f"{first:.1f} ms",
        f"<= {tenth_ms:.1f} ms (1/10 upstream)",
        first <= tenth_ms,
    )
    check("wall time, steady", f"{steady:.1f} ms", f"<= {tenth_ms:.1f} ms", steady <= tenth_ms)
    check(
        "  added to ops.testing by the charm, first",
        f"{first_added:.1f} ms",
        f"<= {tenth_added_ms:.1f} ms (1/10 upstream's)",
        first_added <= tenth_added_ms,
    )
    check(
        "  added to ops.testing by the charm, steady",
        f"{steady_added:.1f} ms",
        f"<= {tenth_added_ms:.1f} ms",
        steady_added <= tenth_added_ms,
    )
    check(
        "function calls, first, lightkube excluded",
        f"{calls['first', True]:,}",
        f"<= {tenth_calls:,}",
        calls["first", True] <= tenth_calls,
    )
    check(
        "function calls, steady",
        f"{calls['steady', True]:,}",
        f"<= {tenth_calls:,}",
        calls["steady", True] <= tenth_calls,
    )
    print("  with lightkube really talking HTTP to the fake (no upstream figure to compare):")
    check(
        "wall time, first",
        f"{statistics.median(first_ms):.1f} ms",
        f"(of which lightkube {statistics.median(first_lightkube):.1f} ms)",
        None,
    )
    check(
        "function calls, first / steady",
        f"{calls['first', False]:,} / {calls['steady', False]:,}",
        "",
        None,
    )
    check_requests(
        first_requests, steady_requests, "(upstream: 13 every hook)", (first_pebble, steady_pebble)
    )
    lightkube_ms = cold_import_ms("import lightkube") - cold_import_ms("pass")
    check(
        "lazy imports, steady hook",
        ", ".join(steady_imports) or "none",
        f"(of {', '.join(LAZY_PACKAGES)})",
        None,
    )
    check(
        "lazy imports, update-status (verifies)",
        ", ".join(verify_imports) or "none",
        f"(lightkube cold: {lightkube_ms:.0f} ms)",
        None,
    )


# Packages a hook may load beyond the charm's import chain: the Kubernetes client stack,
# crossplane (once used to quote nginx arguments), and cosl (rules and dashboards, rendered
# only when they change) with its diskcache. Each costs a fresh hook process its import.
LAZY_PACKAGES = ("lightkube", "httpx2", "httpcore2", "h11", "crossplane", "cosl", "diskcache")


def packages_imported(
    run: Callable[..., testing.State], *args: Any, packages: tuple[str, ...] = ()
) -> list[str]:
    """Which LAZY_PACKAGES (or `packages`) ``run(*args)`` imports, as a fresh hook would.

    The packages are taken out of ``sys.modules`` for the run (and put back after), so an
    ``import`` inside the charm loads them anew and shows up.
    """

    watched = packages or LAZY_PACKAGES

    def loaded() -> list[str]:
        return [m for m in sys.modules if m.split(".")[0] in watched]

    saved = {name: sys.modules.pop(name) for name in loaded()}
    try:
        run(*args)
        return sorted({name.split(".")[0] for name in loaded()})
    finally:
        for name in loaded():
            del sys.modules[name]
        sys.modules.update(saved)


def bare_charm(charm: Any) -> type[ops.CharmBase]:
    """A charm with the coordinator's metadata that observes nothing: ops.testing's own cost."""

    class BareCharm(ops.CharmBase):
        pass

    BareCharm.__module__ = charm.__name__  # ops.testing reads charmcraft.yaml next to it
    return BareCharm


def observing_everything(charm: Any) -> type[ops.CharmBase]:
    """The coordinator as a Juju without ``JUJU_DISPATCH_PATH`` runs it: every event observed."""

    base = cast("type[ops.CharmBase]", charm.CoordinatorCharm)

    class EveryEvent(base):
        def __init__(self, framework: ops.Framework) -> None:
            os.environ.pop("JUJU_DISPATCH_PATH", None)  # ops.testing restores it after the run
            super().__init__(framework)

    EveryEvent.__module__ = charm.__name__  # ops.testing reads charmcraft.yaml next to it
    return EveryEvent


def bench_design(charm: Any) -> None:
    print("\nwhat two design choices save (figures the library's docstrings refer to):")
    calls: dict[str, int] = {}
    for label, charm_type in (
        ("dispatched", charm.CoordinatorCharm),
        ("every", observing_everything(charm)),
    ):
        with Cluster(COORDINATOR) as cluster:
            ctx = testing.Context(charm_type, app_name=COORDINATOR)
            state = coordinator_state(cluster, [*worker_apps(2), mesh_relation()])
            steady = ctx.run(ctx.on.config_changed(), state)
            calls[label], _ = profiled_calls(ctx.run, ctx.on.config_changed(), steady)
    check(
        "calls, steady: dispatched event / every event",
        f"{calls['dispatched']:,} / {calls['every']:,}",
        f"(+{calls['every'] - calls['dispatched']:,} observing all)",
        None,
    )
    crossplane_ms = cold_import_ms("import crossplane") - cold_import_ms("pass")
    check("cold import of crossplane (not loaded)", f"{crossplane_ms:.1f} ms", "", None)


def bench_scale(charm: Any) -> None:
    print("\ncoordinator config-changed at scale (worker apps of 1 unit each, + service mesh):")
    for count in (10, 50, 200):
        runs = 5 if count < 200 else 3
        first_ms: list[float] = []
        steady_ms: list[float] = []
        policy_count = conf_size = 0
        for cluster, ctx, state in coordinator_runs(charm, count, runs):
            ms, out = timed(ctx.run, ctx.on.config_changed(), state)
            first_ms.append(ms)
            ms, out = timed(ctx.run, ctx.on.config_changed(), out)
            steady_ms.append(ms)
            policy_count = len(cluster.fake.list("authorizationpolicies", MODEL))
            fs = out.get_container("nginx").get_filesystem(ctx)
            conf_size = len((fs / "etc/nginx/nginx.conf").read_bytes())
        first = statistics.median(first_ms)
        steady = statistics.median(steady_ms)
        target = "< 1000 ms" if count == 200 else ""
        ok = first < 1000 if count == 200 else None
        check(f"{count:3} apps: first / steady", f"{first:.0f} / {steady:.0f} ms", target, ok)
        check(
            f"{count:3} apps: policies, nginx.conf", f"{policy_count}, {conf_size:,} B", "", None
        )


def bench_unit_scaling(charm: Any) -> None:
    print("\nscaling a worker app by one unit vs adding a worker app (steady state before each):")
    with Cluster(COORDINATOR) as cluster:
        ctx = testing.Context(charm.CoordinatorCharm, app_name=COORDINATOR)
        out = ctx.run(
            ctx.on.config_changed(), coordinator_state(cluster, [*worker_apps(2), mesh_relation()])
        )
        reader = next(
            r
            for r in out.relations
            if isinstance(r, testing.Relation) and r.remote_app_name == "worker-read"
        )
        three = worker_relation("worker-read", ["read"], units=3, model=MODEL)

        def with_reader_units(units: dict[int, Any]) -> tuple[testing.State, testing.Relation]:
            changed = dataclasses.replace(reader, remote_units_data=units)
            others = [r for r in out.relations if r.id != reader.id]
            return dataclasses.replace(out, relations=[*others, changed]), changed

        def changes(event: Any, state: testing.State) -> tuple[int, int]:
            ctx.exec_history.clear()
            cluster.take_requests()
            ctx.run(event, state)
            policy_writes = [
                r for r in writes(cluster.take_requests()) if "authorizationpolicies" in r["path"]
            ]
            return nginx_reloads(ctx), len(policy_writes)

        state, relation = with_reader_units(dict(three.remote_units_data))
        joined = changes(ctx.on.relation_joined(relation, remote_unit=2), state)
        state, relation = with_reader_units({0: reader.remote_units_data[0]})
        departed = changes(
            ctx.on.relation_departed(relation, remote_unit=1, departing_unit=1), state
        )
        extra = worker_relation("worker-extra", ["read"], units=1, model=MODEL)
        app_joined = changes(
            ctx.on.relation_joined(extra, remote_unit=0),
            dataclasses.replace(out, relations=[*out.relations, extra]),
        )
    for label, (reloads, policy_writes) in (
        ("worker unit joins", joined),
        ("worker unit leaves", departed),
    ):
        check(
            label,
            f"{reloads} reloads, {policy_writes} policy writes",
            "0 and 0",
            reloads == 0 and policy_writes == 0,
        )
    reloads, policy_writes = app_joined
    check(
        "worker app joins (sanity check)",
        f"{reloads} reloads, {policy_writes} policy writes",
        ">= 1 and >= 1",
        reloads >= 1 and policy_writes >= 1,
    )


# --- worker ----------------------------------------------------------------------------------


def bench_worker(charm: Any) -> None:
    print("\nworker pebble-ready, related to a coordinator that has published its config:")
    data = ClusterProviderAppData.model_validate(
        {
            "worker_config": "coordinator: coordinator-k8s.bench.svc.cluster.local\n",
            "worker_labels": {"app.kubernetes.io/part-of": COORDINATOR, **MESH_LABELS},
            "worker_ports": [8080],
        }
    )

    def state(cluster: Cluster) -> testing.State:
        workload = testing.Container(
            "workload", can_connect=True, mounts={"config": cluster.mount("/etc/worker")}
        )
        return testing.State(
            leader=True,
            model=testing.Model(name=MODEL),
            relations=[coordinator_relation(data)],
            containers=[workload],
        )

    def pebble_ready(ctx: testing.Context[Any], state: testing.State) -> testing.State:
        return ctx.run(ctx.on.pebble_ready(state.get_container("workload")), state)

    first_ms: list[float] = []
    steady_ms: list[float] = []
    first_requests: list[WireRequest] = []
    steady_requests: list[WireRequest] = []
    for _ in range(EVENT_RUNS):
        with Cluster(WORKER) as cluster:
            ctx = testing.Context(charm.WorkerCharm, app_name=WORKER)
            start = state(cluster)
            ms, out = timed(pebble_ready, ctx, start)
            first_ms.append(ms)
            first_requests = cluster.take_requests()
            ms, out = timed(pebble_ready, ctx, out)
            steady_ms.append(ms)
            steady_requests = cluster.take_requests()
    with PebbleCounter() as pebble, Cluster(WORKER) as cluster:
        ctx = testing.Context(charm.WorkerCharm, app_name=WORKER)
        out = pebble_ready(ctx, state(cluster))
        first_pebble = pebble.take()
        pebble_ready(ctx, out)
        steady_pebble = pebble.take()
        steady_imports = packages_imported(ctx.run, ctx.on.config_changed(), out)
    calls: dict[tuple[str, bool], int] = {}
    for without_lightkube in (True, False):
        with Cluster(WORKER) as cluster:
            ctx = testing.Context(charm.WorkerCharm, app_name=WORKER)
            calls["first", without_lightkube], calls["steady", without_lightkube] = (
                first_and_steady_calls(
                    functools.partial(pebble_ready, ctx), state(cluster), without_lightkube
                )
            )

    first, steady = statistics.median(first_ms), statistics.median(steady_ms)
    check(
        "wall time, first / steady (median)",
        f"{first:.1f} / {steady:.1f} ms",
        "(upstream 10-13 ms)",
        None,
    )
    check(
        "function calls, first (lightkube excluded) / steady",
        f"{calls['first', True]:,} / {calls['steady', True]:,}",
        "(upstream ~29,000)",
        None,
    )
    check("function calls, first with lightkube", f"{calls['first', False]:,}", "", None)
    check_requests(
        first_requests, steady_requests, "(upstream 7 every hook)", (first_pebble, steady_pebble)
    )
    check("lazy imports, steady config-changed", ", ".join(steady_imports) or "none", "", None)


# --- worker TLS (issue 14) --------------------------------------------------------------------

TLS_SECRET_ID = "secret:d5g1k2qr0000c0ord1na"


class SecretReads:
    """``secret-get`` hook-tool calls: calls of ops.testing's model backend. Measurement only."""

    def __init__(self) -> None:
        from scenario.mocking import _MockModelBackend  # pyright: ignore[reportPrivateUsage]

        self.count = 0
        self._class = _MockModelBackend
        self._method = _MockModelBackend.secret_get

    def __enter__(self) -> SecretReads:
        method = self._method

        def counted(backend: Any, *args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return method(backend, *args, **kwargs)

        self._class.secret_get = counted  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        self._class.secret_get = self._method

    def take(self) -> int:
        count, self.count = self.count, 0
        return count


def bench_worker_tls(charm: Any) -> None:
    print("\nworker, TLS off vs on (CA, certificate and the key's secret in the cluster bag):")
    sys.path.append(str(ROOT))
    from tests.support.pki import CA

    issued = CA("bench-ca").issue(f"{WORKER}-0.{WORKER}-endpoints.{MODEL}.svc.cluster.local")
    tls = {"ca_cert": issued.ca, "server_cert": issued.cert, "privkey_secret_id": TLS_SECRET_ID}
    secret = testing.Secret(
        tracked_content={"private-key": issued.key}, id=TLS_SECRET_ID, owner=None
    )

    def state(cluster: Cluster, with_tls: bool) -> testing.State:
        data = ClusterProviderAppData.model_validate(
            {
                "worker_config": "coordinator: coordinator-k8s.bench.svc.cluster.local\n",
                "worker_labels": {"app.kubernetes.io/part-of": COORDINATOR},
                "worker_ports": [8080],
                **(tls if with_tls else {}),
            }
        )
        workload = testing.Container(
            "workload",
            can_connect=True,
            mounts={
                "config": cluster.mount("/etc/worker"),
                "trust": cluster.mount("/usr/local/share/ca-certificates"),
            },
            execs={testing.Exec(["update-ca-certificates", "--fresh"])},
        )
        return testing.State(
            leader=False,  # no pod labels: the hook's own work, without Kubernetes
            model=testing.Model(name=MODEL),
            relations=[coordinator_relation(data)],
            containers=[workload],
            secrets=[secret],
        )

    steady_events: dict[str, Callable[[testing.Context[Any], testing.State], Any]] = {
        "config-changed": lambda ctx, _state: ctx.on.config_changed(),
        "update-status": lambda ctx, _state: ctx.on.update_status(),
        "pebble-ready": lambda ctx, out: ctx.on.pebble_ready(out.get_container("workload")),
    }
    for with_tls in (False, True):
        label = "on " if with_tls else "off"
        with Cluster(WORKER) as cluster, PebbleCounter() as pebble, SecretReads() as reads:
            ctx = testing.Context(charm.WorkerCharm, app_name=WORKER)
            out = ctx.run(ctx.on.config_changed(), state(cluster, with_tls))
            check(
                f"TLS {label}, first config-changed: Pebble requests / secret-get calls",
                f"{pebble.take()} / {reads.take()}",
                "",
                None,
            )
            for name, event in steady_events.items():
                calls, _ = profiled_calls(ctx.run, event(ctx, out), out)
                pebble.take()
                reads.take()
                ctx.run(event(ctx, out), out)
                check(
                    f"TLS {label}, steady {name}: calls / Pebble requests / secret-get calls",
                    f"{calls:,} / {pebble.take()} / {reads.take()}",
                    "",
                    None,
                )


# --- self-observability (issue 15) -----------------------------------------------------------

RULES_BYTES = 10_000


def observability_charm_dir(root: Path, with_files: bool) -> Path:
    """A charm dir holding ~10 kB of worker rules, Loki rules and one dashboard (or nothing)."""
    src = ROOT / "coordinator" / "src"
    if not with_files:
        return root
    rules = root / "src" / "prometheus_alert_rules"
    rules.mkdir(parents=True)
    template = (src / "prometheus_alert_rules" / "workers.yaml").read_text()
    copies = 0
    while sum(f.stat().st_size for f in rules.iterdir()) < RULES_BYTES:
        text = template.replace("name: WorkerRequests", f"name: WorkerRequests{copies}")
        (rules / f"workers{copies}.yaml").write_text(text)
        copies += 1
    for folder in ("loki_alert_rules", "grafana_dashboards"):
        (root / "src" / folder).mkdir()
        for file in (src / folder).iterdir():
            (root / "src" / folder / file.name).write_bytes(file.read_bytes())
    return root


def cos_relations() -> list[testing.Relation]:
    loki = "http://loki-0.loki-endpoints.cos.svc.cluster.local:3100/loki/api/v1/push"
    return [
        testing.Relation("metrics-endpoint", remote_app_name="prometheus"),
        testing.Relation(
            "logging",
            remote_app_name="loki",
            remote_units_data={0: {"endpoint": json.dumps({"url": loki})}},
        ),
        testing.Relation("grafana-dashboard", remote_app_name="grafana"),
    ]


class ShareMeter:
    """Calls and wall time spent inside the issue-15 steps of a hook (measurement only).

    The steps are `SelfObservability.reconcile` (fingerprint, and on change: read, render,
    publish) and `OwnLogForwarding.reconcile` (the nginx and exporter log targets).
    """

    def __init__(self) -> None:
        from coordinated_workers._log_forwarding import OwnLogForwarding
        from coordinated_workers.observability import SelfObservability

        self._targets = [(SelfObservability, "reconcile"), (OwnLogForwarding, "reconcile")]
        self._saved: list[tuple[type, str, Any]] = []
        self.profile: cProfile.Profile | None = None
        self.ms = 0.0

    def __enter__(self) -> ShareMeter:
        for cls, name in self._targets:
            original = cls.__dict__[name]
            self._saved.append((cls, name, original))
            setattr(cls, name, self._metered(original))
        return self

    def __exit__(self, *exc: object) -> None:
        for cls, name, original in self._saved:
            setattr(cls, name, original)

    def _metered(self, method: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            if self.profile is not None:
                self.profile.enable()
            try:
                return method(*args, **kwargs)
            finally:
                if self.profile is not None:
                    self.profile.disable()
                self.ms += (time.perf_counter() - start) * 1000

        return call


def observability_runs(
    charm: Any, root: Path, count: int
) -> Iterator[tuple[testing.Context[Any], testing.State]]:
    """Fresh coordinators on `root` (the charm dir), related to Prometheus, Loki and Grafana."""
    for cluster, _ctx, state in coordinator_runs(charm, 2, count):
        ctx = testing.Context(charm.CoordinatorCharm, app_name=COORDINATOR, charm_root=root)
        relations = [r for r in state.relations if isinstance(r, testing.Relation)]
        yield ctx, coordinator_state(cluster, [*relations, *cos_relations()])


def observability_times(
    charm: Any, roots: dict[bool, Path]
) -> tuple[dict[tuple[bool, str], float], float]:
    """Median wall times of first and steady hooks with and without the files; and the share."""
    times: dict[tuple[bool, str], list[float]] = collections.defaultdict(list)
    share_ms: list[float] = []
    for _ in range(EVENT_RUNS // 2):  # interleaved, as above
        for with_files, root in roots.items():
            for ctx, state in observability_runs(charm, root, 1):
                ms, out = timed(ctx.run, ctx.on.config_changed(), state)
                times[with_files, "first"].append(ms)
                with ShareMeter() as meter:
                    ms, out = timed(ctx.run, ctx.on.config_changed(), out)
                times[with_files, "steady"].append(ms)
                if with_files:
                    share_ms.append(meter.ms)
    return {key: statistics.median(values) for key, values in times.items()}, statistics.median(
        share_ms
    )


def observability_calls(
    charm: Any, roots: dict[bool, Path]
) -> tuple[dict[tuple[bool, str], int], int, list[str]]:
    """Function calls of first and steady hooks with and without the files; and the share."""
    calls: dict[tuple[bool, str], int] = {}
    for with_files, root in roots.items():
        for ctx, state in observability_runs(charm, root, 1):
            first, steady = first_and_steady_calls(
                functools.partial(ctx.run, ctx.on.config_changed()), state, True
            )
            calls[with_files, "first"], calls[with_files, "steady"] = first, steady
    share_calls = 0
    steady_imports: list[str] = []
    for ctx, state in observability_runs(charm, roots[True], 1):
        out = ctx.run(ctx.on.config_changed(), state)
        with ShareMeter() as meter:
            meter.profile = cProfile.Profile()
            ctx.run(ctx.on.config_changed(), out)
        stats: Any = pstats.Stats(meter.profile)
        share_calls = int(stats.total_calls)
        steady_imports = packages_imported(ctx.run, ctx.on.config_changed(), out)
    return calls, share_calls, steady_imports


def bench_self_observability(charm: Any) -> None:
    print(
        f"\ncoordinator config-changed with ~{RULES_BYTES // 1000} kB of alert rules and a"
        " dashboard, Prometheus, Loki and Grafana related (2 worker apps, 3 units, mesh):"
    )
    with tempfile.TemporaryDirectory() as tmp:
        roots: dict[bool, Path] = {}
        for with_files in (True, False):
            roots[with_files] = observability_charm_dir(Path(tmp) / str(with_files), with_files)
            roots[with_files].mkdir(exist_ok=True)
        times, share_ms = observability_times(charm, roots)
        calls, share_calls, steady_imports = observability_calls(charm, roots)
    for hook in ("first", "steady"):
        check(
            f"{hook}: with / without the files, calls",
            f"{calls[True, hook]:,} / {calls[False, hook]:,}",
            "",
            None,
        )
        check(
            f"{hook}: with / without the files, wall",
            f"{times[True, hook]:.1f} / {times[False, hook]:.1f} ms",
            "",
            None,
        )
    extra_calls = calls[True, "steady"] - calls[False, "steady"]
    check(
        "steady: extra calls for the files",
        f"{extra_calls:,} ({100 * extra_calls / calls[True, 'steady']:.2f}%)",
        "< 5% of the hook",
        extra_calls < 0.05 * calls[True, "steady"],
    )
    share = 100 * share_calls / calls[True, "steady"]
    check(
        "steady: calls in rules, dashboards, log targets",
        f"{share_calls:,} ({share:.2f}%)",
        "< 5% of the hook",
        share < 5,
    )
    check(
        "steady: lazy imports",
        ", ".join(steady_imports) or "none",
        "no cosl",
        not any(name.split(".")[0] == "cosl" for name in steady_imports),
    )
    check(
        "steady: wall in rules, dashboards, log targets",
        f"{share_ms:.2f} ms ({100 * share_ms / times[True, 'steady']:.1f}%)",
        "",
        None,
    )


S3_VECTOR = ROOT / "tests" / "vectors" / "cos" / "s3.json"
LIMITS = {"cpu_limit": "1", "memory_limit": "2Gi"}


def s3_relation() -> testing.Relation:
    bag = json.loads(S3_VECTOR.read_text())["requirer_side_after_changed"]["databags"]
    return testing.Relation(
        "s3", interface="s3", remote_app_name="s3-integrator", remote_app_data=bag["s3-integrator"]
    )


def bench_coordinator_production(charm: Any) -> None:
    print("\ncoordinator config-changed as 2., plus s3 related and resource limits configured:")
    first_ms: list[float] = []
    steady_ms: list[float] = []
    first_requests: list[WireRequest] = []
    steady_requests: list[WireRequest] = []
    calls: list[tuple[int, int]] = []
    shared = False
    for run in range(EVENT_RUNS):
        with Cluster(COORDINATOR, containers=("nginx", "nginx-prometheus-exporter")) as cluster:
            ctx = testing.Context(charm.CoordinatorCharm, app_name=COORDINATOR)
            relations = [*worker_apps(2), mesh_relation(), s3_relation()]
            state = dataclasses.replace(coordinator_state(cluster, relations), config=LIMITS)
            if run == 0:
                calls.append(
                    first_and_steady_calls(
                        functools.partial(ctx.run, ctx.on.config_changed()), state, True
                    )
                )
                cluster.take_requests()
                continue
            ms, out = timed(ctx.run, ctx.on.config_changed(), state)
            first_ms.append(ms)
            first_requests = cluster.take_requests()
            ms, out = timed(ctx.run, ctx.on.config_changed(), out)
            steady_ms.append(ms)
            steady_requests = cluster.take_requests()
            shared = any(s.label == "coordinated-workers-s3" for s in out.secrets)
    with (
        PebbleCounter() as pebble,
        Cluster(COORDINATOR, containers=("nginx", "nginx-prometheus-exporter")) as cluster,
    ):
        ctx = testing.Context(charm.CoordinatorCharm, app_name=COORDINATOR)
        relations = [*worker_apps(2), mesh_relation(), s3_relation()]
        out = ctx.run(
            ctx.on.config_changed(),
            dataclasses.replace(coordinator_state(cluster, relations), config=LIMITS),
        )
        first_pebble = pebble.take()
        ctx.run(ctx.on.config_changed(), out)
        steady_pebble = pebble.take()
    check("s3 shared with workers (a Juju secret)", str(shared), "True", shared)
    check(
        "wall time, first / steady (lightkube included)",
        f"{statistics.median(first_ms):.1f} / {statistics.median(steady_ms):.1f} ms",
        "",
        None,
    )
    first_calls, steady_calls = calls[0]
    # No target: upstream's figure (and so 2.'s target) was taken without these relations.
    check(
        "function calls, first / steady, lightkube excl.",
        f"{first_calls:,} / {steady_calls:,}",
        "(2. without them: see above)",
        None,
    )
    patches = [
        r
        for r in first_requests
        if "/statefulsets/" in r["path"] and r["content_type"] == "application/apply-patch+yaml"
    ]
    check("StatefulSet resource patches, first", str(len(patches)), "1", len(patches) == 1)
    check_requests(
        first_requests,
        steady_requests,
        "(upstream: 13 + its patch's)",
        (first_pebble, steady_pebble),
    )


SHOW_MESH_MODULES = ("coordinated_workers._show_mesh", "service_mesh.allow_matrix")


def bench_show_mesh(charm: Any) -> None:
    print("\nshow-mesh action on the coordinator of 2., converged, its pods labelled:")
    loaded = [name for name in SHOW_MESH_MODULES if name in sys.modules]
    check(
        "its modules, loaded by the hooks above", ", ".join(loaded) or "none", "none", not loaded
    )
    times: list[float] = []
    requests: list[WireRequest] = []
    calls = 0
    tls_loaded: list[str] = []
    for run in range(EVENT_RUNS):
        with Cluster(COORDINATOR) as cluster:
            ctx = testing.Context(charm.CoordinatorCharm, app_name=COORDINATOR)
            state = coordinator_state(cluster, [*worker_apps(2), mesh_relation()])
            out = ctx.run(ctx.on.config_changed(), state)
            template = cluster.fake.get("statefulsets", MODEL, COORDINATOR)
            assert template is not None
            labels = template["spec"]["template"]["metadata"]["labels"]
            for app, units in ((COORDINATOR, 1), ("worker-read", 2), ("worker-write", 1)):
                for unit in range(units):
                    pod_labels = {**labels, "app.kubernetes.io/name": app}
                    cluster.fake.add(
                        {
                            "apiVersion": "v1",
                            "kind": "Pod",
                            "metadata": {
                                "name": f"{app}-{unit}",
                                "namespace": MODEL,
                                "labels": pod_labels,
                            },
                            "spec": {"containers": [{"name": "charm"}]},
                        }
                    )
            cluster.take_requests()
            if run == 0:
                calls, _ = profiled_calls(ctx.run, ctx.on.action("show-mesh"), out)
                tls_loaded = packages_imported(
                    ctx.run, ctx.on.action("show-mesh"), out, packages=TLS_PACKAGES
                )
                cluster.take_requests()
            else:
                ms, _ = timed(ctx.run, ctx.on.action("show-mesh"), out)
                times.append(ms)
            requests = cluster.take_requests()
            assert ctx.action_results is not None and ctx.action_results["in-sync"] == "true"
    reads_only = not writes(requests) and len(requests) == 3
    check("Kubernetes requests", f"{len(requests)} ({describe(requests)})", "3 reads", reads_only)
    check("function calls (lightkube included)", f"{calls:,}", "", None)
    check("wall time (median)", f"{statistics.median(times):.1f} ms", "", None)
    # Dispatched without a hook name, with certificates not related: no TLS library.
    check("TLS packages imported", ", ".join(tls_loaded) or "none", "none", not tls_loaded)


class SecretMeter:
    """Secret hook tools a hook runs (``secret-get``, ``secret-info-get``): measurement only."""

    NAMES = ("secret_get", "secret_info_get")

    def __init__(self) -> None:
        from scenario.mocking import _MockModelBackend  # pyright: ignore[reportPrivateUsage]

        self._class = _MockModelBackend
        self._saved: dict[str, Any] = {}
        self.count = 0

    def __enter__(self) -> SecretMeter:
        for name in self.NAMES:
            original = getattr(self._class, name)
            self._saved[name] = original

            def counted(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
                self.count += 1
                return _original(*args, **kwargs)

            setattr(self._class, name, counted)
        return self

    def __exit__(self, *exc: object) -> None:
        for name, original in self._saved.items():
            setattr(self._class, name, original)

    def take(self) -> int:
        count, self.count = self.count, 0
        return count


TLS_PACKAGES = ("charmlibs", "cryptography")


def certificates_answered(
    ctx: testing.Context[Any], state: testing.State, ca: Any
) -> tuple[testing.State, testing.Relation]:
    """`state` with the test CA's answer to the coordinator's CSR in the provider's bag."""
    relation = next(r for r in state.relations if r.endpoint == "certificates")
    assert isinstance(relation, testing.Relation)
    answered = dataclasses.replace(
        relation, remote_app_data=ca.provider_bag(relation.local_unit_data)
    )
    others = [r for r in state.relations if r.id != relation.id]
    return dataclasses.replace(state, relations=[*others, answered]), answered


def bench_coordinator_tls(charm: Any) -> None:
    print("\ncoordinator config-changed as 2., steady, TLS off / on (a certificate issued):")
    sys.path.insert(0, str(ROOT))  # tests.support.pki: a real CA (cryptography)
    from tests.support.pki import CA

    figures: dict[bool, dict[str, Any]] = {}
    adopt: dict[str, int] = {}
    for tls in (False, True):
        with Cluster(COORDINATOR) as cluster:
            ctx = testing.Context(charm.CoordinatorCharm, app_name=COORDINATOR)
            relations = [*worker_apps(2), mesh_relation()]
            if tls:
                relations.append(
                    testing.Relation("certificates", remote_app_name="self-signed-certificates")
                )
            state = coordinator_state(cluster, relations)
            if tls:
                certs = next(r for r in relations if r.endpoint == "certificates")
                state = ctx.run(ctx.on.relation_created(certs), state)
                ca = CA()
                state, answered = certificates_answered(ctx, state, ca)
                state = ctx.run(ctx.on.relation_changed(answered, remote_unit=0), state)
                # A renewal: a new certificate for the same request.
                renewed_state, renewed = certificates_answered(ctx, state, ca)
                reloads = nginx_reloads(ctx)
                with SecretMeter() as secrets:
                    state = ctx.run(ctx.on.relation_changed(renewed, remote_unit=0), renewed_state)
                adopt = {"reloads": nginx_reloads(ctx) - reloads, "secrets": secrets.take()}
            out = ctx.run(ctx.on.config_changed(), state)
            cluster.take_requests()
            times = [timed(ctx.run, ctx.on.config_changed(), out)[0] for _ in range(EVENT_RUNS)]
            cluster.take_requests()
            with PebbleCounter() as pebble, SecretMeter() as secrets:
                calls, _ = profiled_calls(
                    ctx.run, ctx.on.config_changed(), out, without_lightkube=True
                )
                figures[tls] = {
                    "ms": statistics.median(times),
                    "calls": calls,
                    "kubernetes": len(cluster.take_requests()),
                    "pebble": pebble.take(),
                    "secrets": secrets.take(),
                }
            figures[tls]["imports"] = packages_imported(
                ctx.run, ctx.on.config_changed(), out, packages=TLS_PACKAGES
            )
    off, on = figures[False], figures[True]
    check("wall time, off / on", f"{off['ms']:.1f} / {on['ms']:.1f} ms", "", None)
    check("function calls, off / on", f"{off['calls']:,} / {on['calls']:,}", "", None)
    check(
        "Kubernetes requests, off / on",
        f"{off['kubernetes']} / {on['kubernetes']}",
        "0 / 0",
        off["kubernetes"] == on["kubernetes"] == 0,
    )
    check(
        "Pebble requests, off / on",
        f"{off['pebble']} / {on['pebble']}",
        "equal",
        off["pebble"] == on["pebble"],
    )
    check(
        "secret reads, off / on",
        f"{off['secrets']} / {on['secrets']}",
        "0 / 0",
        off["secrets"] == on["secrets"] == 0,
    )
    imported = ", ".join(on["imports"]) or "none"
    check("TLS packages imported, steady with TLS", imported, "none", not on["imports"])
    check(
        "nginx reloads, a renewed certificate", str(adopt["reloads"]), "1", adopt["reloads"] == 1
    )
    check(
        "secret reads, a renewed certificate",
        str(adopt["secrets"]),
        "(the library's own, and our key)",
        None,
    )
    # leader-elected and secret-* are the library's hooks too, and an action is dispatched
    # without a hook name: neither may load it while certificates is not related.
    with Cluster(COORDINATOR) as cluster:
        ctx = testing.Context(charm.CoordinatorCharm, app_name=COORDINATOR)
        out = ctx.run(
            ctx.on.config_changed(),
            coordinator_state(cluster, [*worker_apps(2), mesh_relation()]),
        )
        loaded = packages_imported(ctx.run, ctx.on.leader_elected(), out, packages=TLS_PACKAGES)
        check(
            "TLS packages imported, leader-elected, TLS off",
            ", ".join(loaded) or "none",
            "none",
            not loaded,
        )


EXCHANGE = {"interface": "grafana_datasource_exchange", "optional": True}
REMOTE_DATASOURCES = {
    "loki": '[{"type":"loki","uid":"l-1","grafana_uid":"g-1"}]',
    "mimir": '[{"type":"prometheus","uid":"p-1","grafana_uid":"g-1"}]',
}


def exchange_context(charm: Any, charm_class: type[ops.CharmBase]) -> testing.Context[Any]:
    """`charm_class` with the reference metadata plus both datasource exchange endpoints."""
    spec = yaml.safe_load((ROOT / "coordinator" / "charmcraft.yaml").read_text())
    meta = {k: v for k, v in spec.items() if k not in ("config", "actions")}
    meta["provides"] = {**meta["provides"], "send-datasource": EXCHANGE}
    meta["requires"] = {**meta["requires"], "receive-datasource": EXCHANGE}
    return testing.Context(
        charm_class,
        meta=meta,
        config=spec["config"],
        actions=spec["actions"],
        app_name=COORDINATOR,
    )


def publishing(charm: Any) -> type[ops.CharmBase]:
    """The reference coordinator, also publishing one Grafana datasource of its own."""
    from coordinated_workers import Coordinator, GrafanaDatasource

    base = cast("type[ops.CharmBase]", charm.CoordinatorCharm)

    class Publishing(base):
        def __init__(self, framework: ops.Framework) -> None:
            super().__init__(framework)
            coordinator = cast("Coordinator", getattr(self, "coordinator"))  # noqa: B009
            coordinator.config = dataclasses.replace(
                coordinator.config, datasources=lambda: [GrafanaDatasource("tempo", "t-1", "g-1")]
            )

    return Publishing


def bench_datasource_exchange(charm: Any) -> None:
    print("\ncoordinator config-changed as 2., with the datasource exchange endpoints declared:")
    exchange_relations = [
        testing.Relation(
            endpoint, remote_app_name=app, remote_app_data={"datasources": REMOTE_DATASOURCES[app]}
        )
        for endpoint, app in (("send-datasource", "loki"), ("receive-datasource", "mimir"))
    ]
    cases: list[tuple[str, testing.Context[Any], list[testing.Relation]]] = [
        ("not declared (2.)", testing.Context(charm.CoordinatorCharm, app_name=COORDINATOR), []),
        ("declared, not related", exchange_context(charm, charm.CoordinatorCharm), []),
        ("declared, both related", exchange_context(charm, publishing(charm)), exchange_relations),
    ]
    bare = {
        "not declared (2.)": testing.Context(bare_charm(charm), app_name=COORDINATOR),
        "declared, not related": exchange_context(charm, bare_charm(charm)),
        "declared, both related": exchange_context(charm, bare_charm(charm)),
    }
    steady: dict[str, int] = {}
    for name, ctx, extra in cases:
        with Cluster(COORDINATOR) as cluster:
            state = coordinator_state(cluster, [*worker_apps(2), mesh_relation(), *extra])
            loaded_before = "coordinated_workers._datasource_exchange" in sys.modules
            first, steady[name] = first_and_steady_calls(
                functools.partial(ctx.run, ctx.on.config_changed()), state, True
            )
            floor, _ = profiled_calls(bare[name].run, bare[name].on.config_changed(), state)
        own = steady[name] - floor
        check(
            f"{name}: calls first / steady",
            f"{first:,} / {steady[name]:,}",
            f"(ops.testing alone {floor:,}; the charm's own {own:,})",
            None,
        )
        if name == "declared, not related":
            loaded = (
                not loaded_before and "coordinated_workers._datasource_exchange" in sys.modules
            )
            check("  its module loaded without a relation", str(loaded), "", None)


def main() -> int:
    precompile()
    print(LEGEND)
    print(f"\ncold import, median of {IMPORT_RUNS} fresh processes (bytecode precompiled):")
    base = cold_import_ms("pass")
    ops_ms = cold_import_ms("import ops")
    cw_ms = cold_import_ms("import coordinated_workers")
    check("python -c pass", f"{base:.1f} ms", "", None)
    check("import ops", f"{ops_ms:.1f} ms", "(upstream machine: 282 ms)", None)
    check(
        "import coordinated_workers",
        f"{cw_ms:.1f} ms",
        f"({cw_ms / ops_ms:.2f}x import ops)",
        None,
    )

    coordinator = load_charm("coordinator", "coordinator_charm")
    worker = load_charm("worker", "worker_charm")
    bench_coordinator(coordinator)
    bench_coordinator_production(coordinator)
    bench_scale(coordinator)
    bench_unit_scaling(coordinator)
    bench_worker(worker)
    bench_worker_tls(worker)
    bench_self_observability(coordinator)
    bench_coordinator_tls(coordinator)
    bench_design(coordinator)
    bench_show_mesh(coordinator)
    bench_datasource_exchange(coordinator)

    failed = [what for what, _, _, ok in _results if ok is False]
    print(f"\n{len(failed)} target(s) failed" + (": " + "; ".join(failed) if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
