# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Both ends of the ``cluster`` relation between a coordinator and its workers.

Neither end emits events or caches anything across hooks: charms reconcile on every event and
read the current state from the databags, so a deferred event can never carry stale or lost
data.

What remote apps write is never trusted. On the coordinator, a worker app with unusable data
is kept out of routing and its problem is recorded, without affecting the other workers; a
unit that has not published yet is simply not listed. On a worker, a malformed coordinator
bag reads as no data, with :attr:`ClusterRequirer.problems` saying why.

Writes happen only where they are allowed (app data: leader only) and only for keys whose
value changed, so an unchanged reconcile touches no databag at all.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from typing import TYPE_CHECKING, cast

import ops

from service_mesh import Problem, label_problem
from service_mesh.databag import update_changed

from ._cluster_data import (
    ClusterDataError,
    ClusterProviderAppData,
    ClusterRequirerAppData,
    ClusterRequirerUnitData,
    JujuTopology,
    RemoteWriteEndpoint,
    encode,
)
from ._roles import ClusterRolesConfig, UnknownRolesError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence

__all__ = [
    "ClusterProvider",
    "ClusterRequirer",
    "WorkerApp",
    "WorkerUnit",
    "pod_host",
    "service_host",
]

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class WorkerUnit:
    """A worker unit that has published where it can be reached."""

    name: str
    address: str
    charm_name: str | None = None
    """From the unit's published topology; None if it did not send one."""


@dataclasses.dataclass(frozen=True)
class WorkerApp:
    """A worker application related on the cluster endpoint, as far as its data can be used.

    Attributes:
        name: the worker application's name.
        roles: concrete roles it runs (meta roles expanded). Empty while it has not published
            roles yet, and when its application data is unusable, so nothing routes to it.
        units: units with a usable published address, in unit-number order.
        problem: why some or all of its data was ignored; None when everything was usable.
    """

    name: str
    roles: frozenset[str]
    units: tuple[WorkerUnit, ...]
    problem: Problem | None = None


class ClusterProvider:
    """The coordinator's end: reads what workers announce and publishes their configuration."""

    def __init__(
        self,
        charm: ops.CharmBase,
        endpoint: str = "cluster",
        *,
        roles_config: ClusterRolesConfig,
    ) -> None:
        self._charm = charm
        self._endpoint = endpoint
        self._roles_config = roles_config
        self._by_relation: dict[int, WorkerApp] | None = None

    def workers(self) -> list[WorkerApp]:
        """Every related worker app, sorted by name, including those with problems."""
        return sorted(self._workers_by_relation().values(), key=lambda worker: worker.name)

    @property
    def problems(self) -> tuple[Problem, ...]:
        """Why (some of) a worker app's data is ignored, for each app that has a problem."""
        return tuple(
            Problem(w.problem.level, f"worker {w.name}: {w.problem.message}")
            for w in self.workers()
            if w.problem is not None
        )

    def deployed_roles(self) -> frozenset[str]:
        """Concrete roles run by at least one reachable unit (a published address)."""
        roles: set[str] = set()
        for worker in self._workers_by_relation().values():
            if worker.units:
                roles.update(worker.roles)
        return frozenset(roles)

    def publish(
        self,
        data: ClusterProviderAppData,
        worker_ports: Callable[[frozenset[str]], Sequence[int]] | None = None,
        worker_labels: Callable[[str], Mapping[str, str]] | None = None,
    ) -> bool:
        """Write ``data`` to every cluster relation, changing only keys whose value changed.

        Any other key is removed from the bag (it belongs to this relation), so a value
        that ``data`` no longer sets disappears. On a non-leader unit this does nothing; a
        relation that refuses the write is logged and skipped.

        Args:
            data: what every worker gets.
            worker_ports: given a worker's concrete roles, the ports it must open; published as
                ``worker_ports`` on that worker's relation (not for workers without roles).
            worker_labels: given a worker app's name, the labels its pods must carry, in place
                of ``data.worker_labels`` (which a relation without a known app keeps).

        Returns:
            Whether any databag was changed.

        Raises:
            ValueError: if ``worker_ports`` returns a port outside 1-65535 (a charm bug).
        """
        if not self._charm.unit.is_leader():
            return False
        workers = self._workers_by_relation()
        encoded_by_roles: dict[frozenset[str], dict[str, str]] = {}
        changed = False
        for relation in self._relations():
            worker = workers.get(relation.id)
            roles = worker.roles if worker else frozenset[str]()
            if roles not in encoded_by_roles:
                bag_data = data
                if worker_ports is not None and roles:
                    bag_data = data.with_worker_ports(worker_ports(roles))
                encoded_by_roles[roles] = bag_data.dump()
            encoded = encoded_by_roles[roles]
            if worker is not None and worker_labels is not None:
                labels = dict(sorted(worker_labels(worker.name).items()))
                encoded = {**encoded, "worker_labels": encode(labels)}
            try:
                bag = relation.data[self._charm.app]
                changed |= _replace_changed(bag, encoded)
            except ops.ModelError as e:
                logger.warning("cannot publish to cluster relation %d: %s", relation.id, e)
        return changed

    def _relations(self) -> list[ops.Relation]:
        return sorted(self._charm.model.relations[self._endpoint], key=lambda r: r.id)

    def _workers_by_relation(self) -> dict[int, WorkerApp]:
        # Remote data cannot change during a hook, so it is parsed at most once per hook.
        if self._by_relation is None:
            self._by_relation = {}
            for relation in self._relations():
                worker = _read_worker(relation, self._roles_config)
                if worker is not None:
                    self._by_relation[relation.id] = worker
        return self._by_relation


