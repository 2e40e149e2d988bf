# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Run a topology's charms through ops.testing until the deployment stops changing.

Every coordinator unit, every worker unit and the beacon stand-in is an :class:`Actor`: an
ops.testing Context plus the State it left behind. All of them talk to one
:class:`~service_mesh.testing.FakeKubernetes` through the ``lightkube.Client()`` the charms
build themselves from ``KUBECONFIG``; the fake answers in process (no loopback socket: a
500-app plan builds a thousand clients and sends four thousand requests). A round runs each actor
whose relation data changed since it last ran, with the data the other actors last wrote; the
simulation has converged when a round runs nobody. A last ``update-status`` round on every unit
then checks that the result really is steady (no databag and no Kubernetes write).

A unit's first hook is ``start``, with its relations already in place. Juju would run
install, leader-elected, config-changed and a relation-created per relation before it, but
these charms reconcile the whole desired state in every hook, so each of those would redo the
same work on the same inputs (the final round shows that such a repeat writes nothing). Running
them all costs a coordinator with n workers n full reconciles, each over n workers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import os
import pathlib
import tempfile
from typing import TYPE_CHECKING, Any

import ops
from ops import testing

from service_mesh.testing import FakeKubernetes

from . import certificates, charms, wiring
from .speedups import quicker_machinery
from .topology import CERTIFICATES_APP, model_uuid

if TYPE_CHECKING:
    from collections.abc import Callable, Generator

    from .topology import Topology
    from .wiring import Bag, Link

MAX_ROUNDS = 10


class NoFixedPointError(RuntimeError):
    """The charms kept changing each other's data; the plan would not be a steady state."""


@dataclasses.dataclass
class Actor:
    """One simulated unit: its Context, its relations and the State it is in."""

    app: str
    unit_id: int
    ctx: testing.Context[Any]
    state: testing.State
    links: dict[int, Link]
    ran: bool = False
    inputs: object = None
    hooks: int = 0
    """How many hooks the unit ran (a unit runs a few, however big the deployment)."""

    @property
    def unit(self) -> str:
        """The unit's name, e.g. ``coordinator/0``."""
        return f"{self.app}/{self.unit_id}"


@dataclasses.dataclass
class Bus:
    """What every simulated app and unit last wrote, by (writer, link name)."""

    app: dict[tuple[str, str], Bag] = dataclasses.field(
        default_factory=dict[tuple[str, str], "Bag"]
    )
    unit: dict[tuple[str, str], Bag] = dataclasses.field(
        default_factory=dict[tuple[str, str], "Bag"]
    )
    secrets: dict[str, tuple[str, testing.Secret]] = dataclasses.field(
        default_factory=dict[str, tuple[str, "testing.Secret"]]
    )
    """Application secrets by id, with the app that owns them (e.g. the TLS key for workers)."""


@dataclasses.dataclass
class Simulation:
    """A converged deployment: the actors' final states and the fake cluster."""

    topology: Topology
    kube: FakeKubernetes
    actors: list[Actor]
    bus: Bus
    rounds: int
    steady: bool
    """Whether a final update-status round on every unit wrote nothing."""
    requests: int = 0
    """How many Kubernetes requests the charms sent, final round included."""

    def actor(self, unit: str) -> Actor:
        """The actor running ``unit``."""
        return next(actor for actor in self.actors if actor.unit == unit)


def simulate(topology: Topology, files: pathlib.Path) -> Simulation:
    """Deploy ``topology`` on a fresh fake cluster and run its charms to a fixed point.

    Containers keep their files (nginx.conf, the worker config) under ``files``, which must
    outlive the returned simulation's use.

    Raises:
        NoFixedPointError: still changing after :data:`MAX_ROUNDS` rounds.
    """
    kube = FakeKubernetes()
    for model, app in _juju_apps(topology):
        kube.add_juju_app(app, namespace=model)
    actors = _actors(topology, files)
    bus = Bus()
    # The beacon runs first in each round: the mesh labels it publishes then reach the
    # coordinator, and through it the workers, in the round they start, so each worker labels
    # its pods once instead of twice.
    beacon = topology.mesh.beacon if topology.mesh.enabled else None
    order = sorted(actors, key=lambda actor: actor.app != beacon)
    serving = kube.serve_to_environment(namespace=topology.model, in_process=True)
    with serving, fewer_collections(), quicker_machinery():
        rounds, requests = _converge(order, bus, kube)
        before = (dict(bus.app), dict(bus.unit))
        for actor in actors:
            _run(actor, bus, final=True)
        final = kube.clear_requests()
        writes = [r for r in final if r["method"] != "GET"]
        steady = not writes and before == (bus.app, bus.unit)
    return Simulation(topology, kube, actors, bus, rounds, steady, requests + len(final))


