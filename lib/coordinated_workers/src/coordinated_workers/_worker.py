# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The worker: runs what the coordinator tells it to, and knows nothing about the mesh.

A worker reads everything from the ``cluster`` relation: its configuration file, the labels to
put on its pods (cluster membership and, when the coordinator is meshed, mesh enrolment), and
where to send telemetry (the coordinator's proxy when it has one), including the charm's own
traces (through ``ops.tracing`` when the charm depends on ``ops[tracing]``). One reconcile path
applies it all and restarts the workload only when its configuration or Pebble layer changed.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING

import ops

from service_mesh import kubernetes_client, reconcile_charm_labels, safe_text
from service_mesh.databag import canonical_json
from service_mesh.errors import KubernetesError

from . import _charm_tracing, _sync
from . import _mesh as mesh
from ._cluster import ClusterRequirer, pod_host
from ._cluster_data import JujuTopology
from ._events import observe_reconcile_events
from ._pebble import plan_contains
from ._proxy import proxy_environment, with_proxy_environment
from ._resources import ComputeResources, ResourcePatch
from ._s3 import S3ConnectionInfo, S3DataError
from ._s3_share import S3SecretUnreadableError, sync_file, worker_s3
from ._status import Problem, kubernetes_problem, pebble_problem
from ._version import VersionReporter
from ._worker_tls import (
    Applied,
    TLSDataError,
    TLSKeyMismatchError,
    TLSSecretUnreadableError,
    TLSSync,
    WorkerTLS,
    apply_tls,
    plan_tls,
)
from .telemetry.loki_push_api import (
    enabled_log_targets,
    forward_container_logs,
    log_forwarding_layer,
    topology_labels,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    import lightkube

logger = logging.getLogger(__name__)

ROLE_OPTION_PREFIX = "role-"
READY_CHECK = "ready"
_LAYER = "worker"
_LOGGING_LAYER = "worker-logging"


@dataclasses.dataclass(frozen=True)
class WorkerContext:
    """What a charm's Pebble layer callback may depend on."""

    roles: frozenset[str]
    config_path: str
    workload_tracing: Mapping[str, str]
    """Protocol -> URL for the workload's own traces (the coordinator's proxy when it has one)."""
    s3: S3ConnectionInfo | None = None
    """The object storage the coordinator shares (read from its secret); None without one."""
    tls: WorkerTLS | None = None
    """Where the coordinator's CA, server certificate and key are, while it serves TLS."""
    address: str = ""
    """This unit's FQDN, which the coordinator puts in the server certificate: an https
    readiness URL uses it rather than ``localhost``."""


@dataclasses.dataclass(frozen=True)
class WorkerConfig:
    """Everything a worker charm tells the library."""

    container: str
    """The workload container."""
    layer: Callable[[WorkerContext], ops.pebble.LayerDict]
    """Builds the workload's Pebble layer (services only; checks and log targets are added)."""
    cluster_endpoint: str = "cluster"
    config_path: str = "/etc/worker/config.yaml"
    readiness_url: str | Callable[[WorkerContext], str | None] | None = None
    """If set, a Pebble ``ready`` check polls it and the status follows it.

    A callable computes the URL from the context on every reconcile (a port that depends on
    the roles, say); None from it adds no check."""
    config_transform: Callable[[str], str] | None = None
    """Rewrites the coordinator's workload configuration for this unit before it is written (an
    instance id, a unit's own address); a ``ValueError`` keeps the last good config."""
    s3_ca_path: str = "/etc/worker/s3_ca.crt"
    """Where the s3 endpoint's CA chain (``s3_tls_ca_chain``) is written, when there is one."""
    resources: ComputeResources | None = None
    """Size the workload container (or ``resources.container``) from charm config."""
    workload_version: Callable[[ops.Container], str | None] | None = None
    """Reads the workload's version (e.g. runs ``<binary> -version``) for ``juju status``.

    Called on start, upgrade-charm and the container's pebble-ready only; may raise
    ``ops.pebble.Error`` (logged, the version stays as it was)."""


class Worker(ops.Object):
    """Wires a worker charm: observe, reconcile, and report problems for collect-status."""

    _applied = ops.StoredState()

    def __init__(self, charm: ops.CharmBase, config: WorkerConfig) -> None:
        super().__init__(charm, "worker")
        self._applied.set_default(labels="", restart_pending=False, s3_ca=False, tls="")
        self._charm = charm
        self.config = config
        self.cluster = ClusterRequirer(charm, config.cluster_endpoint)
        self._problems: list[Problem] = []
        self._pebble_reachable: bool | None = None  # as this hook's reconcile found Pebble
        self._s3: S3ConnectionInfo | None = None
        self._ready_url: str | None = None  # the readiness URL this reconcile put in the layer
        self._tls: WorkerTLS | None = None  # the TLS files this reconcile put in place
        # What the dispatched event says about the TLS files and the key's secret.
        self._container_restarted = False
        self._secret_changed = False
        self._verify_tls_files = True
        self.resources = (
            ResourcePatch(charm, config.resources, config.container) if config.resources else None
        )
        observe_reconcile_events(charm, self._on_reconcile_event)
        # After the reconcile (observed first), so the workload has been started.
        self.version = (
            VersionReporter(charm, config.container, config.workload_version)
            if config.workload_version is not None
            else None
        )
        # No cleanup on `remove`: planned_units() == 0 holds both when the app is scaled to
        # zero and when it is removed, and a hook cannot tell which. Scaled to zero, taking
        # the cluster and mesh labels off the pod template would roll units still shutting
        # down (an ingester flushing to its peers) out of the cluster and the mesh. Removed,
        # the labels go with the StatefulSet and the Service that Juju deletes.

    @property
    def roles(self) -> frozenset[str]:
        """Roles switched on with ``role-<name>=true`` options (meta roles not expanded)."""
        return frozenset(
            key.removeprefix(ROLE_OPTION_PREFIX)
            for key, value in self._charm.config.items()
            if key.startswith(ROLE_OPTION_PREFIX) and value is True
        )

    @property
    def problems(self) -> tuple[Problem, ...]:
        """What keeps this unit from being active, for the charm's collect-status.

        Standing problems (roles, the cluster relation, the container) are read now, so they
        are right even in hooks that do not reconcile; this hook's reconcile failures (a
        Kubernetes error, a workload not ready) are added to them.
        """
        return (*self._standing_problems(), *self._problems)

    def _standing_problems(self) -> list[Problem]:
        problems: list[Problem] = []
        if not self.roles:
            problems.append(
                Problem.blocked(
                    "no role assigned: run `juju config "
                    f"{self._charm.app.name} role-all=true` (or another role-<name>)"
                )
            )
        if self.cluster.relation is None:
            problems.append(Problem.blocked("missing relation to a coordinator"))
        elif cluster_problems := self.cluster.problems:
            problems.extend(cluster_problems)
        elif self.cluster.workload_config is None:
            problems.append(Problem.waiting("waiting for the coordinator to publish a config"))
        reachable = self._pebble_reachable
        if reachable is None:  # no reconcile in this hook: ask now
            reachable = self._charm.unit.get_container(self.config.container).can_connect()
        if not reachable:
            problems.append(Problem.waiting(f"waiting for the {self.config.container} container"))
        if self.resources is not None:
            problems.extend(self.resources.problems)
        return problems

    def _on_reconcile_event(self, event: ops.EventBase) -> None:
        # A restarted container has lost the files we wrote; a secret-changed may be a new key.
        self._container_restarted = isinstance(event, ops.PebbleReadyEvent)
        self._secret_changed = isinstance(event, ops.SecretChangedEvent) and self._is_tls_key(
            event.secret
        )
        # A refresh may have Juju rewrite the StatefulSet, dropping our pod-template labels
        # while our record still lists them: only re-patching finds out.
        self.reconcile(
            force_labels=isinstance(event, ops.UpgradeCharmEvent), verify=_sync.verifies(event)
        )

    def reconcile(self, *, force_labels: bool = False, verify: bool = True) -> None:
        """Apply labels, announce ourselves, and run the workload as the coordinator says.

        While the coordinator's data is present but unusable, the labels and the workload keep
        their last good state (the status says why): bad data is not "no coordinator", and
        acting on it would pull the pods out of the mesh and stop the workload.

        Args:
            force_labels: re-patch the pod labels even if our record says they are set.
            verify: compare the labels with the cluster even if they have not changed since
                this unit last applied them (see ``_sync``); events pass False except the few
                that must catch changes made behind our back.
        """
        self._problems.clear()
        self._pebble_reachable = None
        self._verify_tls_files = verify or self._container_restarted
        roles = self.roles
        keep_last_good = bool(self.cluster.problems)
        if self._charm.unit.is_leader():
            if not keep_last_good:
                self._reconcile_labels(force_labels, verify)
            self.cluster.publish_roles(roles)
        if self.resources is not None:
            self.resources.reconcile(verify=verify or force_labels)
        if self.cluster.relation is not None:
            self.cluster.publish_unit(self._fqdn(), JujuTopology.from_charm(self._charm))
        if not keep_last_good:
            self._reconcile_charm_tracing()
            if self._read_s3():  # else the workload keeps its last good storage
                self._reconcile_workload(roles)
            self._forward_other_containers_logs()  # issue 15: every container, not only ours

    def _read_s3(self) -> bool:
        """Read the coordinator's s3 secret; whether it is usable (or there is none)."""
        data = self.cluster.provider_data()
        try:
            self._s3 = worker_s3(self.model, data.s3_secret_id if data else None)
        except S3SecretUnreadableError as e:
            logger.warning("s3: %s", e)
            self._problems.append(Problem.waiting(f"s3: {safe_text(str(e), 300)}"))
            return False
        except S3DataError as e:
            logger.error("s3: %s", e)
            self._problems.append(
                Problem.blocked(f"cluster: s3 secret ignored: {safe_text(str(e), 300)}")
            )
            return False
        return True

    def _reconcile_labels(self, force: bool, verify: bool) -> None:
        labels = self.cluster.worker_labels
        desired = canonical_json({"labels": labels})  # small, so kept as is (see _sync)
        if not (force or verify) and desired == self._applied.labels:
            return
        self._applied.labels = ""
        try:
            with self._kubernetes() as client:
                reconcile_charm_labels(
                    client,
                    self._charm.app.name,
                    self.model.name,
                    mesh.pod_labels_configmap(self._charm.app.name),
                    labels,
                    force=force,
                )
        except KubernetesError as e:
            logger.error("pod labels: %s", safe_text(str(e), 1000))
            self._problems.append(kubernetes_problem("pod labels", e, self._charm.app.name))
            return
        self._applied.labels = desired

    def _reconcile_charm_tracing(self) -> None:
        """Send our charm traces where the coordinator says; nowhere if it says nothing."""
        data = self.cluster.provider_data()
        receiver = self.cluster.charm_tracing_receivers.get(_charm_tracing.OTLP_HTTP)
        try:
            _charm_tracing.set_destination(receiver, ca=data.ca_cert if data else None)
        except ValueError as e:
            message = f"cluster: {safe_text(str(e), 300)}"
            logger.warning("%s", message)
            self._problems.append(Problem.blocked(message))

    def _reconcile_workload(self, roles: frozenset[str]) -> None:
        container = self._charm.unit.get_container(self.config.container)
        # No can_connect() first: it is a Pebble round trip of its own, and Pebble can go away
        # between it and the next call anyway; the first call fails the same way.
        try:
            self._reconcile_container(container, roles)
        except ops.pebble.ConnectionError as e:
            logger.info("workload: Pebble is not reachable (%s); the next event retries", e)
            self._pebble_reachable = False
        except ops.pebble.Error as e:
            logger.error("workload: Pebble failed: %s", safe_text(str(e), 500))
            self._problems.append(pebble_problem(self.config.container, e))
        else:
            self._pebble_reachable = True

    def _reconcile_container(self, container: ops.Container, roles: frozenset[str]) -> None:
        workload_config = self.cluster.workload_config
        if not roles or workload_config is None:
            self._stop(container)
            return
        inputs = self._usable_inputs(container, workload_config)
        if inputs is None:
            return  # the workload keeps its last good config and files
        workload_config, tls = inputs
        self._charm.unit.set_ports(*self.cluster.worker_ports)
        restart_pending = self._applied.restart_pending
        try:
            if _differs_on_disk(container, self.config.config_path, workload_config):
                # If Pebble fails between the push and the restart, the next hook finds the
                # file as wanted: only this record (kept below, whatever happens) restarts it.
                restart_pending = True
                container.push(self.config.config_path, workload_config, make_dirs=True)
            restart_pending |= tls.changes  # the same: set before the files are written
            self._apply_tls(container, tls)
            restart_pending |= self._sync_s3_ca(container)
            plan = container.get_plan()
            layer_changed = self._apply_layer(container, roles, plan)
            if layer_changed:
                plan = container.get_plan()
            if self._apply_log_forwarding(container, plan):
                plan = container.get_plan()
            if restart_pending:
                # The workload reads its config only at start: restart every service, once.
                # Pebble restarts with the current plan, so a layer added above is picked up
                # too (and its checks already run: Pebble starts them when the plan changes).
                services = list(plan.services)
                if services:
                    container.restart(*services)
                restart_pending = False
            elif layer_changed:
                container.replan()
        finally:
            if restart_pending != self._applied.restart_pending:  # written only on a change
                self._applied.restart_pending = restart_pending
        self._check_readiness(container)

    def _stop(self, container: ops.Container) -> None:
        """Stop the workload; without a coordinator (the relation gone) remove what it gave.

        That is its TLS key, certificate and trusted CA, and the s3 endpoint's CA chain.
        """
        _stop_all(container)
        if self.cluster.provider_data() is None:
            if tls := self._plan_tls(container):
                self._apply_tls(container, tls)
            self._sync_s3_ca(container)

    def _usable_inputs(self, container: ops.Container, text: str) -> tuple[str, TLSSync] | None:
        """This unit's config and the TLS plan; None (and a problem) if either is unusable."""
        workload_config = self._unit_config(text)
        if workload_config is None:
            return None
        tls = self._plan_tls(container)
        return None if tls is None else (workload_config, tls)

    def _is_tls_key(self, secret: ops.Secret) -> bool:
        """Whether `secret` may be the TLS key the coordinator names (then it is re-read).

        Another secret changing (the s3 credentials, say) leaves the key alone. Juju gives an
        id in a short (``secret:<id>``) or a long (``secret://<model>/<id>``) form; the part
        after the last ``/`` or ``:`` is the same. With nothing to compare, re-reading is the
        safe side.
        """
        data = self.cluster.provider_data()
        wanted = data.privkey_secret_id if data is not None else None
        if wanted is None or secret.id is None:
            return True
        return _secret_unique_id(secret.id) == _secret_unique_id(wanted)

    def _plan_tls(self, container: ops.Container) -> TLSSync | None:
        """What to do with the TLS files; None (and a problem) when the data is unusable."""
        try:
            return plan_tls(
                container,
                self.model,
                self.cluster.provider_data(),
                Applied.load(self._applied.tls),
                verify=self._verify_tls_files,
                reread_key=self._secret_changed,
            )
        except TLSDataError as e:
            message = f"cluster: {safe_text(str(e), 300)}"
            logger.warning("tls: %s", message)
            # Not granted yet, or a renewal half published: both clear by themselves.
            if isinstance(e, (TLSSecretUnreadableError, TLSKeyMismatchError)):
                self._problems.append(Problem.waiting(message))
            else:
                self._problems.append(Problem.blocked(message))
            return None

    def _apply_tls(self, container: ops.Container, tls: TLSSync) -> None:
        """Write the planned TLS files; the record is kept only once they are written."""
        if tls.changes or tls.refresh_trust:
            if tls.pushes:  # a failure half-way makes the next hook compare the files; a
                self._applied.tls = ""  # removal keeps the record, so the next one retries
            record, problem = apply_tls(container, tls)
            if problem is not None:
                logger.error("tls: %s", problem)
                self._problems.append(Problem.blocked(f"{self.config.container}: {problem}"))
        else:
            record = tls.record
        if record.dump() != self._applied.tls:  # stored state written on a change only
            self._applied.tls = record.dump()
        self._tls = tls.tls

    def _sync_s3_ca(self, container: ops.Container) -> bool:
        """Write (or remove) the s3 endpoint's CA chain; whether the file changed."""
        data = self.cluster.provider_data()
        ca_chain = data.s3_tls_ca_chain if data else None
        changed = sync_file(container, self.config.s3_ca_path, ca_chain, self._applied.s3_ca)
        if self._applied.s3_ca != (ca_chain is not None):  # stored state written on a change
            self._applied.s3_ca = ca_chain is not None
        return changed

    def _apply_layer(
        self, container: ops.Container, roles: frozenset[str], plan: ops.pebble.Plan
    ) -> bool:
        """Add the workload layer unless `plan` (the current one) has it; whether it was added."""
        context = WorkerContext(
            roles=roles,
            config_path=self.config.config_path,
            workload_tracing=self.cluster.workload_tracing_receivers,
            s3=self._s3,
            tls=self._tls,
            address=self._fqdn(),
        )
        layer = with_proxy_environment(self.config.layer(context), proxy_environment())
        ready = self.config.readiness_url
        self._ready_url = ready(context) if callable(ready) else ready
        if self._ready_url:
            checks: dict[str, ops.pebble.CheckDict] = {
                READY_CHECK: {
                    "override": "replace",
                    "level": "ready",
                    "threshold": 3,
                    "http": {"url": self._ready_url},
                }
            }
            layer = ops.pebble.LayerDict(**layer)
            layer["checks"] = checks
        if plan_contains(plan, ops.pebble.Layer(layer)):
            return False
        container.add_layer(_LAYER, layer, combine=True)
        return True

    def _apply_log_forwarding(self, container: ops.Container, plan: ops.pebble.Plan) -> bool:
        """Make Pebble forward every service's logs to the coordinator's Loki URLs, or nowhere.

        Returns:
            Whether a layer was added (the plan changed).
        """
        services = sorted(plan.services)
        current = enabled_log_targets(plan)
        wanted = self.cluster.loki_endpoints
        if not services or (not wanted and not current):
            return False
        layer = log_forwarding_layer(
            wanted, topology_labels(self._charm), services, current_targets=current
        )
        if plan_contains(plan, ops.pebble.Layer(layer)):
            return False
        container.add_layer(_LOGGING_LAYER, layer, combine=True)
        container.replan()
        return True

    def _forward_other_containers_logs(self) -> None:
        """Forward the logs of the charm's other containers (sidecars) to the same Lokis."""
        labels = topology_labels(self._charm)
        for name in sorted(self._charm.meta.containers):
            if name == self.config.container:
                continue
            container = self._charm.unit.get_container(name)
            try:
                forward_container_logs(
                    container, self.cluster.loki_endpoints, labels, _LOGGING_LAYER
                )
            except ops.pebble.ConnectionError as e:
                logger.info("%s: Pebble is not reachable (%s); the next event retries", name, e)
            except ops.pebble.Error as e:
                logger.error("%s: log forwarding: %s", name, safe_text(str(e), 500))
                self._problems.append(pebble_problem(name, e))

    def _unit_config(self, text: str) -> str | None:
        """The config this unit runs: the coordinator's, through the charm's transform."""
        transform = self.config.config_transform
        if transform is None:
            return text
        try:
            return transform(text)
        except ValueError as e:
            message = f"worker config: {safe_text(str(e), 300)}"
            logger.error("%s", message)
            self._problems.append(Problem.blocked(message))
            return None

    def _check_readiness(self, container: ops.Container) -> None:
        if not self._ready_url:
            return
        checks = container.get_checks(READY_CHECK)
        check = checks.get(READY_CHECK)
        if check is not None and check.status != ops.pebble.CheckStatus.UP:
            self._problems.append(
                Problem.waiting("workload is not ready yet (Pebble check 'ready')")
            )

    def _fqdn(self) -> str:
        return pod_host(self._charm.unit.name, self.model.name)

    def _kubernetes(self) -> lightkube.Client:
        """A client for this hook's one Kubernetes step; the caller closes it (``with``)."""
        return kubernetes_client(self.model.name, self._charm.app.name)


def _differs_on_disk(container: ops.Container, path: str, text: str) -> bool:
    """Whether the file at `path` in the container is missing or other than `text`.

    Compared as bytes: whatever is there (anyone with access to the container may have written
    a file that is not UTF-8) is simply "different", never a decoding error that fails the hook.
    """
    try:
        with container.pull(path, encoding=None) as current:
            return current.read() != text.encode()
    except ops.pebble.PathError:
        return True


def _stop_all(container: ops.Container) -> None:
    running = [name for name, svc in container.get_services().items() if svc.is_running()]
    if running:
        container.stop(*running)


def _secret_unique_id(secret_id: str) -> str:
    """The id without its ``secret:`` or ``secret://<model>/`` prefix."""
    return secret_id.rsplit("/", 1)[-1].rsplit(":", 1)[-1]
