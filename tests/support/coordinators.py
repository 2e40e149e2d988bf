# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The coordinator config most library tests start from: each test names only what it tests.

A one-role cluster whose workers serve ``/<role>`` on ``port``, with every optional endpoint that
would need relations or Kubernetes switched off unless the test keeps it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from coordinated_workers import ClusterRolesConfig
from coordinated_workers._coordinator import CoordinatorConfig, CoordinatorEndpoints
from coordinated_workers._nginx import RoleRoute

OPTIONAL_ENDPOINTS = (
    "metrics",
    "logging",
    "charm_tracing",
    "workload_tracing",
    "remote_write",
    "service_mesh",
    "require_cmr_mesh",
    "provide_cmr_mesh",
)


def minimal_coordinator_config(
    *,
    role: str = "work",
    port: int = 9000,
    workload_config: str | Callable[[Any], str] = "x: 1\n",
    keep: tuple[str, ...] = (),
    **fields: Any,
) -> CoordinatorConfig:
    """A one-role coordinator config; ``keep`` names optional endpoints left at their default.

    ``workload_config`` is the text every worker gets, or the charm's callback itself.
    """
    off: dict[str, Any] = {name: None for name in OPTIONAL_ENDPOINTS if name not in keep}
    settings: dict[str, Any] = {
        "roles": ClusterRolesConfig(roles={role}, meta_roles={}, minimal_deployment={role}),
        "workload_config": (
            workload_config if callable(workload_config) else lambda _context: workload_config
        ),
        "routes": [RoleRoute(f"/{role}", role, port)],
        "worker_metrics_port": port,
        "endpoints": CoordinatorEndpoints(**off),
    }
    return CoordinatorConfig(**{**settings, **fields})
