# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Telemetry relations of a coordinated-workers cluster, implemented without Charmhub libraries.

Each module implements one relation interface's wire format and documents it:

- `prometheus_scrape` (provider): `scrape_jobs` builds the jobs for worker units (through the
  coordinator's telemetry proxy, or directly) and the coordinator's nginx exporters;
  `MetricsEndpointProvider.publish` writes them.
- `loki_push_api` (requirer): `LokiPushApiRequirer.push_urls` reads Loki push URLs;
  `log_forwarding_layer` turns them into Pebble ``log-targets`` on a worker.
- `tracing` (requirer, v2): `TracingRequirer` requests protocols and reads receiver URLs.
- `remote_write` (requirer): `RemoteWriteRequirer.urls` reads remote-write URLs.

Nothing here observes events or sets status: the coordinator and worker call these from their
reconcile. Readers never raise on remote data; they return a `Reading` whose ``problems`` say
what was ignored and why. Writers touch a databag key only when its value changes, and the
application databag only on the leader.

Usage in a coordinator's reconcile::

    logging = LokiPushApiRequirer(charm, "logging").push_urls()
    tracing = TracingRequirer(charm, "charm-tracing", ["otlp_http"])
    tracing.request_protocols()
    jobs = scrape_jobs(cluster.workers(), coordinator_units, model=..., model_uuid=...,
                       worker_metrics_port=8080, proxy_target="coord.m.svc.cluster.local:8081",
                       tls=False)
    MetricsEndpointProvider(charm).publish(jobs, unit_address=socket.getfqdn())

and in a worker's::

    layer = log_forwarding_layer(cluster.loki_endpoints, topology_labels(charm), ["all"],
                                 current_targets=enabled_log_targets(container.get_plan()))
"""

from coordinated_workers.telemetry._databag import DatabagError, DatabagProblem, Reading
from coordinated_workers.telemetry.loki_push_api import (
    LokiPushApiRequirer,
    enabled_log_targets,
    log_forwarding_layer,
    topology_labels,
)
from coordinated_workers.telemetry.prometheus_scrape import (
    MetricsEndpointProvider,
    scrape_jobs,
)
from coordinated_workers.telemetry.remote_write import RemoteWriteRequirer
from coordinated_workers.telemetry.tracing import TracingRequirer

__all__ = [
    "DatabagError",
    "DatabagProblem",
    "LokiPushApiRequirer",
    "MetricsEndpointProvider",
    "Reading",
    "RemoteWriteRequirer",
    "TracingRequirer",
    "enabled_log_targets",
    "log_forwarding_layer",
    "scrape_jobs",
    "topology_labels",
]
