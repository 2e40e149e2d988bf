"""Worker telemetry through the coordinator: Prometheus scrapes and Loki logs.

Prometheus and Loki only integrate with the coordinator; the workers' metrics and logs must
still arrive, through the coordinator's telemetry proxy. Both backends are queried on
localhost from inside their own pods.
"""

from __future__ import annotations

import urllib.parse
from typing import TYPE_CHECKING

import pytest
from helpers import (
    COORDINATOR,
    PackedCharm,
    deploy,
    eventually,
    query_json,
    units,
    wait_settled,
    worker_roles,
)

if TYPE_CHECKING:
    import jubilant

WORKER_READ = "worker-read"
WORKER_WRITE = "worker-write"
PROMETHEUS = "prometheus"
LOKI = "loki"
# `juju exec` runs in the charm container, which reaches the workload container's Pebble
# through its socket under /charm/containers.
RESTART_WORKLOAD = (
    "PEBBLE_SOCKET=/charm/containers/workload/pebble.socket /charm/bin/pebble restart workload"
)


@pytest.mark.juju_setup
def test_deploy(juju: jubilant.Juju, coordinator_charm: PackedCharm, worker_charm: PackedCharm):
    deploy(juju, coordinator_charm, COORDINATOR)
    deploy(juju, worker_charm, WORKER_READ, config=worker_roles("read"))
    deploy(juju, worker_charm, WORKER_WRITE, config=worker_roles("write"))
    juju.deploy("prometheus-k8s", PROMETHEUS, channel="1/stable", trust=True)
    juju.deploy("loki-k8s", LOKI, channel="1/stable", trust=True)
    juju.integrate(f"{COORDINATOR}:cluster", f"{WORKER_READ}:cluster")
    juju.integrate(f"{COORDINATOR}:cluster", f"{WORKER_WRITE}:cluster")
    juju.integrate(f"{COORDINATOR}:metrics-endpoint", f"{PROMETHEUS}:metrics-endpoint")
    juju.integrate(f"{COORDINATOR}:logging", f"{LOKI}:logging")

    wait_settled(juju, COORDINATOR, WORKER_READ, WORKER_WRITE, PROMETHEUS, LOKI)


def test_every_worker_unit_is_scraped_through_the_proxy(juju: jubilant.Juju):
    prometheus = units(juju, PROMETHEUS)[0]
    workers = [*units(juju, WORKER_READ), *units(juju, WORKER_WRITE)]

    def check() -> None:
        data = query_json(juju, prometheus, "http://localhost:9090/api/v1/targets?state=active")
        targets: list[dict[str, str]] = data["data"]["activeTargets"]
        for unit in workers:
            path = f"/proxy/worker/{unit.replace('/', '-')}/metrics"
            scraped = [t for t in targets if path in t["scrapeUrl"]]
            assert scraped, f"no target scrapes {path}: {[t['scrapeUrl'] for t in targets]}"
            assert all(t["health"] == "up" for t in scraped), scraped

    # A new target needs a Prometheus reload and a first scrape interval (1 minute).
    eventually(check, timeout=10 * 60, interval=15)


@pytest.mark.parametrize("app", [WORKER_READ, WORKER_WRITE])
def test_worker_logs_reach_loki(juju: jubilant.Juju, app: str):
    # The workload logs one start-up line (the worker's Pebble service prints it before it
    # runs prometheus-example-app, which logs nothing itself). Pebble forwards only lines
    # written after Loki became a log target, so restart the service now that it is one.
    for unit in units(juju, app):
        juju.exec(RESTART_WORKLOAD, unit=unit)
    loki = units(juju, LOKI)[0]
    query = urllib.parse.urlencode({"query": f'{{juju_application="{app}"}}', "since": "1h"})
    url = f"http://localhost:3100/loki/api/v1/query_range?{query}"

    def check() -> None:
        data = query_json(juju, loki, url)
        streams: list[dict[str, list[object]]] = data["data"]["result"]
        assert any(stream["values"] for stream in streams), f"no log lines for {app}: {data}"

    eventually(check, timeout=10 * 60, interval=15)
