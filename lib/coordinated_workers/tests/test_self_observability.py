# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The cluster observes itself (issue 15): alert rules, dashboards and logs, against the vectors.

The wire proof rebuilds, from the golden vectors of ``tests/vectors/cos``, the rule files and
the dashboard the upstream tester charms shipped (the vectors hold them with topology added; the
``juju_*`` labels, the dashboard's uid and its ``charm:`` tag are what the libraries added), runs
a coordinator on them through ops.testing, and compares what it publishes with what the real
libraries published, decoded.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import sys
from collections.abc import Iterator
from typing import Any

import ops
import pytest
import yaml
from ops import testing

from coordinated_workers.observability import ObservabilityConfig
from coordinated_workers.telemetry import alert_rules
from coordinated_workers.telemetry.grafana_dashboard import MAX_DASHBOARD_BYTES, decode_content
from coordinated_workers.testing import worker_relation
from service_mesh.testing import FakeKubernetes
from tests.support.coordinators import (
    COORDINATOR_CONTAINERS,
    coordinator_charm,
    coordinator_state,
    kubernetes_with,
    minimal_coordinator_config,
)

MODEL = "obs"
UUID = "3b1f6a2e-7c4d-4e8a-9f10-2a5b6c7d8e9f"
APP = "coordinator"
CHARM = "coordinator-tester"
LOKI_URL = "http://loki-0.loki-endpoints.obs.svc.cluster.local:3100/loki/api/v1/push"

META = {
    "name": CHARM,
    "containers": COORDINATOR_CONTAINERS,
    "provides": {
        "cluster": {"interface": "cluster"},
        "metrics-endpoint": {"interface": "prometheus_scrape"},
        "grafana-dashboard": {"interface": "grafana_dashboard"},
    },
    "requires": {"logging": {"interface": "loki_push_api"}},
}


def _charm_type(nginx_rules: pathlib.Path | None) -> type[ops.CharmBase]:
    return coordinator_charm(
        minimal_coordinator_config(
            role="all",
            port=8080,
            keep=("metrics", "logging"),
            observability=ObservabilityConfig(
                coordinator_prometheus_rules=nginx_rules, library_dashboards=None
            ),
        )
    )


# --- the tester's files, rebuilt from the vectors --------------------------------------------


def _vector(vectors_dir: pathlib.Path, name: str) -> Any:
    return json.loads((vectors_dir / "cos" / name).read_text())


def _upstream_rules(vectors_dir: pathlib.Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The real Coordinator's consolidated Prometheus and Loki rules (decoded)."""
    bags = _vector(vectors_dir, "coordinator-tester-relations-tls.json")["relations"]
    return (
        json.loads(bags["metrics-endpoint"]["databags"]["coordinator"]["alert_rules"]),
        json.loads(bags["logging"]["databags"]["coordinator"]["alert_rules"]),
    )


def _without_topology(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            **rule,
            "labels": {k: v for k, v in rule["labels"].items() if not k.startswith("juju_")},
        }
        for rule in rules
    ]


def _write_tester_files(root: pathlib.Path, vectors_dir: pathlib.Path) -> pathlib.Path:
    """The tester's rules and dashboard under `root` (the charm dir); returns the nginx folder."""
    prometheus, loki = _upstream_rules(vectors_dir)
    worker_group, nginx_group, _host_health = prometheus["groups"]
    rules_dir = root / "src" / "prometheus_alert_rules"
    rules_dir.mkdir(parents=True)
    (rules_dir / "alerts.yaml").write_text(
        yaml.safe_dump(
            {
                "groups": [
                    {"name": "tempo_alerts", "rules": _without_topology(worker_group["rules"])}
                ]
            }
        )
    )
    nginx_dir = root / "nginx_rules"
    nginx_dir.mkdir()
    (nginx_dir / "knyar-nginx-exporter.yml").write_text(
        yaml.safe_dump(
            {
                "groups": [
                    {
                        "name": "KnyarNginxExporter",
                        "rules": _without_topology(nginx_group["rules"]),
                    }
                ]
            }
        )
    )
    [loki_rule] = _without_topology(loki["groups"][1]["rules"])
    loki_rule["expr"] = loki_rule["expr"].replace('job=~".+"', "%%juju_topology%%")
    loki_dir = root / "src" / "loki_alert_rules"
    loki_dir.mkdir(parents=True)
    (loki_dir / "error_level_logs_found.rule").write_text(yaml.safe_dump(loki_rule))

    decoded = json.loads(
        (vectors_dir / "cos" / "grafana_dashboard-decoded-tempo.raw.json").read_text()
    )
    changed = _vector(vectors_dir, "grafana_dashboard-provider.json")["decoded"]["templates"][
        "file:tempo"
    ]["top_level_keys_changed_vs_source_file"]
    source = {**decoded, **{key: value["source_file"] for key, value in changed.items()}}
    dashboards = root / "src" / "grafana_dashboards"
    dashboards.mkdir(parents=True)
    (dashboards / "tempo.json").write_text(json.dumps(source))
    return nginx_dir


# --- running the coordinator -------------------------------------------------------------------


@pytest.fixture
def kube() -> Iterator[FakeKubernetes]:
    with kubernetes_with(APP, MODEL) as fake:
        yield fake


def _relations() -> list[testing.RelationBase]:
    return [
        worker_relation("worker", ["all"], model=MODEL, charm_name="worker-tester"),
        testing.Relation("metrics-endpoint", remote_app_name="prometheus"),
        testing.Relation(
            "logging",
            remote_app_name="loki",
            remote_units_data={0: {"endpoint": json.dumps({"url": LOKI_URL})}},
        ),
        testing.Relation("grafana-dashboard", remote_app_name="grafana"),
    ]


def _state(relations: list[testing.RelationBase], leader: bool = True) -> testing.State:
    return coordinator_state(*relations, model=testing.Model(name=MODEL, uuid=UUID), leader=leader)


def _context(root: pathlib.Path, nginx_rules: pathlib.Path | None) -> testing.Context[Any]:
    return testing.Context(_charm_type(nginx_rules), meta=META, app_name=APP, charm_root=root)


def _app_bag(state: testing.State, endpoint: str) -> dict[str, str]:
    return dict(next(r for r in state.relations if r.endpoint == endpoint).local_app_data)


@pytest.fixture
def tester(tmp_path: pathlib.Path, vectors_dir: pathlib.Path, kube: FakeKubernetes):
    nginx_rules = _write_tester_files(tmp_path, vectors_dir)
    return _context(tmp_path, nginx_rules), tmp_path


# --- wire proof ----------------------------------------------------------------------------


def test_published_rules_decode_to_what_the_real_coordinator_published(tester, vectors_dir):
    ctx, _root = tester
    out = ctx.run(ctx.on.config_changed(), _state(_relations()))

    prometheus, loki = _upstream_rules(vectors_dir)
    assert json.loads(_app_bag(out, "metrics-endpoint")["alert_rules"]) == prometheus
    logging_bag = _app_bag(out, "logging")
    assert json.loads(logging_bag["alert_rules"]) == loki
    upstream_logging = _vector(vectors_dir, "loki_push_api.json")["decoded"]["consumer_app"]
    assert json.loads(logging_bag["metadata"]) == upstream_logging["metadata"]
    assert out.unit_status == ops.ActiveStatus()


def test_published_dashboard_decodes_to_what_the_real_library_published(tester, vectors_dir):
    ctx, _root = tester
    out = ctx.run(ctx.on.config_changed(), _state(_relations()))

    published = json.loads(_app_bag(out, "grafana-dashboard")["dashboards"])
    upstream = _vector(vectors_dir, "grafana_dashboard-provider.json")
    upstream_bag = json.loads(upstream["relation"]["databags"]["coordinator"]["dashboards"])
    assert published["templates"].keys() == upstream_bag["templates"].keys() == {"file:tempo"}
    ours, theirs = published["templates"]["file:tempo"], upstream_bag["templates"]["file:tempo"]
    assert {k: v for k, v in ours.items() if k != "content"} == {
        k: v for k, v in theirs.items() if k != "content"
    }
    # Compared decoded, not as base64: liblzma versions may compress differently.
    raw = (vectors_dir / "cos" / "grafana_dashboard-decoded-tempo.raw.json").read_text()
    assert decode_content(ours["content"]) == decode_content(theirs["content"]) == raw
    assert len(published["uuid"]) == 36


def test_the_library_ships_its_own_nginx_rules_and_dashboard(tmp_path, kube):
    ctx = testing.Context(
        _charm_type(ObservabilityConfig().coordinator_prometheus_rules),
        meta=META,
        app_name=APP,
        charm_root=tmp_path,
    )

    out = ctx.run(ctx.on.config_changed(), _state(_relations()))
    names = alert_rules.group_names(json.loads(_app_bag(out, "metrics-endpoint")["alert_rules"]))
    assert names == [
        f"{MODEL}_3b1f6a2e_{APP}_CoordinatorNginx_rules",
        f"{MODEL}_3b1f6a2e_{APP}_HostHealth_rules",
    ]

    default = testing.Context(_default_charm(), meta=META, app_name=APP, charm_root=tmp_path)
    out = default.run(default.on.config_changed(), _state(_relations()))
    templates = json.loads(_app_bag(out, "grafana-dashboard")["dashboards"])["templates"]
    assert list(templates) == ["file:coordinator-nginx"]
    nginx = json.loads(decode_content(templates["file:coordinator-nginx"]["content"]))
    assert nginx["tags"][-1] == f"charm: {CHARM}"
    assert len(nginx["uid"]) == 40
    assert {t["datasource"]["uid"] for p in nginx["panels"] for t in p["targets"]} == {
        "${prometheusds}"
    }


def _default_charm() -> type[ops.CharmBase]:
    """The tester with the library's defaults (nginx rules and dashboard)."""
    return coordinator_charm(
        minimal_coordinator_config(role="all", port=8080, keep=("metrics", "logging"))
    )


# --- cost: a steady hook renders nothing ---------------------------------------------------


def _recording_reads(monkeypatch: pytest.MonkeyPatch, root: pathlib.Path) -> list[str]:
    """Record every read of a file under `root` (the charm's rules and dashboards)."""
    reads: list[str] = []
    for method in ("read_text", "read_bytes"):
        original = getattr(pathlib.Path, method)

        def recording(self: pathlib.Path, *args: Any, _original: Any = original, **kwargs: Any):
            if root in self.parents and self.name not in ("metadata.yaml",):
                reads.append(str(self.relative_to(root)))
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(pathlib.Path, method, recording)
    return reads


def test_a_steady_hook_reads_no_file_imports_no_cosl_and_writes_no_bag(tester, monkeypatch):
    ctx, root = tester
    first = ctx.run(ctx.on.config_changed(), _state(_relations()))
    reads = _recording_reads(monkeypatch, root / "src")
    cosl_modules = {name: m for name, m in sys.modules.items() if name.split(".")[0] == "cosl"}
    for name in cosl_modules:  # as in a fresh hook process; put back below
        monkeypatch.delitem(sys.modules, name)

    steady = ctx.run(ctx.on.update_status(), first)

    assert reads == []
    assert not [name for name in sys.modules if name.split(".")[0] == "cosl"]
    for endpoint in ("metrics-endpoint", "logging", "grafana-dashboard"):
        assert _app_bag(steady, endpoint) == _app_bag(first, endpoint), endpoint


def test_a_new_worker_app_or_relation_renders_again(tester):
    ctx, _root = tester
    relations = _relations()
    first = ctx.run(ctx.on.config_changed(), _state(relations))

    second_worker = worker_relation("worker-b", ["all"], model=MODEL, charm_name="worker-tester")
    prometheus_b = testing.Relation("metrics-endpoint", remote_app_name="prometheus-b")
    out = ctx.run(
        ctx.on.relation_joined(second_worker),
        dataclasses.replace(first, relations=[*first.relations, second_worker, prometheus_b]),
    )

    for relation in (r for r in out.relations if r.endpoint == "metrics-endpoint"):
        names = alert_rules.group_names(json.loads(relation.local_app_data["alert_rules"]))
        assert f"{MODEL}_3b1f6a2e_worker_b_tempo_alerts_rules" in names  # cosl: "_" for "-"
    loki = json.loads(_app_bag(out, "logging")["alert_rules"])
    labels = {r["labels"]["juju_application"] for g in loki["groups"] for r in g["rules"]}
    assert labels == {"worker", "worker-b", APP}


def test_a_changed_file_is_read_again(tester):
    ctx, root = tester
    first = ctx.run(ctx.on.config_changed(), _state(_relations()))
    (root / "src" / "prometheus_alert_rules" / "more.rule").write_text(
        yaml.safe_dump({"alert": "WorkerDown", "expr": "up == 0"})
    )

    out = ctx.run(ctx.on.upgrade_charm(), first)

    names = alert_rules.group_names(json.loads(_app_bag(out, "metrics-endpoint")["alert_rules"]))
    assert f"{MODEL}_3b1f6a2e_worker_more_rules" in names


def test_only_the_leader_publishes(tester):
    ctx, _root = tester
    out = ctx.run(ctx.on.config_changed(), _state(_relations(), leader=False))
    assert "alert_rules" not in _app_bag(out, "logging")
    assert "dashboards" not in _app_bag(out, "grafana-dashboard")


# --- files that cannot be used -------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("groups: [", "not valid YAML (line 1)"),
        ("", "empty"),
        ("- a list", "not a mapping"),
        ("groups: [{name: x}]", "group 'x' has no list of rules"),
        ("groups: [{rules: [{alert: A, expr: up}]}]", "group 1 has no name"),
        ("alert: A", "the rule has no 'expr' text"),
        ("{alert: A, record: B, expr: up}", "the rule needs one 'alert' or 'record' name"),
        (
            "{alert: A, expr: up, labels: {a: [1]}}",
            "the rule: 'labels' is not a mapping of text to text",
        ),
        ("groups: [{name: g, rules: [3]}]", "rule 1 of group 'g' is not a mapping"),
    ],
)
def test_a_malformed_rule_file_is_named_in_the_status_and_the_rest_published(
    tester, content, reason
):
    ctx, root = tester
    (root / "src" / "prometheus_alert_rules" / "broken.yaml").write_text(content)

    out = ctx.run(ctx.on.config_changed(), _state(_relations()))

    assert out.unit_status == ops.BlockedStatus(
        f"src/prometheus_alert_rules/broken.yaml: {reason}"
    )
    names = alert_rules.group_names(json.loads(_app_bag(out, "metrics-endpoint")["alert_rules"]))
    assert f"{MODEL}_3b1f6a2e_worker_tempo_alerts_rules" in names

    steady = ctx.run(ctx.on.update_status(), out)  # renders nothing, still says why
    assert steady.unit_status == out.unit_status

    (root / "src" / "prometheus_alert_rules" / "broken.yaml").unlink()
    fixed = ctx.run(ctx.on.upgrade_charm(), steady)
    assert fixed.unit_status == ops.ActiveStatus()


