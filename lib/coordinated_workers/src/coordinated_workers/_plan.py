# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The coordinator's desired state: one pure function from what it read to what it applies.

The coordinator gathers its inputs once per hook into :class:`CoordinatorInputs` (relations,
the mesh's data, telemetry relations, the pod's resolver), :func:`plan_coordinator` turns them
into a frozen :class:`CoordinatorPlan`, and ``_steps`` applies the plan. Nothing here reads Juju,
Pebble or Kubernetes, so a plan can be computed, compared and printed anywhere.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
from typing import TYPE_CHECKING, Literal, TypeAlias

from service_mesh import safe_text
from service_mesh.databag import canonical_json
from service_mesh.istio import policy_name

from . import _charm_tracing
from . import _mesh as mesh
from ._cluster import pod_host
from ._cluster_data import ClusterProviderAppData, RemoteWriteEndpoint
from ._config import WorkloadConfigContext
from ._nginx import (
    NginxConfigError,
    NginxInputs,
    NoNameserverError,
    RenderedConfig,
    exporter_layer,
    render,
    stub_status_url,
)
from ._status import Problem
from ._telemetry_proxy import ProxyPlan, TelemetryTargets, plan_proxy
from .telemetry.prometheus_scrape import scrape_jobs

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import ops

    from service_mesh import MeshPolicy, MeshType

    from ._catalogue import CatalogueItem
    from ._cluster import WorkerApp
    from ._config import CoordinatorConfig
    from ._s3_share import SharedS3
    from ._tls import ServerCertificate
    from .telemetry.prometheus_scrape import ScrapeJob

logger = logging.getLogger(__name__)


class Keep(enum.Enum):
    """Which apps are authorised could not be found out: keep each app's labels as they are."""

    KEEP = "keep"


KEEP = Keep.KEEP

Authorised: TypeAlias = "frozenset[str] | Keep | None"
"""Apps whose cluster-internal policies are in place; None: nothing to hold back."""

PolicyAction = Literal["none", "keep", "delete", "reconcile"]


@dataclasses.dataclass(frozen=True)
class MeshInputs:
    """What the coordinator read from the service-mesh relation (present only with a mesh)."""

    enabled: bool
    broken: bool
    """The provider's data is present but malformed."""
    mesh_type: MeshType | None
    labels: Mapping[str, str]
    """The mesh's pod labels; read only when used (meshed, and no last good labels)."""
    last_good: Mapping[str, str] | None
    """While the data is broken: the labels last published to workers (leader only)."""


@dataclasses.dataclass(frozen=True)
class CoordinatorInputs:
    """Everything a reconcile depends on, read once at the start of the hook."""

    app: str
    model: str
    model_uuid: str
    unit: str
    is_leader: bool
    workers: tuple[WorkerApp, ...]
    coordinator_units: tuple[str, ...]
    """Every coordinator unit's name (this one and its peers), sorted."""
    mesh: MeshInputs | None
    telemetry: TelemetryTargets
    """The real telemetry targets the relations offer (before the proxy)."""
    telemetry_problems: tuple[Problem, ...]
    resolver: str | NoNameserverError
    ipv6: bool
    force_labels: bool
    verify: bool
    applied_fingerprint: str
    """What this unit last applied to Kubernetes without error ("" if unknown)."""
    s3: SharedS3 | None = None
    """The object storage shared with workers (leader only: it keeps the secret they read)."""
    tls: ServerCertificate | None = None
    """This unit's certificate (None: no TLS): nginx serves https, URLs follow."""
    tls_key_secret_id: str | None = None
    """The secret holding the private key, granted to the workers (leader only)."""
    tls_problems: tuple[Problem, ...] = ()
    """What the certificate provider sent that could not be used, or a share that failed."""


@dataclasses.dataclass(frozen=True)
class PolicyPlan:
    """What to do with the cluster-internal AuthorizationPolicies in this hook."""

    action: PolicyAction
    mesh_type: MeshType | None = None
    policies: tuple[MeshPolicy, ...] = ()
    problems: tuple[Problem, ...] = ()
    """Names our rules refuse: the status keeps naming them until they are gone."""


