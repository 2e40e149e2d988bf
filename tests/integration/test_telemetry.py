# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Worker telemetry through the coordinator: Prometheus scrapes and Loki logs; the cluster's
alert rules in Prometheus and Loki, its dashboards in Grafana, the coordinator's own logs.

Prometheus, Loki and Grafana only integrate with the coordinator; the workers' metrics and
logs must still arrive, through the coordinator's telemetry proxy, and the rules and dashboards
the coordinator publishes (src/prometheus_alert_rules, src/loki_alert_rules,
src/grafana_dashboards, plus the library's nginx rules and dashboard) must show up in each
backend's own API. Every backend is queried on localhost from inside its own pod.
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
    query_json_as,
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
GRAFANA = "grafana"
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
    juju.deploy("grafana-k8s", GRAFANA, channel="1/stable", trust=True)
    juju.integrate(f"{COORDINATOR}:cluster", f"{WORKER_READ}:cluster")
    juju.integrate(f"{COORDINATOR}:cluster", f"{WORKER_WRITE}:cluster")
    juju.integrate(f"{COORDINATOR}:metrics-endpoint", f"{PROMETHEUS}:metrics-endpoint")
    juju.integrate(f"{COORDINATOR}:logging", f"{LOKI}:logging")
    juju.integrate(f"{COORDINATOR}:grafana-dashboard", f"{GRAFANA}:grafana-dashboard")

    wait_settled(juju, COORDINATOR, WORKER_READ, WORKER_WRITE, PROMETHEUS, LOKI, GRAFANA)


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


# --- the cluster observes itself (issue 15) --------------------------------------------------

# Group names as the coordinator publishes them (cosl writes "_" for "-" in Prometheus group
# names): "<model>_<uuid[:8]>_<app>_<group>_rules".
PROMETHEUS_GROUPS = {
    WORKER_READ: "_worker_read_WorkerRequests_rules",
    WORKER_WRITE: "_worker_write_WorkerRequests_rules",
    COORDINATOR: "_coordinator_k8s_CoordinatorNginx_rules",
}


def test_prometheus_has_the_worker_and_nginx_rule_groups(juju: jubilant.Juju):
    prometheus = units(juju, PROMETHEUS)[0]

    def check() -> None:
        data = query_json(juju, prometheus, "http://localhost:9090/api/v1/rules")
        groups = {group["name"]: group for group in data["data"]["groups"]}
        for app, suffix in PROMETHEUS_GROUPS.items():
            found = [group for name, group in groups.items() if name.endswith(suffix)]
            assert found, f"no rule group ending {suffix}: {sorted(groups)}"
            for rule in found[0]["rules"]:
                assert rule["labels"]["juju_application"] == app, rule
        assert any(name.endswith("_HostHealth_rules") for name in groups), sorted(groups)

    eventually(check, timeout=10 * 60, interval=15)


def test_loki_has_the_log_rules_of_every_worker_app_and_the_coordinator(juju: jubilant.Juju):
    loki = units(juju, LOKI)[0]

    def check() -> None:
        # Loki's ruler answers the Prometheus rules API too, in JSON.
        data = query_json(juju, loki, "http://localhost:3100/prometheus/api/v1/rules")
        labelled = {
            rule["labels"].get("juju_application")
            for group in data["data"]["groups"]
            if group["name"].endswith("worker_errors_rules_alerts")
            or group["name"].endswith("worker_errors_alerts")
            for rule in group["rules"]
        }
        assert labelled == {WORKER_READ, WORKER_WRITE, COORDINATOR}, data["data"]["groups"]

    eventually(check, timeout=10 * 60, interval=15)


def test_grafana_has_the_workers_and_nginx_dashboards(juju: jubilant.Juju):
    grafana = units(juju, GRAFANA)[0]
    task = juju.run(grafana, "get-admin-password")
    password = task.results["admin-password"]

    def check() -> None:
        found = query_json_as(
            juju, grafana, "http://localhost:3000/api/search?type=dash-db", "admin", password
        )
        titles = {dashboard["title"] for dashboard in found}
        assert {"Coordinated workers", "Coordinator nginx"} <= titles, titles
        ours = [d for d in found if f"charm: {COORDINATOR}" in d.get("tags", [])]
        assert len(ours) >= 2, found

    eventually(check, timeout=10 * 60, interval=15)


def test_the_coordinators_own_logs_reach_loki(juju: jubilant.Juju):
    # The exporter logs a few lines when it starts; Pebble forwards only lines written after
    # Loki became a log target, so restart it now that it is one.
    socket = "/charm/containers/nginx-prometheus-exporter/pebble.socket"
    for unit in units(juju, COORDINATOR):
        juju.exec(
            f"PEBBLE_SOCKET={socket} /charm/bin/pebble restart nginx-prometheus-exporter",
            unit=unit,
        )
    loki = units(juju, LOKI)[0]
    query = urllib.parse.urlencode(
        {"query": f'{{juju_application="{COORDINATOR}"}}', "since": "1h"}
    )
    url = f"http://localhost:3100/loki/api/v1/query_range?{query}"

    def check() -> None:
        data = query_json(juju, loki, url)
        streams: list[dict[str, list[object]]] = data["data"]["result"]
        assert any(stream["values"] for stream in streams), f"no log lines: {data}"

    eventually(check, timeout=10 * 60, interval=15)