def test_a_group_defined_twice_is_named_and_published_once(tester):
    ctx, root = tester
    (root / "src" / "prometheus_alert_rules" / "again.yaml").write_text(
        yaml.safe_dump(
            {"groups": [{"name": "tempo_alerts", "rules": [{"alert": "A", "expr": "up"}]}]}
        )
    )
    out = ctx.run(ctx.on.config_changed(), _state(_relations()))
    assert out.unit_status == ops.BlockedStatus(
        "src/prometheus_alert_rules/alerts.yaml: group 'tempo_alerts' is defined in "
        "src/prometheus_alert_rules/again.yaml already"
    )
    names = alert_rules.group_names(json.loads(_app_bag(out, "metrics-endpoint")["alert_rules"]))
    assert len(names) == len(set(names))


def test_an_oversized_or_malformed_dashboard_is_refused_with_a_status(tester):
    ctx, root = tester
    dashboards = root / "src" / "grafana_dashboards"
    (dashboards / "huge.json").write_text(json.dumps({"x": "y" * MAX_DASHBOARD_BYTES}))
    out = ctx.run(ctx.on.config_changed(), _state(_relations()))
    assert isinstance(out.unit_status, ops.BlockedStatus)
    assert out.unit_status.message.startswith("src/grafana_dashboards/huge.json: ")
    assert f"more than the {MAX_DASHBOARD_BYTES} a dashboard may have" in out.unit_status.message
    published = json.loads(_app_bag(out, "grafana-dashboard")["dashboards"])
    assert list(published["templates"]) == ["file:tempo"]

    (dashboards / "huge.json").write_text("{not json")
    out = ctx.run(ctx.on.upgrade_charm(), out)
    assert out.unit_status == ops.BlockedStatus("src/grafana_dashboards/huge.json: not valid JSON")


