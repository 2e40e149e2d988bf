# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The coordinator: one reconcile path that keeps nginx, workers, labels and policies in step.

Every hook runs :meth:`Coordinator.reconcile` once, which reads as its three parts:

1. **gather** every input once (cluster relation, mesh relation, telemetry relations, the
   pod's resolver, and on the leader the s3 connection it keeps shared with workers through a
   Juju secret) into ``CoordinatorInputs``;
2. **plan**: ``_plan.plan_coordinator`` computes the desired state, a frozen
   ``CoordinatorPlan``, without side effects;
3. **apply** it in named steps (``_steps``), in this order, each returning its problems:
   cluster-internal AuthorizationPolicies (leader); own pod labels (leader); compute resources
   (leader); where this charm's own traces go; nginx and the exporter through Pebble; their
   own logs to Loki; the cluster relation (leader); external policies to the beacon; telemetry
   relations; alert rules and dashboards (leader); the catalogue entry (leader); the Grafana
   datasources exchanged with other clusters (leader, only while that exchange is related).

No enrolment before authorisation: an app (the coordinator itself, or a worker app) is given
the mesh labels only once the cluster-internal policies that let it talk are in the cluster.
A new worker app's two policies are applied before its bag carries the mesh labels; if they
fail, it gets the membership label alone and the next hook tries again.