@contextlib.contextmanager
def fewer_collections() -> Generator[None, None, None]:
    """Run the cyclic garbage collector less often while the hooks run and their result is read.

    Every hook leaves thousands of objects, and the units' states stay alive, so with the
    default threshold (700) the collector runs after every few hooks and rescans an ever larger
    heap: about a tenth of a 500-app plan's time. Every 50,000 allocations it costs a quarter of
    that, and the peak memory does not change measurably (the garbage is collected all the same).
    Reading the footprint afterwards allocates enough for the default threshold to rescan the
    whole heap of unit states too (most of a second at 500 apps), so it runs under it as well.
    """
    saved = gc.get_threshold()
    gc.set_threshold(50_000, *saved[1:])
    try:
        yield
    finally:
        gc.set_threshold(*saved)


@contextlib.contextmanager
def scratch_directory() -> Generator[pathlib.Path, None, None]:
    """A temporary directory for the units' files, in memory where the system has one.

    ops.testing makes and removes directories on every hook (the charm's metadata, each
    container's filesystem); on a disk mounted with ``discard`` each removal costs about a
    millisecond, more than a hook's own work. While the directory exists, :mod:`tempfile`
    puts its temporary files there too.
    """
    shm = pathlib.Path("/dev/shm")  # noqa: S108 - a private directory is made inside
    base = str(shm) if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK) else None
    saved = tempfile.tempdir
    with tempfile.TemporaryDirectory(prefix="tools-plan-", dir=base) as files:
        tempfile.tempdir = files
        try:
            yield pathlib.Path(files)
        finally:
            tempfile.tempdir = saved


def _converge(actors: list[Actor], bus: Bus, kube: FakeKubernetes) -> tuple[int, int]:
    """Run rounds until one runs nobody; (rounds that ran someone, requests they sent)."""
    requests = 0
    for round_number in range(1, MAX_ROUNDS + 1):
        ran = [actor for actor in actors if _run(actor, bus)]
        requests += len(kube.clear_requests())  # only the final round's are looked at
        if not ran:
            return round_number - 1, requests
    raise NoFixedPointError(
        f"the charms still changed each other's data after {MAX_ROUNDS} rounds"
    )


def _juju_apps(topology: Topology) -> list[tuple[str, str]]:
    apps = [(topology.model, topology.coordinator.app)]
    apps += [(topology.model, worker.app) for worker in topology.workers]
    if topology.mesh.enabled:
        apps.append((topology.beacon_model, topology.mesh.beacon))
    apps += [(topology.backend_model(b), b.app) for b in topology.backends().values()]
    apps += [(topology.model, client.app) for client in topology.api_clients]
    apps += [(source.model, source.app) for source in topology.cross_model_sources]
    apps += [(topology.model, CERTIFICATES_APP)] if topology.tls else []
    return apps


