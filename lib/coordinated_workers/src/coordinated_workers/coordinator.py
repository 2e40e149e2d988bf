"""The coordinator: one reconcile path that keeps nginx, workers, labels and policies in step.

Every hook runs :meth:`Coordinator.reconcile` once. It reads all inputs (cluster relation,
mesh relation, telemetry relations), computes the desired state once, and writes only what
differs, in this order:

1. cluster-internal AuthorizationPolicies through ``PolicyResourceManager``, leader only;
2. own pod labels (cluster membership + mesh labels), leader only;
3. where this charm's own traces go: the ``otlp_http`` receiver of ``charm-tracing``, directly
   (through ``ops.tracing`` when the charm depends on ``ops[tracing]``; see ``_charm_tracing``);
4. nginx and nginx-prometheus-exporter through Pebble (reloaded only when nginx.conf changed);
5. the cluster relation: worker config, labels and (proxied) telemetry URLs, leader only;
6. external policies to the beacon through ``ServiceMeshConsumer``;
7. telemetry relations: scrape jobs, tracing protocol requests.

No enrolment before authorisation: an app (the coordinator itself, or a worker app) is given
the mesh labels only once the cluster-internal policies that let it talk are in the cluster.
A new worker app's two policies are applied before its bag carries the mesh labels; if they
fail, it gets the membership label alone and the next hook tries again.

A step that fails (Kubernetes refusing a call, a remote app's malformed data) is recorded as a
:class:`Problem` and the later steps still run; the charm turns problems into a status in
collect-status, and the next hook retries. The library never sets a status itself.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
from typing import TYPE_CHECKING, TypeAlias, TypeVar, cast

import ops

from service_mesh import (
    AppPolicy,
    MeshPolicy,
    PolicyResourceManager,
    ServiceMeshConsumer,
    UnitPolicy,
    kubernetes_client,
    reconcile_charm_labels,
    safe_text,
)
from service_mesh.errors import KubernetesError
from service_mesh.istio import policy_name

from . import _charm_tracing, _sync, mesh, routing
from ._cluster_data import ClusterDataError, ClusterProviderAppData, RemoteWriteEndpoint
from ._events import observe_reconcile_events
from ._ipv6 import pod_has_ipv6
from ._log_forwarding import OwnLogForwarding
from ._s3_share import S3Share
from ._status import Problem, kubernetes_problem, pebble_problem
from ._version import VersionReporter, nginx_version
from .catalogue import CatalogueItem, CatalogueRequirer
from .cluster import ClusterProvider, WorkerApp
from .nginx import (
    ExporterWorkload,
    NginxConfigError,
    NginxConfigRejectedError,
    NginxInputs,
    NginxReloadError,
    NginxWorkload,
    NoNameserverError,
    RoleRoute,
    exporter_layer,
    render,
    resolver_from_resolv_conf,
    service_host,
    stub_status_url,
)
from .observability import ObservabilityConfig, ObservabilityEndpoints, SelfObservability
from .resources import ComputeResources, ResourcePatch
from .s3 import S3ConnectionInfo, S3Requirer
from .telemetry.loki_push_api import LokiPushApiRequirer
from .telemetry.prometheus_scrape import MetricsEndpointProvider, scrape_jobs
from .telemetry.remote_write import RemoteWriteRequirer
from .telemetry.tracing import TracingRequirer
from .telemetry_proxy import ProxyPlan, TelemetryTargets, WorkerTelemetryProxyConfig, plan_proxy

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    import lightkube

    from .roles import ClusterRolesConfig
    from .routing import Server
    from .telemetry._databag import Reading

logger = logging.getLogger(__name__)

_T = TypeVar("_T")


class _Keep(enum.Enum):
    KEEP = "keep"


_KEEP = _Keep.KEEP
"""Which apps are authorised could not be found out: keep each app's labels as they are."""

_Authorised: TypeAlias = "frozenset[str] | _Keep | None"

RESOLV_CONF = "/etc/resolv.conf"