A step that fails (Kubernetes refusing a call, a remote app's malformed data) gives a
:class:`Problem` and the later steps still run; the charm turns problems into a status in
collect-status, and the next hook retries. The library never sets a status itself.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, TypeVar, cast

import ops

from service_mesh import AppPolicy, ServiceMeshConsumer, UnitPolicy, safe_text

from . import _charm_tracing, _steps, _sync, _tls, _tls_share
from . import _mesh as mesh
from ._cluster import ClusterProvider, pod_host
from ._cluster_data import ClusterDataError, ClusterProviderAppData
from ._config import CoordinatorConfig, CoordinatorEndpoints, WorkloadConfigContext
from ._events import observe_reconcile_events
from ._ipv6 import pod_has_ipv6
from ._log_forwarding import OwnLogForwarding
from ._nginx import NoNameserverError, resolver_from_resolv_conf
from ._plan import (
    Authorised,
    CoordinatorInputs,
    CoordinatorPlan,
    MeshInputs,
    coordinator_host,
    plan_coordinator,
    pod_labels,
)
from ._resources import ResourcePatch
from ._routing import mesh_policies
from ._s3 import S3Requirer
from ._s3_share import S3Share, SharedS3
from ._status import Problem
from ._telemetry_proxy import TelemetryTargets
from ._tls import CoordinatorTls, ServerCertificate
from ._tls_share import TlsKeyShare
from ._version import VersionReporter, nginx_version
from .observability import ObservabilityEndpoints, SelfObservability
from .telemetry.loki_push_api import LokiPushApiRequirer
from .telemetry.prometheus_scrape import MetricsEndpointProvider
from .telemetry.remote_write import RemoteWriteRequirer
from .telemetry.tracing import TracingRequirer

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._datasource_exchange import DatasourceExchange
    from .telemetry._databag import Reading

__all__ = [
    "Coordinator",
    "CoordinatorConfig",
    "CoordinatorEndpoints",
    "CoordinatorPlan",
    "WorkloadConfigContext",
]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

RESOLV_CONF = "/etc/resolv.conf"


@dataclasses.dataclass(frozen=True)
class _Outcome:
    """What the last reconcile of this hook found: its problems, and which Pebbles answered."""

    problems: tuple[Problem, ...] = ()
    pebble_reachable: dict[str, bool] = dataclasses.field(default_factory=dict[str, bool])


class Coordinator(ops.Object):
    """Wires a coordinator charm: observe, reconcile, and report problems for collect-status."""

    _applied = ops.StoredState()

    def __init__(self, charm: ops.CharmBase, config: CoordinatorConfig) -> None:
        super().__init__(charm, "coordinator")
        self._applied.set_default(
            kubernetes="",
            nginx_reload_pending=False,
            ports="",
            nginx_certificate="",
            **_tls.STORED_DEFAULTS,
            **_tls_share.STORED_DEFAULTS,
        )
        self._charm = charm
        self.config = config
        endpoints = config.endpoints
        self.cluster = ClusterProvider(charm, endpoints.cluster, roles_config=config.roles)
        # Before the mesh consumer: the proxy port its policies name depends on TLS.
        self.tls = CoordinatorTls(
            charm, endpoints.certificates, self._certificate_sans, self._applied
        )
        self.tls_key = TlsKeyShare(charm, endpoints.cluster, self._applied)
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
        self._outcome = _Outcome()
        self._datasource_exchange: DatasourceExchange | None = None
        self._external_url: tuple[str, Problem | None] | None = None
        # --- features: self-observability, object storage, compute resources, version ---
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
        self.s3 = S3Share(charm, self._s3_requirer(), config.s3_required)
        self.resources = (
            ResourcePatch(charm, config.resources, config.nginx_container)
            if config.resources is not None
            else None
        )
        if observe_reconcile_events(charm, self._on_reconcile_event) is None:
            self._observe_actions()  # a hook Juju names never needs them
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
        return coordinator_host(self.app_name, self.model.name)

    @property
    def proxy_ports(self) -> tuple[int, ...]:
        """Ports the worker telemetry proxy may serve on, for the mesh policies.

        Its HTTP port, and while the certificates endpoint is related its https one too:
        nginx moves there with the certificate, which may come a hook later.
        """
        proxy = self.config.telemetry_proxy
        if proxy is None:
            return ()
        ports = [proxy.http_port]
        if self.tls.related:
            ports.append(proxy.port(tls=True))
        return tuple(dict.fromkeys(ports))

    @property
    def external_url(self) -> str:
        """Where clients reach the coordinator, e.g. for a catalogue entry's URL.

        The configured (ingress) URL, else the internal one, ``http://<Service FQDN>:<api_port>``
        (``https`` once a certificate is served; also while the configured one is invalid).
        """
        return self._resolved_external_url()[0]

    @property
    def datasource_exchange(self) -> DatasourceExchange | None:
        """The Grafana datasource exchange (`received()`, `correlated()`), or None.

        None when the charm declares neither endpoint; its module loads on first use only.
        """
        endpoints = self.config.endpoints
        names = (endpoints.send_datasource, endpoints.receive_datasource)
        if not any(name in self._charm.meta.relations for name in names):
            return None
        if self._datasource_exchange is None:
            from ._datasource_exchange import DatasourceExchange

            self._datasource_exchange = DatasourceExchange(
                self._charm, endpoints.send_datasource, endpoints.receive_datasource
            )
        return self._datasource_exchange

    def external_policies(self) -> list[AppPolicy | UnitPolicy]:
        """Default external policies followed by the charm's own."""
        metrics, exporter_port = self.config.endpoints.metrics, self.config.exporter_port
        ports, proxy = self.proxy_ports, self.config.telemetry_proxy
        # The port nginx serves TLS on while certificates is related: no L7 rule can match it.
        tls_port = proxy.port(tls=True) if proxy is not None and self.tls.related else None
        defaults = mesh.default_external_policies(metrics, exporter_port, None)
        for port in ports:
            defaults += mesh.default_external_policies(
                metrics, exporter_port, port, tls=port == tls_port
            )[1:]
        routed = mesh_policies(self.config.servers)  # who may reach which server
        return mesh.external_policies(defaults, [*routed, *self.config.charm_mesh_policies])

    def pod_labels(self) -> dict[str, str]:
        """Labels for coordinator and worker pods: membership, plus mesh labels when meshed.

        While the mesh's data is malformed, the labels last published to workers are kept
        (leader only: others cannot read them), so bad data never pulls the cluster out of
        the mesh.
        """
        return pod_labels(self.app_name, self._mesh_inputs())

    @property
    def problems(self) -> tuple[Problem, ...]:
        """What keeps this unit from being active, for the charm's collect-status.

        Standing problems (cluster consistency, remote data, containers) are read now, so they
        are right even in hooks that do not reconcile; failures of this hook's reconcile (a
        Kubernetes error) are added to them.
        """
        return (*self._standing_problems(), *self._outcome.problems)

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
        problems.extend(self.cluster.problems)
        if self.mesh is not None:
            problems.extend(
                Problem(p.level, f"service-mesh: {p.message}") for p in self.mesh.problems
            )
        if self.observability is not None:  # files left out of rules or dashboards
            problems.extend(Problem.blocked(p) for p in self.observability.problems)
        problems.extend(self.s3.problems())
        problems.extend(self._url_and_datasource_problems())
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
        reachable = self._outcome.pebble_reachable.get(container)
        if reachable is None:
            reachable = self._charm.unit.get_container(container).can_connect()
        return reachable

    # --- actions -----------------------------------------------------------------------------

    def _observe_actions(self) -> None:
        action = self.config.show_mesh_action
        if action is not None and action in self._charm.meta.actions:
            self.framework.observe(self._charm.on[action].action, self._on_show_mesh)

    def _on_show_mesh(self, event: ops.ActionEvent) -> None:
        """Print the live allow matrix and how the namespace differs from what we intend."""
        from . import _show_mesh  # only this action uses it (and the allow matrix)

        _show_mesh.run(self, event)

    # --- reconcile: gather, plan, apply ----------------------------------------------------

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
        inputs = self._gather(force_labels, verify)
        plan = plan_coordinator(self.config, inputs)
        charm, config = self._charm, self.config
        with _steps.KubernetesSession(self.app_name, self.model.name) as kube:
            # Policies first: no app gets the mesh labels before the policies that let it talk.
            policies = _steps.apply_policies(kube, charm, plan)
            labels = _steps.apply_own_labels(kube, plan, policies.authorised, charm, force_labels)
        resources = _steps.apply_resources(self.resources, verify=verify or force_labels)
        tracing = _steps.apply_charm_tracing(plan, bool(config.endpoints.charm_tracing))
        nginx_container = self._container(config.nginx_container)
        # The certificate goes on disk before nginx checks a config that names it, and away
        # only after nginx stopped reading it; a new one makes the reload due.
        certificate = _steps.write_certificate(
            nginx_container, plan, self.tls.private_key, self._applied.nginx_certificate, verify
        )
        nginx = _steps.apply_nginx(
            nginx_container,
            plan,
            self._applied.nginx_reload_pending or certificate.changed,
        )
        if plan.tls is None:
            certificate = _steps.remove_certificate(
                nginx_container, self._applied.nginx_certificate
            )
        if certificate.fingerprint != self._applied.nginx_certificate:
            self._applied.nginx_certificate = certificate.fingerprint
        exporter = _steps.apply_exporter(self._container(config.exporter_container), plan)
        reachable = {
            config.nginx_container: nginx.reachable,
            config.exporter_container: exporter.reachable,
        }
        own_logs = _steps.forward_own_logs(
            self._own_logs,
            {name: bool(answered) for name, answered in reachable.items()},
            inputs.telemetry.loki_push_urls,
        )
        self._open_ports(plan, verify)
        if plan.cluster_data is not None:  # leader only
            self._publish_cluster(plan.cluster_data, plan, policies.authorised)
        if self.mesh is not None:
            self.mesh.update_service_mesh()
        self._publish_telemetry(plan)
        observability = _steps.publish_observability(self.observability, inputs.workers)
        catalogue = _steps.publish_catalogue(charm, config.endpoints.catalogue, plan)
        self._publish_datasources()
        self._remember(plan, complete=policies.complete and labels.complete)
        if nginx.reload_pending != self._applied.nginx_reload_pending:  # written on a change
            self._applied.nginx_reload_pending = nginx.reload_pending
        self._outcome = _Outcome(
            problems=(
                *policies.problems,
                *labels.problems,
                *resources.problems,
                *inputs.telemetry_problems,
                *tracing.problems,
                *inputs.tls_problems,
                *certificate.problems,
                *plan.proxy_problems,
                *nginx.problems,
                *exporter.problems,
                *own_logs.problems,
                *observability.problems,
                *catalogue.problems,
            ),
            pebble_reachable={k: v for k, v in reachable.items() if v is not None},
        )

    def _open_ports(self, plan: CoordinatorPlan, verify: bool) -> None:
        """Open the ports nginx and the exporter serve on, as a worker opens its own.

        Juju is asked only when they changed or the event verifies (``opened-ports`` is a
        hook tool call), and the record is written only on a change.
        """
        wanted = ",".join(map(str, plan.ports))  # a str: stored state keeps it unwrapped
        changed = wanted != self._applied.ports
        if verify or changed:
            self._charm.unit.set_ports(*plan.ports)
        if changed:
            self._applied.ports = wanted

    def _container(self, name: str) -> ops.Container:
        return self._charm.unit.get_container(name)

    def _remember(self, plan: CoordinatorPlan, *, complete: bool) -> None:
        """Record the plan's fingerprint as applied only if every Kubernetes step succeeded."""
        if plan.apply_kubernetes:
            complete = complete and plan.mesh_complete
            self._applied.kubernetes = plan.fingerprint if complete else ""

    def _publish_cluster(
        self, data: ClusterProviderAppData, plan: CoordinatorPlan, authorised: Authorised
    ) -> None:
        """Every worker's bag: the plan's data, with the labels its app may carry now."""
        self.cluster.publish(
            data,
            worker_ports=self.config.worker_ports,
            worker_labels=_steps.worker_labels(
                plan, self.app_name, authorised, self._published_labels_by_app
            ),
        )

    def _publish_telemetry(self, plan: CoordinatorPlan) -> None:
        endpoints = self.config.endpoints
        if endpoints.charm_tracing:
            self._charm_tracing_requirer(endpoints.charm_tracing).request_protocols()
        if endpoints.workload_tracing:
            self._tracing(
                endpoints.workload_tracing, self.config.workload_tracing_protocols
            ).request_protocols()
        if endpoints.metrics and plan.scrape_jobs is not None:
            address, path = self._scrape_address(plan.unit_address)
            MetricsEndpointProvider(self._charm, endpoints.metrics).publish(
                plan.scrape_jobs, unit_address=address, unit_path=path
            )

    def _scrape_address(self, pod_address: str) -> tuple[str, str]:
        """The unit address and path Prometheus is given: the pod's, or the external URL's.

        As upstream's provider does with its ``external_url``; the jobs keep their targets.
        """
        if self.config.external_url is None:
            return pod_address, ""
        url, problem = self._resolved_external_url()
        if problem is not None or url == self._internal_url():
            return pod_address, ""
        from ._external_url import scrape_address

        return scrape_address(url)

    def _internal_url(self) -> str:
        """The API on our Service; https once a certificate has been adopted (stored state)."""
        scheme = "https" if self._applied.tls_certificate else "http"
        return f"{scheme}://{self.host}:{self.config.api_port}"

    def _resolved_external_url(self) -> tuple[str, Problem | None]:
        """The external URL and why the configured one was refused, worked out once a hook."""
        if self._external_url is None:
            configured = self.config.external_url
            if callable(configured):
                configured = configured()
            if configured is None:
                self._external_url = (self._internal_url(), None)
            else:
                from ._external_url import ExternalUrlError, validated_external_url

                try:
                    self._external_url = (validated_external_url(configured), None)
                except ExternalUrlError as e:
                    message = f"external_url {safe_text(repr(configured), 100)}: {e}"
                    logger.warning("%s; using the internal URL", message)
                    self._external_url = (self._internal_url(), Problem.blocked(message))
        return self._external_url

    def _publish_datasources(self) -> None:
        """Our datasources to the other clusters (leader, while the exchange is related)."""
        if self.config.datasources is None or not self._charm.unit.is_leader():
            return
        exchange = self._related_exchange()
        if exchange is not None:
            exchange.publish(self.config.datasources())

    def _related_exchange(self) -> DatasourceExchange | None:
        """The exchange while one of its endpoints has a relation: its module loads only then."""
        endpoints = self.config.endpoints
        names = (endpoints.send_datasource, endpoints.receive_datasource)
        declared = self._charm.meta.relations
        if any(self.model.relations[n] for n in names if n is not None and n in declared):
            return self.datasource_exchange
        return None

    def _url_and_datasource_problems(self) -> list[Problem]:
        problems: list[Problem] = []
        if self.config.external_url is not None:
            problem = self._resolved_external_url()[1]
            problems.extend([problem] if problem is not None else [])
        exchange = self._related_exchange()
        if exchange is not None:
            problems.extend(
                Problem.blocked(f"datasource exchange: {safe_text(str(p), 300)}")
                for p in exchange.received().problems
            )
        return problems

    # --- gathering the inputs ----------------------------------------------------------------

    def _gather(self, force_labels: bool, verify: bool) -> CoordinatorInputs:
        """Read everything a reconcile depends on, once."""
        telemetry, telemetry_problems = self._telemetry_targets()
        is_leader = self._charm.unit.is_leader()
        tls = self.tls.reconcile()
        key_secret_id = self._shared_tls_key(tls) if is_leader else None
        return CoordinatorInputs(
            app=self.app_name,
            model=self.model.name,
            model_uuid=self.model.uuid,
            unit=self._charm.unit.name,
            is_leader=is_leader,
            workers=tuple(self.cluster.workers()),
            coordinator_units=self._coordinator_units(),
            mesh=self._mesh_inputs(),
            telemetry=telemetry,
            telemetry_problems=telemetry_problems,
            resolver=self._resolver(),
            ipv6=self.config.ipv6 and pod_has_ipv6(),
            force_labels=force_labels,
            verify=verify,
            applied_fingerprint=self._applied.kubernetes,
            s3=self._shared_s3() if is_leader else None,
            tls=tls,
            tls_key_secret_id=key_secret_id,
            tls_problems=(*self.tls.problems, *(self.tls_key.problems if is_leader else ())),
        )

    def _shared_tls_key(self, tls: ServerCertificate | None) -> str | None:
        """The secret with our key, granted to every worker app (leader only)."""
        relations = self.model.relations[self.config.endpoints.cluster]
        published = None
        if relations and tls is not None:  # the leader's own bag: what the last leader shared
            try:
                data = ClusterProviderAppData.load(relations[0].data[self._charm.app])
                published = data.server_cert
            except (ClusterDataError, ops.ModelError):
                published = None
        return self.tls_key.reconcile(tls, self.tls.private_key, relations, published=published)

    def _certificate_sans(self) -> list[str]:
        """The names our certificate must hold: the Service, each of our pods, each worker.

        Workers serve the leader's certificate, so their pods' names are in it too: derived
        from the unit names Juju gives, never the address a worker writes in its bag, or any
        app related on ``cluster`` could put any name on a certificate whose key it receives.
        """
        model = self.model.name
        names = [self.host, *(pod_host(unit, model) for unit in self._coordinator_units())]
        names += [pod_host(u.name, model) for app in self.cluster.workers() for u in app.units]
        return sorted(set(names))

    def _shared_s3(self) -> SharedS3:
        """The object storage workers get: the leader keeps the secret they read in step."""
        return self.s3.reconcile(self.model.relations[self.config.endpoints.cluster])

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

    def _mesh_inputs(self) -> MeshInputs | None:
        if self.mesh is None:
            return None
        enabled = self.mesh.enabled
        broken = self.mesh.provider_problem is not None
        last_good = self._published_labels() if broken else None
        return MeshInputs(
            enabled=enabled,
            broken=broken,
            mesh_type=self.mesh.mesh_type(),
            labels=self.mesh.labels() if enabled and last_good is None else {},
            last_good=last_good,
        )

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

    def _resolver(self) -> str | NoNameserverError:
        """The pod's DNS server: nginx resolves worker Services through it at request time."""
        try:
            with open(RESOLV_CONF, encoding="utf-8") as resolv_conf:
                return resolver_from_resolv_conf(resolv_conf.read())
        except OSError as e:
            return NoNameserverError(f"cannot read {RESOLV_CONF}: {e}")
        except NoNameserverError as e:
            return e

    def _coordinator_units(self) -> tuple[str, ...]:
        """Every coordinator unit's name, from the peer relation (no peer data read)."""
        names = {self._charm.unit.name}
        peers = self.config.endpoints.peers
        # A charm without the (optional) peer endpoint simply has no other units to list.
        if peers is not None and peers in self._charm.meta.peers:
            relation = self.model.get_relation(peers)
        else:
            relation = None
        if relation is not None:
            names.update(unit.name for unit in relation.units)
        return tuple(sorted(names))

    def _telemetry_targets(self) -> tuple[TelemetryTargets, tuple[Problem, ...]]:
        """The real telemetry targets, and what the readers ignored (the reader logs it)."""
        endpoints = self.config.endpoints
        problems: list[Problem] = []

        def read(what: str, reading: Reading[_T]) -> _T:
            problems.extend(
                Problem.blocked(f"{what}: {safe_text(str(problem), 300)}")
                for problem in reading.problems
            )
            return reading.value

        loki: dict[str, str] = {}
        remote_write: list[str] = []
        charm_tracing: dict[str, str] = {}
        workload_tracing: dict[str, str] = {}
        if endpoints.logging:
            loki = read("logging", LokiPushApiRequirer(self._charm, endpoints.logging).push_urls())
        if endpoints.remote_write:
            remote_write = read(
                "remote-write", RemoteWriteRequirer(self._charm, endpoints.remote_write).urls()
            )
        if endpoints.charm_tracing:
            offered = read(
                "charm-tracing", self._charm_tracing_requirer(endpoints.charm_tracing).receivers()
            )
            charm_tracing = {k: v for k, v in offered.items() if k == _charm_tracing.OTLP_HTTP}
        if endpoints.workload_tracing:
            protocols = list(self.config.workload_tracing_protocols)
            offered = read(
                "workload-tracing",
                self._tracing(endpoints.workload_tracing, protocols).receivers(),
            )
            workload_tracing = {k: v for k, v in offered.items() if k in protocols}
        targets = TelemetryTargets(
            loki_push_urls=loki,
            remote_write_urls=remote_write,
            charm_tracing=charm_tracing,
            workload_tracing=workload_tracing,
        )
        return targets, tuple(problems)

    def _tracing(self, endpoint: str, protocols: Sequence[str]) -> TracingRequirer:
        return TracingRequirer(self._charm, endpoint, protocols)

    def _charm_tracing_requirer(self, endpoint: str) -> TracingRequirer:
        # The only writer of the charm-tracing databag: ops.tracing.Tracing is not used.
        return self._tracing(endpoint, [_charm_tracing.OTLP_HTTP])