def _actors(topology: Topology, files: pathlib.Path) -> list[Actor]:
    model = testing.Model(name=topology.model, uuid=model_uuid(topology.model))
    coordinator = topology.coordinator
    actors: list[Actor] = []
    ctx_class = charms.coordinator_charm()
    charm_root = charms.coordinator_charm_root(files / "coordinator-charm")
    for unit_id in range(coordinator.units):
        peers = testing.PeerRelation(
            "peers", id=1, peers_data={n: {} for n in range(coordinator.units) if n != unit_id}
        )
        actors.append(
            _actor(
                testing.Context(
                    ctx_class,
                    meta=charms.charm_meta("coordinator"),
                    app_name=coordinator.app,
                    unit_id=unit_id,
                    charm_root=charm_root,  # its rules and dashboards, as packed
                ),
                coordinator.app,
                unit_id,
                wiring.coordinator_links(topology),
                testing.State(
                    leader=unit_id == 0,
                    model=model,
                    containers=_coordinator_containers(files / f"{coordinator.app}-{unit_id}"),
                    relations=[peers],
                    planned_units=coordinator.units,
                ),
            )
        )
    actors += [
        _actor(
            testing.Context(
                charms.worker_charm(),
                meta=charms.charm_meta("worker"),
                app_name=worker.app,
                unit_id=unit_id,
            ),
            worker.app,
            unit_id,
            wiring.worker_links(topology, worker.app),
            testing.State(
                leader=unit_id == 0,
                model=model,
                config=worker.config,
                # /etc/worker keeps its files between hooks, as a real container does, so a
                # hook whose worker config did not change neither pushes nor restarts.
                containers=[
                    _container(
                        "workload",
                        files / f"{worker.app}-{unit_id}",
                        "/etc/worker",
                        execs={testing.Exec(["update-ca-certificates"])},  # with TLS
                    )
                ],
                planned_units=worker.units,
            ),
        )
        for worker in topology.workers
        for unit_id in range(worker.units)
    ]
    if topology.mesh.enabled:
        beacon_model = topology.beacon_model
        ctx = testing.Context(
            charms.BeaconStandIn, meta=charms.BEACON_META, app_name=topology.mesh.beacon
        )
        state = testing.State(
            leader=True, model=testing.Model(name=beacon_model, uuid=model_uuid(beacon_model))
        )
        link = wiring.beacon_link(topology, for_beacon=True)
        actors.append(_actor(ctx, topology.mesh.beacon, 0, [link], state))
    if topology.tls:
        ctx = testing.Context(
            certificates.CertificatesStandIn, meta=certificates.META, app_name=CERTIFICATES_APP
        )
        link = wiring.certificates_link(topology, for_provider=True)
        actors.append(_actor(ctx, CERTIFICATES_APP, 0, [link], testing.State(leader=True)))
    return actors


def _actor(
    ctx: testing.Context[Any], app: str, unit_id: int, links: list[Link], state: testing.State
) -> Actor:
    """Give each link a relation id (stable: 2, 3, ... in link order) and add it to ``state``."""
    by_id = dict(enumerate(links, start=2))
    relations = [
        testing.Relation(
            link.endpoint,
            interface=link.interface,
            id=relation_id,
            remote_app_name=link.remote_app,
            limit=link.limit,
            remote_model_uuid=link.remote_model_uuid,
        )
        for relation_id, link in by_id.items()
    ]
    state = dataclasses.replace(state, relations=[*state.relations, *relations])
    return Actor(app, unit_id, ctx, state, by_id)


def _container(name: str, files: pathlib.Path, *mounted: str, **kwargs: Any) -> testing.Container:
    """A reachable container whose ``mounted`` directories keep their files between hooks.

    ops.testing wipes a container's unmounted files before every run; a real container keeps
    them, and the charms compare against what they pushed last time.
    """
    mounts: dict[str, testing.Mount] = {}
    for location in mounted:
        source = files / name / location.strip("/")
        source.mkdir(parents=True, exist_ok=True)
        mounts[location] = testing.Mount(location=location, source=source)
    return testing.Container(name, can_connect=True, mounts=mounts, **kwargs)


def _coordinator_containers(files: pathlib.Path) -> list[testing.Container]:
    check = testing.Exec(["nginx", "-t"])
    reload = testing.Exec(["nginx", "-s", "reload"])
    return [
        _container("nginx", files, "/etc/nginx", execs={check, reload}),
        _container("nginx-prometheus-exporter", files),
    ]


def _remote_data(link: Link, bus: Bus) -> tuple[Bag, dict[int, Bag]]:
    if link.writer is None:
        return dict(link.app_data), {
            n: dict(link.units_data.get(n, {})) for n in link.remote_units
        }
    app = dict(bus.app.get((link.writer, link.name), {}))
    units = {
        n: dict(bus.unit.get((f"{link.writer}/{n}", link.name), {})) for n in link.remote_units
    }
    return app, units


