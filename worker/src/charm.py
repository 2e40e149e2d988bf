#!/usr/bin/env python3
# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""worker-k8s: the reference worker of a coordinated-workers cluster.

It has no mesh code at all: labels, configuration and telemetry destinations all come from the
coordinator through the ``coordinated_workers`` library.
"""

from __future__ import annotations

import shlex

import ops

from coordinated_workers import ComputeResources, Worker, WorkerConfig, WorkerContext

CONTAINER = "workload"
PORT = 8080
BINARY = "/bin/prometheus-example-app"


def workload_command(roles: str) -> str:
    """The service command: a start-up line on stdout, then the app in the shell's place.

    prometheus-example-app itself logs nothing (not even per request), so without this line a
    worker would have no log for Pebble to forward. The image is busybox-based: /bin/sh exists.
    """
    banner = f"prometheus-example-app starting on :{PORT}, roles {roles}"
    script = f"echo {shlex.quote(banner)}; exec {BINARY} --bind=:{PORT}"
    return shlex.join(["/bin/sh", "-c", script])


def workload_layer(context: WorkerContext) -> ops.pebble.LayerDict:
    """Run prometheus-example-app, which answers every path and serves `/metrics`."""
    roles = ", ".join(sorted(context.roles))
    return {
        "summary": "worker workload",
        "services": {
            CONTAINER: {
                "override": "replace",
                "summary": f"example app serving roles {roles}",
                "command": workload_command(roles),
                "startup": "enabled",
            }
        },
    }


class WorkerCharm(ops.CharmBase):
    """Runs the example workload in the roles chosen with `role-*` options."""

    def __init__(self, framework: ops.Framework) -> None:
        super().__init__(framework)
        self.worker = Worker(
            self,
            WorkerConfig(
                container=CONTAINER,
                layer=workload_layer,
                readiness_url=f"http://localhost:{PORT}/metrics",
                resources=ComputeResources(),  # cpu_limit, memory_limit, cpu/memory_request
            ),
        )
        framework.observe(self.on.collect_unit_status, self._on_collect_status)

    def _on_collect_status(self, event: ops.CollectStatusEvent) -> None:
        for problem in self.worker.problems:
            event.add_status(problem.status())
        roles = ", ".join(sorted(self.worker.roles))
        event.add_status(ops.ActiveStatus(f"{roles} ready"))


if __name__ == "__main__":  # pragma: nocover
    ops.main(WorkerCharm)
