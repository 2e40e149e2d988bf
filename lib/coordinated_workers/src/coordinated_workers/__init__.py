"""Coordinator/worker charm framework: one coordinator routes to and configures worker apps.

The ``cluster`` relation is the contract between them (wire-compatible with upstream
coordinated-workers). The coordinator declares its roles and reads its workers::

    ROLES = ClusterRolesConfig(
        roles={"all", "read", "write"},
        meta_roles={"all": {"read", "write"}},
        minimal_deployment={"read", "write"},
    )
    cluster = ClusterProvider(charm, "cluster", roles_config=ROLES)
    if ROLES.is_coherent_with(cluster.deployed_roles()):
        cluster.publish(ClusterProviderAppData(worker_config=config), worker_ports=ports_for)

and each worker announces itself and reads its configuration::

    cluster = ClusterRequirer(charm, "cluster")
    cluster.publish_unit(fqdn, JujuTopology.from_charm(charm))
    cluster.publish_roles(roles)
    config = cluster.worker_config

Charm tests build cluster relations with :mod:`coordinated_workers.testing`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._cluster_data import (
    ClusterDataError,
    ClusterProviderAppData,
    ClusterRequirerAppData,
    ClusterRequirerUnitData,
    JujuTopology,
    RemoteWriteEndpoint,
)
from ._errors import CoordinatedWorkersError
from ._status import Problem, ProblemLevel
from .cluster import ClusterProvider, ClusterRequirer, WorkerApp, WorkerUnit, service_host
from .roles import ClusterRolesConfig, ClusterRolesConfigError, UnknownRolesError

if TYPE_CHECKING:
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
        nginx_layer,
        render_config,
        resolver_from_resolv_conf,
        stub_status_url,
    )
    from .telemetry_proxy import (
        ProxyPlan,
        ProxyRoute,
        SkippedTarget,
        TelemetryTargets,
        WorkerTelemetryProxyConfig,
        plan_proxy,
        worker_metrics_path,
    )

# Only the coordinator needs nginx and the telemetry proxy: a worker charm, which imports this
# package on every hook, does not load them (about 15 ms) until a name from them is used.
_LAZY_MODULES = ("nginx", "telemetry_proxy")


def __getattr__(name: str) -> Any:
    """Import the module behind a lazily exported name on first use (PEP 562)."""
    if name in __all__:
        for module_name in _LAZY_MODULES:
            module = importlib.import_module(f"{__name__}.{module_name}")
            if hasattr(module, name):
                value = getattr(module, name)
                globals()[name] = value
                return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ClusterDataError",
    "ClusterProvider",
    "ClusterProviderAppData",
    "ClusterRequirer",
    "ClusterRequirerAppData",
    "ClusterRequirerUnitData",
    "ClusterRolesConfig",
    "ClusterRolesConfigError",
    "CoordinatedWorkersError",
    "ExporterWorkload",
    "JujuTopology",
    "NginxConfigError",
    "NginxConfigRejectedError",
    "NginxInputs",
    "NginxReloadError",
    "NginxWorkload",
    "NoNameserverError",
    "Problem",
    "ProblemLevel",
    "ProxyPlan",
    "ProxyRoute",
    "RemoteWriteEndpoint",
    "RoleRoute",
    "SkippedTarget",
    "TelemetryTargets",
    "UnknownRolesError",
    "WorkerApp",
    "WorkerTelemetryProxyConfig",
    "WorkerUnit",
    "exporter_layer",
    "nginx_layer",
    "plan_proxy",
    "render_config",
    "resolver_from_resolv_conf",
    "service_host",
    "stub_status_url",
    "worker_metrics_path",
]