def _read_worker(relation: ops.Relation, roles_config: ClusterRolesConfig) -> WorkerApp | None:
    """Everything usable a worker app published; its problems recorded, never raised."""
    app = cast("ops.Application | None", relation.app)
    if app is None:
        logger.warning("cluster relation %d has no remote application yet", relation.id)
        return None
    problems: list[str] = []
    roles = frozenset[str]()
    try:
        roles = roles_config.expand(ClusterRequirerAppData.load(relation.data[app]).roles)
    except (ClusterDataError, UnknownRolesError, ops.ModelError) as e:
        problems.append(f"application data ignored: {e}")
    units: list[WorkerUnit] = []
    for unit in sorted(relation.units, key=_unit_number):
        try:
            unit_data = ClusterRequirerUnitData.load(relation.data[unit])
        except (ClusterDataError, ops.ModelError) as e:
            problems.append(f"{unit.name} ignored: {e}")
            continue
        if unit_data.address is None:
            continue
        topology = unit_data.juju_topology
        charm_name = topology.charm_name if topology else None
        units.append(WorkerUnit(unit.name, unit_data.address, charm_name))
    problem = "; ".join(problems)
    if problem:
        logger.warning("cluster relation %d (%s): %s", relation.id, app.name, problem)
    return WorkerApp(app.name, roles, tuple(units), Problem.blocked(problem) if problem else None)


def _unit_number(unit: ops.Unit) -> tuple[int, str]:
    number = unit.name.rpartition("/")[2]
    return (int(number), unit.name) if number.isdigit() else (-1, unit.name)


def _replace_changed(bag: MutableMapping[str, str], encoded: Mapping[str, str]) -> bool:
    """Make ``bag`` equal ``encoded``, writing only the keys that differ."""
    stale = [key for key in bag if key not in encoded]
    for key in stale:
        del bag[key]
    return update_changed(bag, encoded) or bool(stale)


def _check_worker_labels(labels: Mapping[str, str]) -> None:
    """Refuse labels the worker must not put on its pods (see `service_mesh.label_problem`).

    Raises:
        ClusterDataError: a label Kubernetes would refuse, or Juju's own selector label.
    """
    for key, value in sorted(labels.items()):
        if problem := label_problem(key, value):
            raise ClusterDataError(f"worker_labels: {problem}")