@dataclasses.dataclass(frozen=True)
class CoordinatorEndpoints:
    """Names of the coordinator's endpoints in charmcraft.yaml; None switches a feature off.

    The three mesh endpoints go together: all set or all None.
    """

    cluster: str = "cluster"
    metrics: str | None = "metrics-endpoint"
    logging: str | None = "logging"
    charm_tracing: str | None = "charm-tracing"
    workload_tracing: str | None = "workload-tracing"
    remote_write: str | None = "send-remote-write"
    service_mesh: str | None = "service-mesh"
    require_cmr_mesh: str | None = "require-cmr-mesh"
    provide_cmr_mesh: str | None = "provide-cmr-mesh"
    peers: str | None = "peers"
    grafana_dashboard: str | None = "grafana-dashboard"
    """Skipped when the charm does not declare it."""
    s3: str | None = "s3"
    """Object storage (interface ``s3``); ignored when the charm does not declare it."""
    catalogue: str | None = "catalogue"
    """A catalogue entry (interface ``catalogue``); ignored when the charm does not declare it."""

    def __post_init__(self) -> None:
        mesh_names = (self.service_mesh, self.require_cmr_mesh, self.provide_cmr_mesh)
        if len({name is None for name in mesh_names}) != 1:
            raise ValueError(
                "service_mesh, require_cmr_mesh and provide_cmr_mesh must all be set or all None"
            )


@dataclasses.dataclass(frozen=True)
class WorkerConfigContext:
    """What a charm's worker-config callback may depend on."""

    model: str
    coordinator_host: str
    """The coordinator's Service FQDN, which workers use to reach it."""
    workers: Sequence[WorkerApp]
    telemetry: TelemetryTargets
    """The telemetry URLs workers are given (proxied when the proxy is on)."""
    s3: S3ConnectionInfo | None = None
    """The object storage workers use, once the s3 provider has sent credentials."""


@dataclasses.dataclass(frozen=True)
class CoordinatorConfig:
    """Everything a charm tells the coordinator, in one typed object."""

    roles: ClusterRolesConfig
    worker_config: Callable[[WorkerConfigContext], str]
    """Renders the configuration file every worker receives."""
    routes: Sequence[RoleRoute]
    """How API requests are routed to workers by role."""
    worker_metrics_port: int
    """Port on which each worker serves ``/metrics``."""
    api_port: int = 8080
    worker_ports: Callable[[frozenset[str]], Sequence[int]] | None = None
    """Given a worker's roles, the ports it must open."""
    telemetry_proxy: WorkerTelemetryProxyConfig | None = None
    """Route all worker telemetry through the coordinator (mandatory in a hardened mesh)."""
    charm_mesh_policies: Sequence[AppPolicy | UnitPolicy] = ()
    """Charm-specific external policies, appended to the defaults."""
    endpoints: CoordinatorEndpoints = dataclasses.field(default_factory=CoordinatorEndpoints)
    workload_tracing_protocols: Sequence[str] = ("otlp_http",)
    nginx_container: str = "nginx"
    exporter_container: str = "nginx-prometheus-exporter"
    exporter_port: int = 9113
    status_port: int = 8082
    ipv6: bool = True
    """Also listen on ``[::]`` where the pod has IPv6 (probed on every render); False: never."""
    servers: Sequence[Server] = ()
    """More nginx servers and locations (`coordinated_workers.routing`); `routes` join the one
    on `api_port`. Their `relations` become external mesh policies."""
    observability: ObservabilityConfig | None = dataclasses.field(
        default_factory=ObservabilityConfig
    )
    """Alert rules and dashboards published for the cluster; None publishes none."""
    s3_required: bool = False
    """The workload cannot run without object storage: blocked until ``s3`` is related."""
    resources: ComputeResources | None = None
    """Size nginx (or ``resources.container``) from charm config; None leaves it alone."""
    catalogue: Callable[[str], CatalogueItem] | None = None
    """Given the coordinator's Service FQDN, the catalogue entry to publish."""
    coherence: Callable[[Sequence[WorkerApp]], str | None] | None = None
    """A check beyond the roles (e.g. a replication factor the workers can meet): given the
    worker apps, why the cluster is not coherent, or None. Blocked with ``[consistency]``."""


