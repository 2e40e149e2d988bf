# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The reference coordinator ships rules and a dashboard for its workers (issue 15)."""

from __future__ import annotations

import json
import shutil

import ops
from coordinator_scenario import APP, CHARM_DIR, MODEL, charm_module, state
from ops import testing

from coordinated_workers.telemetry.alert_rules import group_names
from coordinated_workers.telemetry.grafana_dashboard import decode_content
from coordinated_workers.testing import worker_relation

LOKI_URL = "http://loki-0.loki-endpoints.cos.svc.cluster.local:3100/loki/api/v1/push"


def test_workers_rules_and_dashboard_reach_prometheus_loki_and_grafana(kube, tmp_path):
    shutil.copytree(CHARM_DIR / "src", tmp_path / "src")  # the charm dir, as packed
    ctx = testing.Context(charm_module.CoordinatorCharm, app_name=APP, charm_root=tmp_path)
    relations = [
        worker_relation("worker-read", ["read"]),
        worker_relation("worker-write", ["write"]),
        testing.Relation("metrics-endpoint", remote_app_name="prometheus"),
        testing.Relation(
            "logging",
            remote_app_name="loki",
            remote_units_data={0: {"endpoint": json.dumps({"url": LOKI_URL})}},
        ),
        testing.Relation("grafana-dashboard", remote_app_name="grafana"),
    ]

    out = ctx.run(ctx.on.config_changed(), state(*relations))

    assert out.unit_status == ops.ActiveStatus()
    bags = {r.endpoint: r.local_app_data for r in out.relations}
    prefix = f"{MODEL}_{out.model.uuid[:8]}"
    assert group_names(json.loads(bags["metrics-endpoint"]["alert_rules"])) == [
        f"{prefix}_worker_read_WorkerRequests_rules",
        f"{prefix}_worker_write_WorkerRequests_rules",
        f"{prefix}_coordinator_k8s_CoordinatorNginx_rules",  # cosl: "_" for "-" in group names
        f"{prefix}_coordinator_k8s_HostHealth_rules",
    ]
    loki = json.loads(bags["logging"]["alert_rules"])
    assert group_names(loki) == [
        f"{prefix}_{APP}_{prefix}_worker_read_worker_errors_rules_alerts",
        f"{prefix}_{APP}_{prefix}_worker_write_worker_errors_rules_alerts",
        f"{prefix}_{APP}_worker_errors_alerts",
    ]
    assert all('{job=~".+"}' in g["rules"][0]["expr"] for g in loki["groups"])
    templates = json.loads(bags["grafana-dashboard"]["dashboards"])["templates"]
    assert sorted(templates) == ["file:coordinator-nginx", "file:workers"]
    workers = json.loads(decode_content(templates["file:workers"]["content"]))
    assert workers["title"] == "Coordinated workers"
    assert "charm: coordinator-k8s" in workers["tags"]
    for name in ("nginx", "nginx-prometheus-exporter"):
        assert out.get_container(name).plan.log_targets["loki-loki-0"].location == LOKI_URL
