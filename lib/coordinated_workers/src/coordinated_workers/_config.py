# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""What a charm tells the coordinator: its endpoints, its roles and routes, its callbacks."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from ._routing import TlsSettings
from .observability import ObservabilityConfig

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from service_mesh import AppPolicy, UnitPolicy

    from ._catalogue import CatalogueItem
    from ._cluster import WorkerApp
    from ._datasource_exchange import GrafanaDatasource
    from ._nginx import RoleRoute
    from ._resources import ComputeResources
    from ._roles import ClusterRolesConfig
    from ._routing import Server
    from ._s3 import S3ConnectionInfo
    from ._telemetry_proxy import TelemetryTargets, WorkerTelemetryProxyConfig


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
    certificates: str | None = "certificates"
    """A server certificate (interface ``tls-certificates``): https on nginx and certificates
    for the workers; ignored when the charm does not declare it, None: never TLS."""
    send_datasource: str | None = "send-datasource"
    """Grafana datasources exchanged with other clusters (provides, interface
    ``grafana_datasource_exchange``); ignored when the charm does not declare it."""
    receive_datasource: str | None = "receive-datasource"
    """The same exchange, as a requires endpoint; ignored when the charm does not declare it."""

    def __post_init__(self) -> None:
        mesh_names = (self.service_mesh, self.require_cmr_mesh, self.provide_cmr_mesh)
        if len({name is None for name in mesh_names}) != 1:
            raise ValueError(
                "service_mesh, require_cmr_mesh and provide_cmr_mesh must all be set or all None"
            )


@dataclasses.dataclass(frozen=True)
class WorkloadConfigContext:
    """What a charm's ``workload_config`` callback may depend on."""

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
    workload_config: Callable[[WorkloadConfigContext], str]
    """Renders the workload configuration file every worker receives (``worker_config`` on
    the wire)."""
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
    """More nginx servers and locations (`Server`, `Location`); `routes` join the one on
    `api_port`. Their `relations` become external mesh policies."""
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
    show_mesh_action: str | None = "show-mesh"
    """The action that prints the live allow matrix and where the namespace differs from what
    the coordinator intends; ignored when the charm does not declare it in charmcraft.yaml."""
    tls: TlsSettings = dataclasses.field(default_factory=TlsSettings)
    """How nginx speaks TLS (protocols, ciphers, redirects) once a certificate is related."""
    coherence: Callable[[Sequence[WorkerApp]], str | None] | None = None
    """A check beyond the roles (e.g. a replication factor the workers can meet): given the
    worker apps, why the cluster is not coherent, or None. Blocked with ``[consistency]``."""
    datasources: Callable[[], Sequence[GrafanaDatasource]] | None = None
    """This cluster's Grafana datasources (type, UID, Grafana's UID), published to the other
    clusters on the datasource exchange endpoints; called on the leader while one is related."""
    external_url: str | Callable[[], str | None] | None = None
    """Where clients outside the model reach the coordinator (an ingress), as an http(s) base
    URL, or a callable giving it (None: no ingress yet); None: the internal URL."""

    def __post_init__(self) -> None:
        if isinstance(self.external_url, str):  # a callable's answer is checked in each hook
            from ._external_url import validated_external_url

            validated_external_url(self.external_url)
