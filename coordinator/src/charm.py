#!/usr/bin/env python3
# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""coordinator-k8s: the reference coordinator of a coordinated-workers cluster.

All behaviour lives in the ``coordinated_workers`` library; this file only declares what is
specific to this cluster: its roles, how the API is routed to them, the configuration workers
receive, and which integration may use the API once the cluster is on a service mesh.
"""

from __future__ import annotations

import ops
import yaml

from coordinated_workers import (
    ClusterRolesConfig,
    ComputeResources,
    Coordinator,
    CoordinatorConfig,
    RoleRoute,
    Server,
    WorkerTelemetryProxyConfig,
    WorkloadConfigContext,
)

API_PORT = 8080
PROXY_PORT = 8081
PROXY_TLS_PORT = 8443
"""The telemetry proxy's port once a certificate is related (8081 then redirects to it)."""
EXPORTER_PORT = 9113
WORKER_PORT = 8080

ROLES = ClusterRolesConfig(
    roles={"all", "read", "write"},
    meta_roles={"all": {"read", "write"}},
    minimal_deployment={"read", "write"},
)
ROUTES = (RoleRoute("/read", "read", WORKER_PORT), RoleRoute("/write", "write", WORKER_PORT))
# The API server: the routes above join it; apps related on `api` may reach it through the mesh.
API_SERVER = Server(API_PORT, health_check=True, relations=("api",))


def workload_config(context: WorkloadConfigContext) -> str:
    """The file every worker receives: who is in the cluster and where telemetry goes.

    Only worker *apps* and their roles are listed, not units, so scaling a worker app does not
    rewrite every worker's configuration (and restart it).
    """
    config: dict[str, object] = {
        "coordinator": context.coordinator_host,
        "workers": {worker.name: sorted(worker.roles) for worker in context.workers},
        "remote_write": list(context.telemetry.remote_write_urls),
    }
    if context.s3 is not None:  # where objects go; the keys reach workers in a secret only
        config["storage"] = {"endpoint": context.s3.endpoint, "bucket": context.s3.bucket}
    return yaml.safe_dump(config, sort_keys=True)


class CoordinatorCharm(ops.CharmBase):
    """Routes `/read` and `/write` to workers by role; joins a mesh when related to a beacon."""

    def __init__(self, framework: ops.Framework) -> None:
        super().__init__(framework)
        self.coordinator = Coordinator(
            self,
            CoordinatorConfig(
                roles=ROLES,
                workload_config=workload_config,
                routes=ROUTES,
                servers=[API_SERVER],
                worker_metrics_port=WORKER_PORT,
                api_port=API_PORT,
                exporter_port=EXPORTER_PORT,
                worker_ports=lambda _roles: [WORKER_PORT],
                telemetry_proxy=WorkerTelemetryProxyConfig(
                    http_port=PROXY_PORT, https_port=PROXY_TLS_PORT
                ),
                resources=ComputeResources(),  # cpu_limit, memory_limit, cpu/memory_request
            ),
        )
        framework.observe(self.on.collect_unit_status, self._on_collect_status)

    def _on_collect_status(self, event: ops.CollectStatusEvent) -> None:
        for problem in self.coordinator.problems:
            event.add_status(problem.status())
        event.add_status(ops.ActiveStatus())


if __name__ == "__main__":  # pragma: nocover
    ops.main(CoordinatorCharm)
