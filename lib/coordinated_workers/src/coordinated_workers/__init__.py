# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Coordinator/worker charm framework: one coordinator routes to and configures worker apps.

A coordinator charm passes a :class:`CoordinatorConfig` to :class:`Coordinator`; a worker charm
passes a :class:`WorkerConfig` to :class:`Worker`. Both report :class:`Problem` values for the
charm's collect-status::

    self.coordinator = Coordinator(self, CoordinatorConfig(
        roles=ClusterRolesConfig(roles={"all", "read"}, meta_roles={"all": {"read"}},
                                 minimal_deployment={"read"}),
        workload_config=render_config,        # WorkloadConfigContext -> the workers' file
        routes=[RoleRoute("/read", "read", 8080)],
        worker_metrics_port=8080,
    ))

The ``cluster`` relation is the contract between them (wire-compatible with upstream
coordinated-workers); :class:`ClusterProvider` and :class:`ClusterRequirer` speak it for a
charm that does not use the two classes above. Charm tests build cluster relations with
:mod:`coordinated_workers.testing`; :mod:`coordinated_workers.telemetry` implements the
telemetry relations without Charmhub libraries.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._cluster import ClusterProvider, ClusterRequirer, WorkerApp, WorkerUnit, service_host
from ._cluster_data import (
    ClusterDataError,
    ClusterProviderAppData,
    ClusterRequirerAppData,
    ClusterRequirerUnitData,
    JujuTopology,
    RemoteWriteEndpoint,
)
from ._roles import ClusterRolesConfig, ClusterRolesConfigError, UnknownRolesError
from ._status import CoordinatedWorkersError, Problem, ProblemLevel

if TYPE_CHECKING:
    from ._catalogue import CatalogueItem
    from ._config import CoordinatorConfig, CoordinatorEndpoints, WorkloadConfigContext
    from ._coordinator import Coordinator
    from ._datasource_exchange import DatasourceExchange, GrafanaDatasource
    from ._nginx import RoleRoute
    from ._resources import ComputeResources
    from ._routing import (
        ClientHeader,
        Extra,
        Location,
        Match,
        Protocol,
        Rewrite,
        RoutingError,
        Server,
        TlsSettings,
    )
    from ._s3 import S3ConnectionInfo
    from ._telemetry_proxy import TelemetryTargets, WorkerTelemetryProxyConfig
    from ._worker import Worker, WorkerConfig, WorkerContext
    from ._worker_tls import WorkerTLS
    from .observability import ObservabilityConfig

# Loaded on first use (PEP 562): a worker charm, which imports this package on every hook,
# never loads the coordinator's modules (nginx, the telemetry proxy), and the reverse.
_LAZY = {
    "CatalogueItem": "_catalogue",
    "ClientHeader": "_routing",
    "ComputeResources": "_resources",
    "Coordinator": "_coordinator",
    "CoordinatorConfig": "_config",
    "CoordinatorEndpoints": "_config",
    "DatasourceExchange": "_datasource_exchange",
    "Extra": "_routing",
    "GrafanaDatasource": "_datasource_exchange",
    "Location": "_routing",
    "Match": "_routing",
    "ObservabilityConfig": "observability",
    "Protocol": "_routing",
    "Rewrite": "_routing",
    "RoleRoute": "_nginx",
    "RoutingError": "_routing",
    "S3ConnectionInfo": "_s3",
    "Server": "_routing",
    "TelemetryTargets": "_telemetry_proxy",
    "TlsSettings": "_routing",
    "Worker": "_worker",
    "WorkerConfig": "_worker",
    "WorkerContext": "_worker",
    "WorkerTLS": "_worker_tls",
    "WorkerTelemetryProxyConfig": "_telemetry_proxy",
    "WorkloadConfigContext": "_config",
}


def __getattr__(name: str) -> Any:
    """Import the module behind a lazily exported name on first use (PEP 562)."""
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module_name}"), name)
    globals()[name] = value
    return value


__all__ = [  # grouped by use in the README
    "CatalogueItem",
    "ClientHeader",
    "ClusterDataError",
    "ClusterProvider",
    "ClusterProviderAppData",
    "ClusterRequirer",
    "ClusterRequirerAppData",
    "ClusterRequirerUnitData",
    "ClusterRolesConfig",
    "ClusterRolesConfigError",
    "ComputeResources",
    "CoordinatedWorkersError",
    "Coordinator",
    "CoordinatorConfig",
    "CoordinatorEndpoints",
    "DatasourceExchange",
    "Extra",
    "GrafanaDatasource",
    "JujuTopology",
    "Location",
    "Match",
    "ObservabilityConfig",
    "Problem",
    "ProblemLevel",
    "Protocol",
    "RemoteWriteEndpoint",
    "Rewrite",
    "RoleRoute",
    "RoutingError",
    "S3ConnectionInfo",
    "Server",
    "TelemetryTargets",
    "TlsSettings",
    "UnknownRolesError",
    "Worker",
    "WorkerApp",
    "WorkerConfig",
    "WorkerContext",
    "WorkerTLS",
    "WorkerTelemetryProxyConfig",
    "WorkerUnit",
    "WorkloadConfigContext",
    "service_host",
]