def _run(actor: Actor, bus: Bus, *, final: bool = False) -> bool:
    """Run ``actor`` if its inputs changed (or for the final check); harvest what it wrote."""
    relations: list[Any] = []
    changed: list[testing.Relation] = []
    inputs: list[object] = []
    for relation in actor.state.relations:
        link = actor.links.get(relation.id)
        if link is None or not isinstance(relation, testing.Relation):
            relations.append(relation)
            continue
        app, units = _remote_data(link, bus)
        if (app, units) != (relation.remote_app_data, relation.remote_units_data):
            relation = dataclasses.replace(relation, remote_app_data=app, remote_units_data=units)
            changed.append(relation)
        relations.append(relation)
        inputs.append((link.name, app, units))
    secrets = _secrets_seen_by(actor, bus)
    inputs.append(sorted((secret.id, secret.tracked_content) for secret in secrets))
    if actor.ran and not final and inputs == actor.inputs:
        return False
    own = [secret for secret in actor.state.secrets if secret.owner is not None]
    state = dataclasses.replace(actor.state, relations=relations, secrets=[*own, *secrets])
    for make_event in _events(actor, changed, final=final):
        state = actor.ctx.run(make_event(state), state)
        _forget_records(actor.ctx)
        actor.hooks += 1
        actor.state = state
        _harvest(actor, bus)
    actor.ran, actor.inputs = True, inputs
    return True


def _forget_records(ctx: testing.Context[Any]) -> None:
    """Drop what ``ctx`` and ops kept of the hook it ran; the plan reads only the output State.

    A Context keeps every log line, status, Pebble exec, emitted event and trace span of every
    run, for tests to assert on; the events hold their run's framework and model. ops itself
    keeps every Framework it ever made: ``Framework.on`` caches each framework's bound events
    in a WeakKeyDictionary whose values refer back to their keys, which a process that ends
    after one hook, as under Juju, never notices. Here each hook would leave its framework,
    model and storage behind (about 45 kB): 60% of a 200-app plan's memory, rescanned by every
    full garbage collection. The hook is over, so nothing uses these any more.
    """
    ops.Framework.on._cache.clear()  # pyright: ignore[reportPrivateUsage]
    for records in (
        ctx.juju_log,
        ctx.app_status_history,
        ctx.unit_status_history,
        ctx.workload_version_history,
        ctx.emitted_events,
        ctx.trace_data,
    ):
        records.clear()
    ctx.exec_history.clear()


def _events(
    actor: Actor, changed: list[testing.Relation], *, final: bool
) -> list[Callable[[testing.State], Any]]:
    """The hooks to fire: ``start`` first (see the module's docstring), then relation-changed.

    Each is made from the state it runs on, since relation events name a relation of it.
    """
    on = actor.ctx.on
    if final:
        return [lambda _: on.update_status()]
    if actor.ran and not changed:  # only another app's secret changed
        return [lambda current: on.secret_changed(_newest_shared_secret(current))]
    if actor.ran:
        relation_id = min(relation.id for relation in changed)

        def relation_changed(current: testing.State) -> Any:
            relation = current.get_relation(relation_id)
            remote_unit = min(getattr(relation, "remote_units_data", {}), default=None)
            return on.relation_changed(relation, remote_unit=remote_unit)

        return [relation_changed]
    return [lambda _: on.start()]


def _newest_shared_secret(state: testing.State) -> testing.Secret:
    """The shared secret a ``secret-changed`` hook names: the last one shared with the unit."""
    return [secret for secret in state.secrets if secret.owner is None][-1]


def _secrets_seen_by(actor: Actor, bus: Bus) -> list[testing.Secret]:
    """Other apps' application secrets, as this unit reads them (owner None, latest content).

    Juju would show a unit only the secrets granted to it; the plan shares every one and
    leaves grants to the unit tests, which check them exactly.
    """
    return [
        testing.Secret(secret.latest_content, id=secret.id, owner=None)
        for owner, secret in bus.secrets.values()
        if owner != actor.app
    ]


def _harvest(actor: Actor, bus: Bus) -> None:
    if actor.state.leader:
        for secret in actor.state.secrets:
            if secret.owner == "app":
                bus.secrets[secret.id] = (actor.app, secret)
    for relation in actor.state.relations:
        link = actor.links.get(relation.id)
        if link is None:
            continue
        if actor.state.leader:
            bus.app[actor.app, link.name] = dict(relation.local_app_data)
        bus.unit[actor.unit, link.name] = dict(relation.local_unit_data)