class Coordinator(ops.Object):
    """Wires a coordinator charm: observe, reconcile, and report problems for collect-status."""

    _applied = ops.StoredState()

    def __init__(self, charm: ops.CharmBase, config: CoordinatorConfig) -> None:
        super().__init__(charm, "coordinator")
        self._applied.set_default(kubernetes="", nginx_reload_pending=False)
        self._charm = charm
        self.config = config
        endpoints = config.endpoints
        self.cluster = ClusterProvider(charm, endpoints.cluster, roles_config=config.roles)
        self.mesh: ServiceMeshConsumer | None = None
        if endpoints.service_mesh and endpoints.require_cmr_mesh and endpoints.provide_cmr_mesh:
            self.mesh = ServiceMeshConsumer(
                charm,
                mesh_relation_name=endpoints.service_mesh,
                cross_model_mesh_requires_name=endpoints.require_cmr_mesh,
                cross_model_mesh_provides_name=endpoints.provide_cmr_mesh,
                policies=self.external_policies(),
                auto_join=False,
            )
        self._problems: list[Problem] = []
        self._pebble_reachable: dict[str, bool] = {}  # by container, as this hook found it
        self._kubernetes_failed = False
        self._client: lightkube.Client | None = None
        # --- self-observability (issue 15): rules and dashboards, rendered only on change
        self._own_logs = OwnLogForwarding(charm)
        self.observability: SelfObservability | None = None
        if config.observability is not None:
            self.observability = SelfObservability(
                charm,
                config.observability,
                ObservabilityEndpoints(
                    endpoints.metrics, endpoints.logging, endpoints.grafana_dashboard
                ),
            )
        # --- object storage (s3): read, shared with workers through an app secret ---
        self.s3 = S3Share(charm, self._s3_requirer(), config.s3_required)
        # --- compute resources: the leader patches our StatefulSet when the config changes ---
        self.resources = (
            ResourcePatch(charm, config.resources, config.nginx_container)
            if config.resources is not None
            else None
        )
        observe_reconcile_events(charm, self._on_reconcile_event)
        # nginx's version in `juju status`, asked only when the container (re)starts.
        self.version = VersionReporter(charm, config.nginx_container, nginx_version)
        # No cleanup on `remove`: planned_units() == 0 holds both when the app is scaled to
        # zero and when it is removed, and a hook cannot tell which. Scaled to zero, the
        # workers still run and need the worker-to-worker policies (gossip, hand-over), so
        # deleting them would cut the cluster apart. Removed, Juju deletes our StatefulSet,
        # which owns every cluster-internal policy (ownerReferences), so Kubernetes deletes
        # them even if a hook failed; our pod labels go with the StatefulSet and Service.

    # --- what the coordinator computes -------------------------------------------------

    @property
    def app_name(self) -> str:
        """The coordinator application's name, which is also the cluster's name."""
        return self._charm.app.name

    @property
    def host(self) -> str:
        """The coordinator's Service FQDN: the stable address workers and scrapers use."""
        return f"{self.app_name}.{self.model.name}.svc.cluster.local"

    @property
    def proxy_port(self) -> int | None:
        """Port of the worker telemetry proxy, chosen now (no TLS yet: the HTTP port)."""
        proxy = self.config.telemetry_proxy
        return None if proxy is None else proxy.port(tls=False)

    def external_policies(self) -> list[AppPolicy | UnitPolicy]:
        """Default external policies followed by the charm's own."""
        defaults = mesh.default_external_policies(
            self.config.endpoints.metrics, self.config.exporter_port, self.proxy_port
        )
        routed = routing.mesh_policies(self.config.servers)  # who may reach which server
        return mesh.external_policies(defaults, [*routed, *self.config.charm_mesh_policies])

    def pod_labels(self) -> dict[str, str]:
        """Labels for coordinator and worker pods: membership, plus mesh labels when meshed.

        While the mesh's data is malformed, the labels last published to workers are kept
        (leader only: others cannot read them), so bad data never pulls the cluster out of
        the mesh. The membership label always wins over a mesh label of the same name: the
        cluster-internal policies select the cluster's pods by it.
        """
        labels: dict[str, str] = {}
        if self.mesh is not None and self.mesh.enabled:
            last_good = self._published_labels() if self._mesh_data_broken() else None
            labels.update(self.mesh.labels() if last_good is None else last_good)
        labels.update(mesh.membership_labels(self.app_name))
        return dict(sorted(labels.items()))

    def _mesh_data_broken(self) -> bool:
        return self.mesh is not None and self.mesh.provider_problem is not None

    def _published_labels(self) -> dict[str, str] | None:
        """The mesh-enrolled pod labels we last gave workers (our own bags); None if unknown.

        Only a bag with more than the membership label counts: an app not yet authorised got
        the membership label alone, which says nothing about the mesh's labels.
        """
        if not self._charm.unit.is_leader():
            return None
        membership = mesh.membership_labels(self.app_name)
        for app_labels in self._published_labels_by_app().values():
            if app_labels.keys() - membership.keys():
                return app_labels
        return None

    def _published_labels_by_app(self) -> dict[str, dict[str, str]]:
        """Worker app -> the pod labels its cluster bag carries now (leader only)."""
        published: dict[str, dict[str, str]] = {}
        for relation in self.model.relations[self.config.endpoints.cluster]:
            app = cast("ops.Application | None", relation.app)  # None before Juju knows it
            if app is None:
                continue
            try:
                labels = ClusterProviderAppData.load(relation.data[self._charm.app]).worker_labels
            except (ClusterDataError, ops.ModelError):
                continue
            if labels is not None:
                published[app.name] = dict(labels)
        return published

    @property
    def problems(self) -> tuple[Problem, ...]:
        """What keeps this unit from being active, for the charm's collect-status.

        Standing problems (cluster consistency, remote data, containers) are read now, so they
        are right even in hooks that do not reconcile; failures of this hook's reconcile (a
        Kubernetes error) are added to them.
        """
        return (*self._standing_problems(), *self._problems)

    def _standing_problems(self) -> list[Problem]:
        problems: list[Problem] = []
        workers = self.cluster.workers()
        if not workers:
            problems.append(Problem.blocked("[consistency] Missing any worker relation."))
        else:
            missing = self.config.roles.missing_roles(self.cluster.deployed_roles())
            if missing:
                problems.append(
                    Problem.blocked(
                        "[consistency] Cluster inconsistent: no worker runs "
                        + ", ".join(sorted(missing))
                    )
                )
        if workers and self.config.coherence is not None:
            incoherent = self.config.coherence(workers)
            if incoherent:
                problems.append(Problem.blocked(f"[consistency] {incoherent}"))
        problems.extend(
            Problem.blocked(f"worker {app}: {problem}")
            for app, problem in sorted(self.cluster.problems().items())
        )
        if self.mesh is not None and self.mesh.problem:
            problems.append(Problem.blocked(f"service-mesh: {self.mesh.problem}"))
        if self.observability is not None:  # issue 15: files left out of rules or dashboards
            problems.extend(Problem.blocked(p) for p in self.observability.problems)
        problems.extend(self.s3.problems())
        if self.resources is not None:
            problems.extend(self.resources.problems)
        problems.extend(
            Problem.waiting(f"waiting for the {name} container")
            for name in (self.config.nginx_container, self.config.exporter_container)
            if not self._can_connect(name)
        )
        return problems

    def _can_connect(self, container: str) -> bool:
        """Whether Pebble answered in this hook's reconcile; asked now if none ran."""
        reachable = self._pebble_reachable.get(container)
        if reachable is None:
            reachable = self._charm.unit.get_container(container).can_connect()
        return reachable

    # --- reconcile -----------------------------------------------------------------------

    def _on_reconcile_event(self, event: ops.EventBase) -> None:
        # A refresh may have Juju rewrite the StatefulSet, dropping our pod-template labels
        # while our record still lists them: only re-patching finds out.
        self.reconcile(
            force_labels=isinstance(event, ops.UpgradeCharmEvent), verify=_sync.verifies(event)
        )

    def reconcile(self, *, force_labels: bool = False, verify: bool = True) -> None:
        """Bring labels, nginx, workers and policies in line with the current relations.

        Args:
            force_labels: re-patch the pod labels even if our record says they are set.
            verify: compare labels and policies with the cluster even if nothing we apply has
                changed since this unit last applied it all (see ``_sync``). Events pass False
                except the few that must catch changes made behind our back.
        """
        try:
            self._reconcile(force_labels, verify)
        finally:
            self._close_kubernetes()

    def _reconcile(self, force_labels: bool, verify: bool) -> None:
        self._problems.clear()
        self._pebble_reachable.clear()
        self._kubernetes_failed = False
        workers = self.cluster.workers()
        labels = self.pod_labels()
        is_leader = self._charm.unit.is_leader()
        labels_known = not self._mesh_data_broken() or self._published_labels() is not None
        desired = self._kubernetes_fingerprint(labels, workers)
        in_sync = not (verify or force_labels) and desired == self._applied.kubernetes
        # Policies first: no app gets the mesh labels before the policies that let it talk.
        authorised = self._reconcile_policies_step(workers, is_leader and not in_sync)
        # Our own pods: left as they are when it could not be found out (KEEP).
        if is_leader and labels_known and not in_sync and authorised is not _KEEP:
            own = self._enrolled(self.app_name, labels, authorised, {})
            self._kubernetes_step(
                "pod labels", lambda client: self._reconcile_labels(client, own, force_labels)
            )
        if self.resources is not None:
            self.resources.reconcile(verify=verify or force_labels)
        real_targets = self._telemetry_targets()
        self._reconcile_charm_tracing(real_targets)
        plan = self._proxy_plan(real_targets)
        self._reconcile_nginx(workers, plan)
        self._forward_own_logs(real_targets.loki_push_urls)  # issue 15
        published = plan.published if plan is not None else real_targets
        if is_leader:
            self._publish_cluster(workers, labels, authorised, published)
        if self.mesh is not None:
            self.mesh.update_service_mesh()
        self._reconcile_telemetry_relations(workers)
        if self.observability is not None:  # issue 15
            self.observability.reconcile(workers)
        self._publish_catalogue()
        if is_leader and not in_sync:
            self._remember_applied(desired, labels_known)

    def _kubernetes_fingerprint(self, labels: dict[str, str], workers: Sequence[WorkerApp]) -> str:
        mesh_type = self.mesh.mesh_type() if self.mesh is not None else None
        return _sync.fingerprint(
            labels=labels,
            mesh_type=mesh_type.value if mesh_type else None,
            workers=sorted(worker.name for worker in workers),
        )

    def _remember_applied(self, desired: str, labels_known: bool) -> None:
        """Record `desired` as applied only if every Kubernetes step ran and succeeded."""
        complete = labels_known and not self._mesh_data_broken()
        self._applied.kubernetes = desired if complete and not self._kubernetes_failed else ""

    def _reconcile_labels(
        self, client: lightkube.Client, labels: dict[str, str], force: bool
    ) -> None:
        reconcile_charm_labels(
            client,
            self.app_name,
            self.model.name,
            mesh.pod_labels_configmap(self.app_name),
            labels,
            force=force,
        )

    def _reconcile_nginx(self, workers: Sequence[WorkerApp], plan: ProxyPlan | None) -> None:
        nginx = self.config.nginx_container
        try:
            rendered = render(self._nginx_inputs(workers, plan))
        except (NoNameserverError, NginxConfigError) as e:
            # Nothing is pushed: nginx keeps running the last config it accepted.
            self._nginx_problem(f"nginx: {e}")
        else:
            for refused in rendered.refused:
                self._problems.append(
                    Problem.blocked(f"nginx: refused {refused.key}: {refused.reason}")
                )
            workload = NginxWorkload(self._charm.unit.get_container(nginx))
            pending = self._applied.nginx_reload_pending
            try:
                self._pebble_reachable[nginx] = workload.reconcile(
                    rendered.text, reload_pending=pending
                )
            except (NginxConfigRejectedError, NginxReloadError) as e:
                self._nginx_problem(f"nginx: {e}")
            except ops.pebble.Error as e:
                logger.error("%s: Pebble failed: %s", nginx, safe_text(str(e), 500))
                self._problems.append(pebble_problem(nginx, e))
            if workload.reload_pending != pending:  # stored state written only on a change
                self._applied.nginx_reload_pending = workload.reload_pending
        self._reconcile_exporter()

    def _nginx_problem(self, message: str) -> None:
        logger.error("%s", safe_text(message, 2000))
        self._problems.append(Problem.blocked(message))

    def _reconcile_exporter(self) -> None:
        exporter = self.config.exporter_container
        layer = exporter_layer(stub_status_url(self.config.status_port), self.config.exporter_port)
        try:
            self._pebble_reachable[exporter] = ExporterWorkload(
                self._charm.unit.get_container(exporter)
            ).reconcile(layer)
        except ops.pebble.Error as e:
            logger.error("%s: Pebble failed: %s", exporter, safe_text(str(e), 500))
            self._problems.append(pebble_problem(exporter, e))

    def _nginx_inputs(self, workers: Sequence[WorkerApp], plan: ProxyPlan | None) -> NginxInputs:
        by_role: dict[str, list[str]] = {}
        for worker in workers:
            if worker.units:
                for role in worker.roles:
                    by_role.setdefault(role, []).append(worker.name)
        return NginxInputs(
            model=self.model.name,
            api_port=self.config.api_port,
            routes=self.config.routes,
            workers_by_role=by_role,
            resolver=self._resolver(),
            status_port=self.config.status_port,
            proxy_port=self.proxy_port,
            proxy=plan,
            worker_apps=[worker.name for worker in workers],
            worker_metrics_port=self.config.worker_metrics_port,
            ipv6=self.config.ipv6 and pod_has_ipv6(),
            servers=self.config.servers,
        )

    def _resolver(self) -> str:
        """The pod's DNS server: nginx resolves worker Services through it at request time."""
        try:
            with open(RESOLV_CONF, encoding="utf-8") as resolv_conf:
                return resolver_from_resolv_conf(resolv_conf.read())
        except OSError as e:
            raise NoNameserverError(f"cannot read {RESOLV_CONF}: {e}") from e

    def _enrolled(
        self,
        app: str,
        labels: dict[str, str],
        authorised: _Authorised,
        published_by_app: dict[str, dict[str, str]],
    ) -> dict[str, str]:
        """The pod labels ``app`` gets now: ``labels`` once its policies are in place.

        Before that, the membership label alone (the policies select members by it). When it
        could not be found out (``KEEP``), an app keeps what its bag carries already.
        """
        if authorised is None or (isinstance(authorised, frozenset) and app in authorised):
            return labels
        membership = mesh.membership_labels(self.app_name)
        if authorised is _KEEP and app in published_by_app:
            return {**published_by_app[app], **membership}
        return membership

    def _publish_cluster(
        self,
        workers: Sequence[WorkerApp],
        labels: dict[str, str],
        authorised: _Authorised,
        telemetry: TelemetryTargets,
    ) -> None:
        s3 = self.s3.reconcile(self.model.relations[self.config.endpoints.cluster])
        context = WorkerConfigContext(
            model=self.model.name,
            coordinator_host=self.host,
            workers=workers,
            telemetry=telemetry,
            s3=s3.info,
        )
        data = ClusterProviderAppData(
            worker_config=self.config.worker_config(context),
            loki_endpoints=dict(telemetry.loki_push_urls) or None,
            charm_tracing_receivers=dict(telemetry.charm_tracing) or None,
            workload_tracing_receivers=dict(telemetry.workload_tracing) or None,
            remote_write_endpoints=[
                RemoteWriteEndpoint(url=url) for url in telemetry.remote_write_urls
            ]
            or None,
            worker_labels=mesh.membership_labels(self.app_name),  # for a relation without app
            s3_secret_id=s3.secret_id,
            s3_tls_ca_chain=s3.ca_chain,
        )
        published_by_app = self._published_labels_by_app() if authorised is _KEEP else {}
        self.cluster.publish(
            data,
            worker_ports=self.config.worker_ports,
            worker_labels=lambda app: self._enrolled(app, labels, authorised, published_by_app),
        )

    def _reconcile_policies_step(
        self, workers: Sequence[WorkerApp], apply_policies: bool
    ) -> _Authorised:
        """Reconcile the cluster-internal policies; return which apps may be enrolled.

        None when there is nothing to hold back (no mesh, nothing changed since the last
        complete apply, or not the leader), the set of apps whose policies are in place after
        a reconcile (complete or partial), or ``KEEP`` when that could not be found out.
        """
        if self.mesh is None or not apply_policies:
            return None
        if self._mesh_data_broken():
            # Malformed mesh data is not "no mesh": keep the policies in place until it is
            # fixed, rather than delete them (the status names the problem).
            return _KEEP
        mesh_type = self.mesh.mesh_type()
        if mesh_type is None:
            self._kubernetes_step(
                "cluster-internal policies", lambda client: self._policy_manager(client).delete()
            )
            return None
        try:
            policies = self._cluster_internal_policies(workers)
        except ValueError as e:  # our own names refused: nothing can be applied
            logger.error("cluster-internal policies: %s", e)
            self._problems.append(Problem.blocked(f"cluster-internal policies: {e}"))
            self._kubernetes_failed = True  # not applied: every hook checks (and reports) again
            return _KEEP
        managers: list[PolicyResourceManager] = []

        def reconcile(client: lightkube.Client) -> None:
            managers.append(self._policy_manager(client))
            managers[0].reconcile(policies, mesh_type)

        self._kubernetes_step("cluster-internal policies", reconcile)
        result = managers[0].last_result if managers else None
        if result is None:
            return _KEEP
        in_place = {name.rpartition("/")[2] for name in result.in_place}
        by_app: dict[str, list[str]] = {}
        for policy in policies:
            name = policy_name(self.app_name, self.model.name, policy)
            by_app.setdefault(policy.source_app_name, []).append(name)
        return frozenset(
            app for app, names in by_app.items() if all(name in in_place for name in names)
        )

    def _cluster_internal_policies(self, workers: Sequence[WorkerApp]) -> list[MeshPolicy]:
        """The policies for every worker app whose name Juju and Kubernetes would accept.

        Juju only relates apps with valid names; a name our rules refuse anyway (a fake
        Juju, a rule of ours stricter than Juju's) must not take the other apps' policies
        down: that app is left out (and so never enrolled), and the status names it.

        Raises:
            ValueError: the coordinator's own app or model name is refused.
        """
        mesh.cluster_internal_policies(self.app_name, self.model.name, [])  # our own names
        accepted: list[str] = []
        for worker in workers:
            try:
                mesh.cluster_internal_policies(self.app_name, self.model.name, [worker.name])
            except ValueError:
                shown = safe_text(worker.name, 60)
                logger.error("cluster-internal policies: worker app name %r refused", shown)
                self._kubernetes_failed = True  # so the status keeps naming it in later hooks
                self._problems.append(
                    Problem.blocked(
                        f"cluster-internal policies: worker app name {shown!r} is not one "
                        "Juju and Kubernetes accept"
                    )
                )
                continue
            accepted.append(worker.name)
        return mesh.cluster_internal_policies(self.app_name, self.model.name, accepted)

    def _policy_manager(self, client: lightkube.Client) -> PolicyResourceManager:
        # Every cluster-internal policy is in our namespace; listing only there keeps a
        # coordinator elsewhere whose upstream labels equal ours (app "a-b" in model "c",
        # app "a" in model "b-c") from having its policies deleted as ours. Our StatefulSet
        # owns them: Kubernetes deletes them when Juju removes this app, and only then.
        return PolicyResourceManager(
            self._charm,
            client,
            mesh.policy_manager_labels(self.app_name, self.model.name),
            namespace=self.model.name,
            owner_statefulset=self.app_name,
        )

    def _publish_catalogue(self) -> None:
        """The catalogue entry, where the charm has one and declares the endpoint."""
        endpoint = self.config.endpoints.catalogue
        item = self.config.catalogue
        if item is not None and endpoint is not None and endpoint in self._charm.meta.relations:
            CatalogueRequirer(self._charm, endpoint).publish(item(self.host))

    def _s3_requirer(self) -> S3Requirer | None:
        """The ``s3`` endpoint when the charm declares one.

        Raises:
            ValueError: storage is required but the charm declares no such endpoint.
        """
        endpoint = self.config.endpoints.s3
        if endpoint is not None and endpoint in self._charm.meta.relations:
            return S3Requirer(self._charm, endpoint)
        if self.config.s3_required:
            raise ValueError(f"s3_required, but the charm has no {endpoint!r} endpoint")
        return None

    # --- telemetry -----------------------------------------------------------------------

    def _telemetry_targets(self) -> TelemetryTargets:
        endpoints = self.config.endpoints
        loki: dict[str, str] = {}
        remote_write: list[str] = []
        charm_tracing: dict[str, str] = {}
        workload_tracing: dict[str, str] = {}
        if endpoints.logging:
            loki = self._read(
                "logging", LokiPushApiRequirer(self._charm, endpoints.logging).push_urls()
            )
        if endpoints.remote_write:
            remote_write = self._read(
                "remote-write", RemoteWriteRequirer(self._charm, endpoints.remote_write).urls()
            )
        if endpoints.charm_tracing:
            offered = self._read(
                "charm-tracing", self._charm_tracing_requirer(endpoints.charm_tracing).receivers()
            )
            charm_tracing = {k: v for k, v in offered.items() if k == _charm_tracing.OTLP_HTTP}
        if endpoints.workload_tracing:
            protocols = list(self.config.workload_tracing_protocols)
            offered = self._read(
                "workload-tracing",
                self._tracing(endpoints.workload_tracing, protocols).receivers(),
            )
            workload_tracing = {k: v for k, v in offered.items() if k in protocols}
        return TelemetryTargets(
            loki_push_urls=loki,
            remote_write_urls=remote_write,
            charm_tracing=charm_tracing,
            workload_tracing=workload_tracing,
        )

    def _tracing(self, endpoint: str, protocols: Sequence[str]) -> TracingRequirer:
        return TracingRequirer(self._charm, endpoint, protocols)

    def _charm_tracing_requirer(self, endpoint: str) -> TracingRequirer:
        # The only writer of the charm-tracing databag: ops.tracing.Tracing is not used.
        return self._tracing(endpoint, [_charm_tracing.OTLP_HTTP])

    def _reconcile_charm_tracing(self, targets: TelemetryTargets) -> None:
        """Send our own charm traces to the real receiver (our proxy is for workers only).

        An https receiver is verified with the system's CAs. Without a ``charm_tracing``
        endpoint the destination is left alone: the charm may manage ``ops.tracing`` itself.
        """
        if not self.config.endpoints.charm_tracing:
            return
        try:
            _charm_tracing.set_destination(targets.charm_tracing.get(_charm_tracing.OTLP_HTTP))
        except ValueError as e:
            message = f"charm-tracing: {safe_text(str(e), 300)}"
            logger.warning("%s", message)
            self._problems.append(Problem.blocked(message))

    def _read(self, what: str, reading: Reading[_T]) -> _T:
        """The usable part of a reading; what it ignored (the reader logs it) goes in a status."""
        for problem in reading.problems:
            self._problems.append(Problem.blocked(f"{what}: {safe_text(str(problem), 300)}"))
        return reading.value

    def _proxy_plan(self, targets: TelemetryTargets) -> ProxyPlan | None:
        """The proxy's routes; each target it cannot serve (logged there) goes in a status."""
        port = self.proxy_port
        if port is None:
            return None
        plan = plan_proxy(targets, self.host, port)
        for skipped in plan.skipped:
            key = safe_text(skipped.key, 80)
            self._problems.append(
                Problem.blocked(f"not proxying {skipped.kind} {key}: {skipped.reason}")
            )
        return plan

    def _reconcile_telemetry_relations(self, workers: Sequence[WorkerApp]) -> None:
        endpoints = self.config.endpoints
        if endpoints.charm_tracing:
            self._charm_tracing_requirer(endpoints.charm_tracing).request_protocols()
        if endpoints.workload_tracing:
            self._tracing(
                endpoints.workload_tracing, self.config.workload_tracing_protocols
            ).request_protocols()
        if endpoints.metrics:
            port = self.proxy_port
            jobs = scrape_jobs(
                workers,
                self._coordinator_units(),
                model=self.model.name,
                model_uuid=self.model.uuid,
                worker_metrics_port=self.config.worker_metrics_port,
                proxy_target=None if port is None else f"{self.host}:{port}",
                tls=False,
                exporter_port=self.config.exporter_port,
            )
            MetricsEndpointProvider(self._charm, endpoints.metrics).publish(
                jobs, unit_address=self._unit_fqdn(self._charm.unit.name)
            )

    def _forward_own_logs(self, loki_urls: Mapping[str, str]) -> None:
        """Forward the nginx and exporter containers' logs straight to Loki (issue 15)."""
        names = (self.config.nginx_container, self.config.exporter_container)
        reachable = {name: bool(self._pebble_reachable.get(name)) for name in names}
        self._problems.extend(self._own_logs.reconcile(reachable, loki_urls))

    def _coordinator_units(self) -> dict[str, str]:
        """Every coordinator unit -> its pod FQDN, derived from unit names (no peer data)."""
        names = {self._charm.unit.name}
        peers = self.config.endpoints.peers
        # A charm without the (optional) peer endpoint simply has no other units to list.
        if peers is not None and peers in self._charm.meta.peers:
            relation = self.model.get_relation(peers)
        else:
            relation = None
        if relation is not None:
            names.update(unit.name for unit in relation.units)
        return {name: self._unit_fqdn(name) for name in sorted(names)}

    def _unit_fqdn(self, unit_name: str) -> str:
        """A Kubernetes sidecar unit's pod FQDN through the app's headless Service."""
        pod = unit_name.replace("/", "-")
        return f"{pod}.{service_host(self.app_name, self.model.name)}"

    # --- Kubernetes --------------------------------------------------------------------

    def _kubernetes_step(self, what: str, step: Callable[[lightkube.Client], object]) -> None:
        try:
            step(self._kubernetes())
        except KubernetesError as e:
            logger.error("%s: %s", what, safe_text(str(e), 1000))
            self._kubernetes_failed = True
            self._problems.append(kubernetes_problem(what, e, self.app_name))

    def _kubernetes(self) -> lightkube.Client:
        if self._client is None:
            self._client = kubernetes_client(
                self.model.name, mesh.policy_field_manager(self.app_name, self.model.name)
            )
        return self._client

    def _close_kubernetes(self) -> None:
        """End the hook's connection to the API server (steps of one hook share it)."""
        if self._client is not None:
            self._client.close()
            self._client = None