@dataclasses.dataclass(frozen=True)
class CoordinatorPlan:
    """The coordinator's desired state for this hook, computed without side effects."""

    labels: Mapping[str, str]
    """Pod labels of an enrolled app: membership, plus the mesh's labels when meshed."""
    labels_known: bool
    """False while the mesh's data is broken and no labels were published before."""
    fingerprint: str
    """What the Kubernetes steps would apply, to skip them when it was applied already."""
    apply_kubernetes: bool
    """Leader, and something to apply (or an event that verifies the cluster)."""
    policies: PolicyPlan
    charm_tracing: str | None
    """Receiver for our own traces (None: none offered)."""
    proxy: ProxyPlan | None
    proxy_problems: tuple[Problem, ...]
    nginx: RenderedConfig | None
    """None when no config could be rendered: nginx keeps the last one it accepted."""
    nginx_problems: tuple[Problem, ...]
    exporter_layer: ops.pebble.LayerDict
    cluster_data: ClusterProviderAppData | None
    """What every worker's bag carries (leader only)."""
    scrape_jobs: tuple[ScrapeJob, ...] | None
    """None: no metrics endpoint."""
    unit_address: str
    """This unit's pod FQDN."""
    ports: tuple[int, ...]
    """The ports this unit opens: the API, the telemetry proxy and the exporter."""
    mesh_complete: bool
    """The mesh's data was usable: a fingerprint applied now may be remembered."""
    catalogue: CatalogueItem | None = None
    """The catalogue entry to publish (None: the charm has none)."""
    tls: ServerCertificate | None = None
    """The certificate nginx serves (None: plain HTTP)."""

    @property
    def scheme(self) -> str:
        """``https`` with a certificate, else ``http``: the scheme of every URL we publish."""
        return "https" if self.tls is not None else "http"


def plan_coordinator(config: CoordinatorConfig, inputs: CoordinatorInputs) -> CoordinatorPlan:
    """Compute the coordinator's desired state from its inputs (pure)."""
    labels = pod_labels(inputs.app, inputs.mesh)
    mesh_in = inputs.mesh
    broken = mesh_in is not None and mesh_in.broken
    labels_known = not broken or (mesh_in is not None and mesh_in.last_good is not None)
    mesh_type = mesh_in.mesh_type if mesh_in is not None else None
    fingerprint = canonical_json(  # small, so kept as is (see _sync)
        {
            "labels": labels,
            "mesh_type": mesh_type.value if mesh_type else None,
            "workers": sorted(worker.name for worker in inputs.workers),
        }
    )
    in_sync = (
        not (inputs.verify or inputs.force_labels) and fingerprint == inputs.applied_fingerprint
    )
    apply_kubernetes = inputs.is_leader and not in_sync
    host = coordinator_host(inputs.app, inputs.model)
    tls = inputs.tls is not None
    proxy_port = _proxy_port(config, tls)
    proxy, proxy_problems = _proxy(inputs.telemetry, host, proxy_port, tls)
    nginx, nginx_problems = _nginx(config, inputs, proxy, proxy_port)
    published = proxy.published if proxy is not None else inputs.telemetry
    jobs = None
    if config.endpoints.metrics:
        jobs = tuple(
            scrape_jobs(
                inputs.workers,
                {unit: pod_host(unit, inputs.model) for unit in inputs.coordinator_units},
                model=inputs.model,
                model_uuid=inputs.model_uuid,
                worker_metrics_port=config.worker_metrics_port,
                proxy_target=None if proxy_port is None else f"{host}:{proxy_port}",
                tls=tls,
                exporter_port=config.exporter_port,
                ca=inputs.tls.ca if inputs.tls is not None else None,
            )
        )
    return CoordinatorPlan(
        labels=labels,
        labels_known=labels_known,
        fingerprint=fingerprint,
        apply_kubernetes=apply_kubernetes,
        policies=_policies(inputs, apply_kubernetes),
        charm_tracing=inputs.telemetry.charm_tracing.get(_charm_tracing.OTLP_HTTP),
        proxy=proxy,
        proxy_problems=proxy_problems,
        nginx=nginx,
        nginx_problems=nginx_problems,
        exporter_layer=exporter_layer(stub_status_url(config.status_port), config.exporter_port),
        cluster_data=_cluster_data(config, inputs, host, published) if inputs.is_leader else None,
        scrape_jobs=jobs,
        unit_address=pod_host(inputs.unit, inputs.model),
        ports=_ports(config, proxy_port, tls),
        mesh_complete=labels_known and not broken,
        catalogue=_catalogue(config, host, tls),
        tls=inputs.tls,
    )