class ClusterRequirer:
    """The worker's end: announces this worker and reads what the coordinator published.

    The endpoint should be declared with ``limit: 1``; if Juju still reports several
    coordinators, the oldest relation is used and the others are ignored.
    """

    def __init__(self, charm: ops.CharmBase, endpoint: str = "cluster") -> None:
        self._charm = charm
        self._endpoint = endpoint
        self._loaded = False
        self._data: ClusterProviderAppData | None = None
        self._problem: Problem | None = None

    @functools.cached_property
    def relation(self) -> ops.Relation | None:
        """The relation to the coordinator, if any (relations are fixed for a hook)."""
        relations = sorted(self._charm.model.relations[self._endpoint], key=lambda r: r.id)
        if len(relations) > 1:
            logger.warning(
                "%d relations on %r (limit 1); using relation %d",
                len(relations),
                self._endpoint,
                relations[0].id,
            )
        return relations[0] if relations else None

    def publish_unit(self, address: str, topology: JujuTopology) -> bool:
        """Tell the coordinator where this unit is and who it is, if that changed.

        Returns:
            Whether the unit databag changed (False also when there is no relation).

        Raises:
            pydantic.ValidationError: if ``address`` is not a DNS name or IP address.
        """
        encoded = ClusterRequirerUnitData(address=address, juju_topology=topology).dump()
        return self._write(self._charm.unit, encoded)

    def publish_roles(self, roles: Iterable[str]) -> bool:
        """Announce this application's roles (leader only; a no-op elsewhere), if they changed.

        Returns:
            Whether the application databag changed.
        """
        if not self._charm.unit.is_leader():
            return False
        encoded = ClusterRequirerAppData.from_roles(roles).dump()
        return self._write(self._charm.app, encoded)

    def provider_data(self) -> ClusterProviderAppData | None:
        """What the coordinator published; None if nothing usable (see :attr:`problems`)."""
        self._load()
        return self._data

    @property
    def problems(self) -> tuple[Problem, ...]:
        """Why the coordinator's data cannot be used, when it is present but malformed."""
        self._load()
        return () if self._problem is None else (self._problem,)

    @property
    def workload_config(self) -> str | None:
        """The workload configuration to run with, if the coordinator published one."""
        data = self.provider_data()
        return data.worker_config if data else None

    @property
    def worker_labels(self) -> dict[str, str]:
        """Labels this worker's pods must carry (cluster membership, mesh enrolment)."""
        data = self.provider_data()
        return dict(data.worker_labels or {}) if data else {}

    @property
    def worker_ports(self) -> tuple[int, ...]:
        """Ports this worker must open for its roles."""
        data = self.provider_data()
        return tuple(data.worker_ports or ()) if data else ()

    @property
    def loki_endpoints(self) -> dict[str, str]:
        """Loki unit -> push URL to forward workload logs to."""
        data = self.provider_data()
        return dict(data.loki_endpoints or {}) if data else {}

    @property
    def charm_tracing_receivers(self) -> dict[str, str]:
        """Protocol -> URL for the charm's own traces."""
        data = self.provider_data()
        return dict(data.charm_tracing_receivers or {}) if data else {}

    @property
    def workload_tracing_receivers(self) -> dict[str, str]:
        """Protocol -> URL for the workload's traces."""
        data = self.provider_data()
        return dict(data.workload_tracing_receivers or {}) if data else {}

    @property
    def remote_write_endpoints(self) -> tuple[RemoteWriteEndpoint, ...]:
        """Where the workload may push metrics."""
        data = self.provider_data()
        return tuple(data.remote_write_endpoints or ()) if data else ()

    def _load(self) -> None:
        # Remote data cannot change during a hook, so it is parsed at most once per hook.
        if self._loaded:
            return
        self._loaded = True
        relation = self.relation
        if relation is None:
            return
        app = cast("ops.Application | None", relation.app)
        if app is None:
            return
        try:
            data = ClusterProviderAppData.load(relation.data[app])
            _check_worker_labels(data.worker_labels or {})
        except (ClusterDataError, ops.ModelError) as e:
            message = f"coordinator data from {app.name} ignored: {e}"
            logger.warning("%s", message)
            self._problem = Problem.blocked(f"cluster: {message}")
            return
        self._data = data

    def _write(self, owner: ops.Unit | ops.Application, encoded: Mapping[str, str]) -> bool:
        relation = self.relation
        if relation is None:
            return False
        try:
            return update_changed(relation.data[owner], encoded)
        except ops.ModelError as e:
            # Juju refuses relation data writes before the unit is fully set up (install).
            logger.warning("cannot publish to cluster relation %d: %s", relation.id, e)
            return False


def service_host(app: str, model: str) -> str:
    """FQDN of an app's headless Service, which resolves to all its pods.

    A unit's own address is ``<app>-<n>.<service_host>``; nginx resolves the Service name to
    reach every worker of an app.
    """
    return f"{app}-endpoints.{model}.svc.cluster.local"


def pod_host(unit_name: str, model: str) -> str:
    """FQDN of a Kubernetes sidecar unit's pod (``app/0`` is ``app-0.<service_host>``)."""
    app, _, number = unit_name.rpartition("/")
    return f"{app}-{number}.{service_host(app, model)}"