# --- logs ----------------------------------------------------------------------------------


def test_nginx_and_exporter_forward_their_logs_to_loki(tester):
    ctx, _root = tester
    out = ctx.run(ctx.on.config_changed(), _state(_relations()))
    for name in ("nginx", "nginx-prometheus-exporter"):
        target = out.get_container(name).plan.log_targets["loki-loki-0"]
        assert target.location == LOKI_URL
        assert target.services == ["all"]
        assert target.labels is not None
        assert target.labels["juju_application"] == APP
        assert target.labels["juju_unit"] == f"{APP}/0"

    without_loki = [r for r in out.relations if r.endpoint != "logging"]
    after = ctx.run(ctx.on.config_changed(), dataclasses.replace(out, relations=without_loki))
    for name in ("nginx", "nginx-prometheus-exporter"):
        assert after.get_container(name).plan.log_targets["loki-loki-0"].services == ["-all"]


def test_unreadable_rule_files_are_named(tmp_path):
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "latin1.rule").write_bytes(b"alert: \xe9t\xe9\nexpr: up\n")
    (folder / "big.yaml").write_text("#" * (alert_rules.MAX_RULE_FILE_BYTES + 1))
    (folder / "notes.txt").write_text("not a rule file: ignored")
    (folder / "ok.rules").write_text("alert: A\nexpr: up\n")

    files, problems = alert_rules.read_rule_files(folder, "rules")

    assert [f.stem for f in files] == ["ok"]
    assert [str(p) for p in problems] == [
        f"rules/big.yaml: larger than {alert_rules.MAX_RULE_FILE_BYTES} bytes",
        "rules/latin1.rule: not UTF-8 text",
    ]
    assert alert_rules.read_rule_files(tmp_path / "absent", "absent") == ([], [])