def pod_labels(app: str, mesh_in: MeshInputs | None) -> dict[str, str]:
    """Labels for coordinator and worker pods: membership, plus mesh labels when meshed.

    While the mesh's data is malformed, the labels last published to workers are kept, so bad
    data never pulls the cluster out of the mesh. The membership label always wins over a mesh
    label of the same name: the cluster-internal policies select the cluster's pods by it.
    """
    labels: dict[str, str] = {}
    if mesh_in is not None and mesh_in.enabled:
        labels.update(mesh_in.labels if mesh_in.last_good is None else mesh_in.last_good)
    labels.update(mesh.membership_labels(app))
    return dict(sorted(labels.items()))


def enrolled_labels(
    app: str,
    plan: CoordinatorPlan,
    coordinator_app: str,
    authorised: Authorised,
    published_by_app: Mapping[str, Mapping[str, str]],
) -> dict[str, str]:
    """The pod labels ``app`` gets now: the plan's labels once its policies are in place.

    Before that, the membership label alone (the policies select members by it). When it
    could not be found out (``KEEP``), an app keeps what its bag carries already.
    """
    if authorised is None or (isinstance(authorised, frozenset) and app in authorised):
        return dict(plan.labels)
    membership = mesh.membership_labels(coordinator_app)
    if authorised is KEEP and app in published_by_app:
        return {**published_by_app[app], **membership}
    return membership


def authorised_apps(
    app: str, model: str, policies: Sequence[MeshPolicy], in_place: Sequence[str]
) -> frozenset[str]:
    """The apps all of whose policies are among ``in_place`` (``<namespace>/<name>`` each)."""
    names_in_place = {name.rpartition("/")[2] for name in in_place}
    by_app: dict[str, list[str]] = {}
    for policy in policies:
        by_app.setdefault(policy.source_app_name, []).append(policy_name(app, model, policy))
    return frozenset(
        source for source, names in by_app.items() if all(n in names_in_place for n in names)
    )


def coordinator_host(app: str, model: str) -> str:
    """The coordinator's Service FQDN: the stable address workers and scrapers use."""
    return f"{app}.{model}.svc.cluster.local"


def _proxy_port(config: CoordinatorConfig, tls: bool) -> int | None:
    proxy = config.telemetry_proxy
    return None if proxy is None else proxy.port(tls=tls)


def _ports(config: CoordinatorConfig, proxy_port: int | None, tls: bool) -> tuple[int, ...]:
    """The ports the coordinator serves on: its API, the telemetry proxy, the exporter.

    With TLS, the proxy's plain port stays open where it redirects to the https one.
    """
    ports = {config.api_port, config.exporter_port}
    if proxy_port is not None:
        ports.add(proxy_port)
    proxy = config.telemetry_proxy
    if tls and proxy is not None and config.tls.redirect_http:
        ports.add(proxy.http_port)
    return tuple(sorted(ports))


def _catalogue(config: CoordinatorConfig, host: str, tls: bool) -> CatalogueItem | None:
    """The charm's catalogue entry; with TLS, its URLs on our host switch to https."""
    if config.catalogue is None:
        return None
    item = config.catalogue(host)
    if not tls:
        return item

    def https(url: str) -> str:
        ours = url == f"http://{host}" or url.startswith((f"http://{host}:", f"http://{host}/"))
        return "https://" + url.removeprefix("http://") if ours else url

    endpoints = item.api_endpoints
    return dataclasses.replace(
        item,
        url=https(item.url),
        api_docs=https(item.api_docs),
        api_endpoints=None if endpoints is None else {k: https(v) for k, v in endpoints.items()},
    )


def _policies(inputs: CoordinatorInputs, apply_kubernetes: bool) -> PolicyPlan:
    """What the policy step does: reconcile, delete (mesh gone), keep (unknown), or nothing."""
    mesh_in = inputs.mesh
    if mesh_in is None or not apply_kubernetes:
        return PolicyPlan("none")
    if mesh_in.broken:
        # Malformed mesh data is not "no mesh": keep the policies in place until it is
        # fixed, rather than delete them (the status names the problem).
        return PolicyPlan("keep")
    if mesh_in.mesh_type is None:
        return PolicyPlan("delete")
    try:
        mesh.cluster_internal_policies(inputs.app, inputs.model, [])  # our own names
    except ValueError as e:  # nothing can be applied
        logger.error("cluster-internal policies: %s", e)
        return PolicyPlan("keep", problems=(Problem.blocked(f"cluster-internal policies: {e}"),))
    accepted: list[str] = []
    problems: list[Problem] = []
    for worker in inputs.workers:
        # Juju only relates apps with valid names; a name our rules refuse anyway (a fake
        # Juju, a rule of ours stricter than Juju's) must not take the other apps' policies
        # down: that app is left out (and so never enrolled), and the status names it.
        try:
            mesh.cluster_internal_policies(inputs.app, inputs.model, [worker.name])
        except ValueError:
            shown = safe_text(worker.name, 60)
            logger.error("cluster-internal policies: worker app name %r refused", shown)
            problems.append(
                Problem.blocked(
                    f"cluster-internal policies: worker app name {shown!r} is not one "
                    "Juju and Kubernetes accept"
                )
            )
            continue
        accepted.append(worker.name)
    policies = mesh.cluster_internal_policies(inputs.app, inputs.model, accepted)
    return PolicyPlan("reconcile", mesh_in.mesh_type, tuple(policies), tuple(problems))


