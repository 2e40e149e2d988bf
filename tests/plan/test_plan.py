# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The plan command end to end: the real charms on the default and derived topologies.

The golden output is regenerated with:

    uv run python -m tools.plan > tests/plan/golden/default.txt

Review the diff before committing it: it is the footprint of the default deployment.
"""

from __future__ import annotations

import pathlib

import pytest
import yaml

from tools.plan import diff, footprint, render, topology
from tools.plan.__main__ import main

GOLDEN = pathlib.Path(__file__).parent / "golden" / "default.txt"


def plan(path: pathlib.Path) -> footprint.Footprint:
    return footprint.plan(topology.load(path))


def test_default_run_matches_the_golden_output(capsys):
    assert main([]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out == GOLDEN.read_text(), (
        "the default plan changed; if intended, regenerate with "
        "`uv run python -m tools.plan > tests/plan/golden/default.txt` and review the diff"
    )


def test_default_deployment_converges_active_and_steady(default_footprint):
    assert default_footprint.steady
    assert {s.unit: s.name for s in default_footprint.statuses} == {
        "coordinator/0": "active",
        "coordinator/1": "active",
        "worker-read/0": "active",
        "worker-read/1": "active",
        "worker-write/0": "active",
        "istio-beacon-k8s/0": "active",
    }
    assert len(default_footprint.cluster_policies) == 5
    assert len(default_footprint.beacon_policies) == 3
    assert default_footprint.other_policies == []
    assert default_footprint.nginx_units_agree


def test_written_manifests_validate_against_the_istio_crd(
    tmp_path, capsys, authorization_policy_validator
):
    assert main(["--output", str(tmp_path)]) == 0
    documents = [
        document
        for path in sorted(tmp_path.glob("*.yaml"))
        for document in yaml.safe_load_all(path.read_text())
        if document is not None
    ]
    assert len(documents) == 8
    for document in documents:
        assert authorization_policy_validator(document) == [], document["metadata"]["name"]


def test_adding_a_worker_app_opens_exactly_two_new_policies(
    write_topology, default_data, default_footprint
):
    default_data["workers"].append({"app": "worker-extra", "roles": ["all"], "units": 1})
    other = write_topology("add-worker.yaml", default_data)

    changes = diff.policy_changes(default_footprint, plan(other))

    assert changes.changed == [] and changes.deleted == []
    created = sorted(p["metadata"]["name"] for p in changes.created)
    assert len(created) == 2
    assert all(name.startswith("coordinator-demo-policy-worker-extra-demo-") for name in created)


def test_diff_command_prints_the_two_new_policies(write_topology, default_data, capsys):
    default_data["workers"].append({"app": "worker-extra", "roles": ["all"], "units": 1})
    other = write_topology("add-worker.yaml", default_data)
    assert main(["--diff", str(other)]) == 0
    out = capsys.readouterr().out
    assert "created: 2\n" in out
    assert "changed: 0\ndeleted: 0\n" in out
    assert "+ demo/worker-extra (1 unit)" in out


def test_scaling_a_worker_app_changes_no_policy_and_no_nginx_conf(
    write_topology, default_data, default_footprint
):
    default_data["workers"][0]["units"] = 4
    scaled = plan(write_topology("scaled.yaml", default_data))
    before = default_footprint
    changes = diff.policy_changes(before, scaled)
    assert (changes.created, changes.changed, changes.deleted) == ([], [], [])
    assert scaled.nginx_conf == before.nginx_conf
    assert scaled.units["demo/worker-read"] == 4


def test_mesh_off_leaves_no_policy_and_no_mesh_label(write_topology, default_data):
    default_data["mesh"]["enabled"] = False
    off = plan(write_topology("off.yaml", default_data))
    assert off.policies == []
    assert off.matrix == []
    for workload in off.workloads:
        assert not any(key.startswith("istio.io/") for key in workload.labels)
    assert all(status.name == "active" for status in off.statuses)


def test_cross_model_source_is_named_by_its_real_app_and_model(write_topology, default_data):
    default_data["cross_model_sources"] = [
        {"app": "grafana", "model": "observability", "alias": "remote-grafana"}
    ]
    result = plan(write_topology("cmr.yaml", default_data))
    sources = {(p.source_namespace, p.source_app_name) for p in result.published}
    assert ("observability", "grafana") in sources
    assert not any(app == "remote-grafana" for _, app in sources)
    principals = [
        p["spec"]["rules"][0]["from"][0]["source"]["principals"][0] for p in result.beacon_policies
    ]
    assert "cluster.local/ns/observability/sa/grafana" in principals
    assert any(
        row.source == "observability/grafana"
        and row.target == "demo/coordinator"
        and row.ports == ("8080",)
        for row in result.matrix
    )


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("model: demo\nworkers: [{app: w, roles: [reed]}]\n", "workers.0.roles.0"),
        ("model: demo\ncordinator: {app: c}\n", "cordinator"),
        ("model: Demo\n", "model"),
        ("model: demo\nworkers: [{app: w, roles: [read], units: 0}]\n", "workers.0.units"),
        ("model: demo\nworkers: [{app: coordinator, roles: [read]}]\n", "workers.0.app"),
        ("model: demo\nworkers: [unclosed\n", "line"),
    ],
)
def test_malformed_topology_fails_with_one_line_naming_the_field(tmp_path, capsys, text, field):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    assert main([str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith(f"error: {path}: ")
    assert field in err


def test_missing_topology_file_is_a_clean_error(tmp_path, capsys):
    assert main([str(tmp_path / "nope.yaml")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_mermaid_lists_every_allowed_flow(capsys, default_footprint):
    assert main(["--format", "mermaid"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("flowchart LR\n")
    edges = [line for line in out.splitlines() if "-->" in line]
    flows = {
        (row.source, row.target, row.via, row.ports, row.methods, row.paths)
        for row in default_footprint.matrix
    }
    assert len(edges) == len(flows)


def test_each_backend_is_listed_with_the_rule_groups_and_dashboards_it_receives(
    write_topology, default_data
):
    data = {**default_data, "telemetry": {**default_data["telemetry"], "grafana": {"app": "g"}}}
    planned = footprint.plan(topology.load(write_topology("cos.yaml", data)))

    received = planned.observability
    assert list(received) == ["grafana-dashboard:g", "logging:loki", "metrics-endpoint:prometheus"]
    prefix = f"demo_{topology.model_uuid('demo')[:8]}"
    assert received["metrics-endpoint:prometheus"] == [
        f"{prefix}_worker_read_WorkerRequests_rules",
        f"{prefix}_worker_write_WorkerRequests_rules",
        f"{prefix}_coordinator_CoordinatorNginx_rules",
        f"{prefix}_coordinator_HostHealth_rules",
    ]
    assert received["logging:loki"][-1] == f"{prefix}_coordinator_worker_errors_alerts"
    assert received["grafana-dashboard:g"] == [
        "file:coordinator-nginx: Coordinator nginx",
        "file:workers: Coordinated workers",
    ]
    report = render.text(planned, "cos.yaml", ["observability"])
    assert "### metrics-endpoint:prometheus\n\n- " in report


def test_tls_switch_makes_every_served_and_published_url_https(write_topology, default_data):
    plain = plan(write_topology("plain.yaml", default_data))
    tls = plan(write_topology("tls.yaml", {**default_data, "tls": True}))
    assert tls.steady and not tls.problems
    assert {s.unit: s.name for s in tls.statuses}["self-signed-certificates/0"] == "active"
    assert tls.units["demo/self-signed-certificates"] == 1  # counted among the applications
    served = {url for what, url in tls.urls if what == "nginx serves"}
    host = "coordinator.demo.svc.cluster.local"
    # The API in place, the proxy on its https port, its plain port left to redirect.
    assert served == {f"https://{host}:8080", f"https://{host}:8443", f"http://{host}:8081"}
    published = [url for what, url in tls.urls if what != "nginx serves"]
    exporter = [url for url in published if ":9113/" in url]
    assert exporter and all(url.startswith("http://") for url in exporter)
    others = [url for url in published if url not in exporter]
    assert others and all(url.startswith(f"https://{host}:8443/") for url in others)
    assert all(url.startswith("http://") for _, url in plain.urls)
    for data in tls.worker_data.values():
        assert not isinstance(data, str)
        assert data.ca_cert and data.server_cert and data.privkey_secret_id
    text = render.text(tls, "tls", ["workers", "urls"])
    assert "tls: ca_cert, server_cert, privkey_secret_id" in text
    assert f"https://{host}:8443/proxy/worker/worker-read-0/metrics" in text