def test_a_model_uuid_cosl_refuses_is_a_status_not_a_crash(tester):
    ctx, _root = tester
    state = dataclasses.replace(
        _state(_relations()),
        model=testing.Model(name=MODEL, uuid="523d8091-7e22-5b5a-b95b-4905b076ebed"),
    )
    out = ctx.run(ctx.on.config_changed(), state)
    assert out.unit_status == ops.BlockedStatus(
        "alert rules: model UUID '523d8091-7e22-5b5a-b95b-4905b076ebed' is not a version-4 "
        "UUID, which cosl requires"
    )
    assert "alert_rules" not in _app_bag(out, "logging")
    assert (
        "file:tempo" in json.loads(_app_bag(out, "grafana-dashboard")["dashboards"])["templates"]
    )


@pytest.mark.parametrize("charm_name", ["x" * 5000, "Worker Tester", "a\nb", "w-"])
def test_a_worker_charm_name_no_charm_could_have_gets_no_rules(tester, charm_name):
    ctx, _root = tester
    hostile = worker_relation("worker", ["all"], model=MODEL, charm_name=charm_name)
    relations = [hostile, *_relations()[1:]]
    out = ctx.run(ctx.on.config_changed(), _state(relations))
    rules = json.loads(_app_bag(out, "metrics-endpoint")["alert_rules"])
    assert {r["labels"]["juju_application"] for g in rules["groups"] for r in g["rules"]} == {APP}


def test_a_malformed_file_outside_the_charm_dir_is_named_by_its_full_path(tester, tmp_path):
    ctx, root = tester
    nginx_rules = root / "nginx_rules"
    (nginx_rules / "bad.rules").write_text("alert: A")
    out = ctx.run(ctx.on.config_changed(), _state(_relations()))
    assert out.unit_status == ops.BlockedStatus(
        f"{nginx_rules}/bad.rules: the rule has no 'expr' text"
    )