def _proxy(
    targets: TelemetryTargets, host: str, port: int | None, tls: bool
) -> tuple[ProxyPlan | None, tuple[Problem, ...]]:
    """The proxy's routes; each target it cannot serve (logged there) goes in a status."""
    if port is None:
        return None, ()
    plan = plan_proxy(targets, host, port, "https" if tls else "http")
    problems = tuple(
        Problem.blocked(
            f"not proxying {skipped.kind} {safe_text(skipped.key, 80)}: {skipped.reason}"
        )
        for skipped in plan.skipped
    )
    return plan, problems


def _nginx(
    config: CoordinatorConfig,
    inputs: CoordinatorInputs,
    proxy: ProxyPlan | None,
    proxy_port: int | None,
) -> tuple[RenderedConfig | None, tuple[Problem, ...]]:
    """nginx.conf, or why none can be rendered (then nothing is pushed)."""
    try:
        if isinstance(inputs.resolver, NoNameserverError):
            raise inputs.resolver
        rendered = render(_nginx_inputs(config, inputs, inputs.resolver, proxy, proxy_port))
    except (NoNameserverError, NginxConfigError) as e:
        message = f"nginx: {e}"
        logger.error("%s", safe_text(message, 2000))
        return None, (Problem.blocked(message),)
    return rendered, tuple(
        Problem.blocked(f"nginx: refused {refused.key}: {refused.reason}")
        for refused in rendered.refused
    )


def _nginx_inputs(
    config: CoordinatorConfig,
    inputs: CoordinatorInputs,
    resolver: str,
    proxy: ProxyPlan | None,
    proxy_port: int | None,
) -> NginxInputs:
    by_role: dict[str, list[str]] = {}
    for worker in inputs.workers:
        if worker.units:
            for role in worker.roles:
                by_role.setdefault(role, []).append(worker.name)
    return NginxInputs(
        model=inputs.model,
        api_port=config.api_port,
        routes=config.routes,
        workers_by_role=by_role,
        resolver=resolver,
        status_port=config.status_port,
        proxy_port=proxy_port,
        proxy=proxy,
        worker_apps=[worker.name for worker in inputs.workers],
        worker_metrics_port=config.worker_metrics_port,
        ipv6=inputs.ipv6,
        servers=config.servers,
        tls=config.tls if inputs.tls is not None else None,
        proxy_http_port=config.telemetry_proxy.http_port if config.telemetry_proxy else None,
    )


def _cluster_data(
    config: CoordinatorConfig,
    inputs: CoordinatorInputs,
    host: str,
    telemetry: TelemetryTargets,
) -> ClusterProviderAppData:
    s3 = inputs.s3
    tls = inputs.tls if inputs.tls_key_secret_id else None
    context = WorkloadConfigContext(
        model=inputs.model,
        coordinator_host=host,
        workers=inputs.workers,
        telemetry=telemetry,
        s3=s3.info if s3 is not None else None,
    )
    return ClusterProviderAppData(
        worker_config=config.workload_config(context),
        loki_endpoints=dict(telemetry.loki_push_urls) or None,
        charm_tracing_receivers=dict(telemetry.charm_tracing) or None,
        workload_tracing_receivers=dict(telemetry.workload_tracing) or None,
        remote_write_endpoints=[
            RemoteWriteEndpoint(url=url) for url in telemetry.remote_write_urls
        ]
        or None,
        worker_labels=mesh.membership_labels(inputs.app),  # for a relation without app
        s3_secret_id=s3.secret_id if s3 is not None else None,
        s3_tls_ca_chain=s3.ca_chain if s3 is not None else None,
        # All three or none: a worker given a certificate without its key could not serve
        # it, so the certificate is published once the key's secret is shared.
        ca_cert=tls.ca if tls is not None else None,
        server_cert=tls.with_intermediates if tls is not None else None,
        privkey_secret_id=inputs.tls_key_secret_id if tls is not None else None,
    )
