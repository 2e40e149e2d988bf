# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""prometheus_scrape provider: the jobs we build and the databags we write."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import ops
import pytest
from ops import testing

from coordinated_workers._cluster import WorkerApp, WorkerUnit
from coordinated_workers._telemetry_proxy import worker_metrics_path
from coordinated_workers.telemetry import MetricsEndpointProvider, scrape_jobs
from tests.support import interface_schemas
from tests.support.charm_hook import run_in_hook

if TYPE_CHECKING:
    from collections.abc import Callable

MODEL = testing.Model(name="test", uuid="00000000-0000-4000-8000-000000000001")
PROXY = "coordinator-k8s.test.svc.cluster.local:8081"
COORDINATORS = {
    "coordinator-k8s/1": "coordinator-k8s-1.coordinator-k8s-endpoints.test.svc.cluster.local",
    "coordinator-k8s/0": "coordinator-k8s-0.coordinator-k8s-endpoints.test.svc.cluster.local",
}
META: dict[str, Any] = {
    "name": "coordinator-k8s",
    "provides": {"metrics-endpoint": {"interface": "prometheus_scrape"}},
}


def _unit(app: str, n: int, charm: str | None = "worker-k8s") -> WorkerUnit:
    return WorkerUnit(f"{app}/{n}", f"{app}-{n}.{app}-endpoints.test.svc.cluster.local", charm)


WORKERS = [
    WorkerApp("worker-write", frozenset({"write"}), (_unit("worker-write", 0),)),
    WorkerApp(
        "worker-read", frozenset({"read"}), (_unit("worker-read", 10), _unit("worker-read", 2))
    ),
]


def _jobs(**overrides: Any) -> list[dict[str, object]]:
    args: dict[str, Any] = {
        "model": MODEL.name,
        "model_uuid": MODEL.uuid,
        "worker_metrics_port": 8080,
        "proxy_target": PROXY,
        "tls": False,
    }
    return scrape_jobs(WORKERS, COORDINATORS, **{**args, **overrides})


def _relabels(job: dict[str, object]) -> dict[str, str]:
    rules: list[dict[str, str]] = job["relabel_configs"]  # type: ignore[assignment]
    # Each rule must set its label unconditionally: no source labels, default action.
    assert all(set(rule) == {"target_label", "replacement"} for rule in rules)
    return {rule["target_label"]: rule["replacement"] for rule in rules}


def test_proxied_worker_jobs_go_through_the_coordinator_with_the_workers_topology():
    jobs = {job["job_name"]: job for job in _jobs()}

    job = jobs["worker-worker-read-2"]
    assert job["static_configs"] == [{"targets": [PROXY]}]
    assert job["metrics_path"] == "/proxy/worker/worker-read-2/metrics"
    assert job["metrics_path"] == worker_metrics_path("worker-read/2")
    assert "scheme" not in job
    assert _relabels(job) == {
        "juju_model": "test",
        "juju_model_uuid": MODEL.uuid,
        "juju_application": "worker-read",
        "juju_unit": "worker-read/2",
        "juju_charm": "worker-k8s",
    }


def test_direct_worker_jobs_scrape_each_worker_address():
    jobs = {job["job_name"]: job for job in _jobs(proxy_target=None)}

    job = jobs["worker-worker-write-0"]
    assert job["static_configs"] == [
        {"targets": ["worker-write-0.worker-write-endpoints.test.svc.cluster.local:8080"]}
    ]
    assert job["metrics_path"] == "/metrics"
    assert _relabels(job)["juju_unit"] == "worker-write/0"


def test_one_exporter_job_per_coordinator_unit():
    jobs = {job["job_name"]: job for job in _jobs()}

    job = jobs["nginx-exporter-coordinator-k8s-1"]
    assert job["static_configs"] == [{"targets": [COORDINATORS["coordinator-k8s/1"] + ":9113"]}]
    assert job["metrics_path"] == "/metrics"
    # The coordinator's own topology comes from scrape_metadata; only the unit is per job.
    assert _relabels(job) == {"juju_unit": "coordinator-k8s/1"}


def test_jobs_are_ordered_by_app_then_unit_number_then_coordinator_unit():
    names = [job["job_name"] for job in _jobs()]
    assert names == [
        "worker-worker-read-2",
        "worker-worker-read-10",
        "worker-worker-write-0",
        "nginx-exporter-coordinator-k8s-0",
        "nginx-exporter-coordinator-k8s-1",
    ]


def test_input_order_does_not_change_the_jobs():
    shuffled = [
        WorkerApp(app.name, app.roles, tuple(reversed(app.units))) for app in reversed(WORKERS)
    ]
    again = scrape_jobs(
        shuffled,
        dict(reversed(list(COORDINATORS.items()))),
        model=MODEL.name,
        model_uuid=MODEL.uuid,
        worker_metrics_port=8080,
        proxy_target=PROXY,
        tls=False,
    )
    assert json.dumps(again) == json.dumps(_jobs())


CA = "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----"


def test_tls_switches_the_proxied_jobs_to_https_with_the_ca_and_leaves_the_exporter_http():
    jobs = scrape_jobs(
        WORKERS,
        COORDINATORS,
        model=MODEL.name,
        model_uuid=MODEL.uuid,
        worker_metrics_port=8080,
        proxy_target=PROXY,
        tls=True,
        ca=CA,
    )
    workers = [job for job in jobs if str(job["job_name"]).startswith("worker-")]
    exporters = [job for job in jobs if str(job["job_name"]).startswith("nginx-exporter-")]
    assert workers and exporters
    assert {job.get("scheme") for job in workers} == {"https"}
    assert all(
        job["tls_config"]
        == {"ca_file": "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----"}
        for job in workers
    )
    # The exporter serves plain HTTP on each pod whatever nginx does.
    assert all("scheme" not in job and "tls_config" not in job for job in exporters)


def test_tls_leaves_direct_worker_jobs_on_http():
    """Without the proxy Prometheus reaches each worker itself, and workers serve plain HTTP
    (nginx reaches them so too): https would fail every scrape."""
    jobs = _jobs(proxy_target=None, tls=True, ca=CA)
    workers = [job for job in jobs if str(job["job_name"]).startswith("worker-")]
    assert workers and all(job["static_configs"] != [{"targets": [PROXY]}] for job in workers)
    assert all("scheme" not in job and "tls_config" not in job for job in workers)


def test_worker_without_charm_name_gets_an_empty_charm_label():
    app = WorkerApp("bare", frozenset({"read"}), (_unit("bare", 0, charm=None),))
    [job] = scrape_jobs(
        [app], {}, model="m", model_uuid="u", worker_metrics_port=1, proxy_target=None, tls=False
    )
    assert _relabels(job)["juju_charm"] == ""


def test_jobs_match_the_interface_schema():
    bag = {
        "scrape_jobs": json.dumps(_jobs()),
        "scrape_metadata": json.dumps(
            {
                "model": "m",
                "model_uuid": "u",
                "application": "a",
                "unit": "a/0",
                "charm_name": "c",
            }
        ),
        "alert_rules": json.dumps({"groups": []}),
    }
    interface_schemas.validate(
        bag,
        interface_schemas.PROMETHEUS_SCRAPE_PROVIDER_APP,
        interface_schemas.PROMETHEUS_SCRAPE_PROVIDER_APP_JSON_KEYS,
    )


# --- MetricsEndpointProvider through ops.testing -------------------------------------------

ADDRESS = COORDINATORS["coordinator-k8s/0"]


def _run(
    state: testing.State, action: Callable[[ops.CharmBase], bool]
) -> tuple[testing.State, bool]:
    return run_in_hook(META, state, action)


def _publish(**kwargs: Any) -> Callable[[ops.CharmBase], bool]:
    return lambda charm: MetricsEndpointProvider(charm).publish(
        _jobs(), unit_address=ADDRESS, **kwargs
    )


def _relation(**fields: Any) -> testing.Relation:
    return testing.Relation(
        "metrics-endpoint", "prometheus_scrape", remote_app_name="prometheus", **fields
    )


def test_leader_publishes_jobs_metadata_and_unit_address_as_the_schema_says():
    relation = _relation()
    out, changed = _run(testing.State(leader=True, relations=[relation], model=MODEL), _publish())

    assert changed
    rel = out.get_relation(relation.id)
    interface_schemas.validate(
        rel.local_app_data,
        interface_schemas.PROMETHEUS_SCRAPE_PROVIDER_APP,
        interface_schemas.PROMETHEUS_SCRAPE_PROVIDER_APP_JSON_KEYS,
    )
    interface_schemas.validate(
        rel.local_unit_data, interface_schemas.PROMETHEUS_SCRAPE_PROVIDER_UNIT, ()
    )
    assert json.loads(rel.local_app_data["scrape_jobs"]) == _jobs()
    assert json.loads(rel.local_app_data["scrape_metadata"]) == {
        "model": "test",
        "model_uuid": MODEL.uuid,
        "application": "coordinator-k8s",
        "unit": "coordinator-k8s/0",
        "charm_name": "coordinator-k8s",
    }
    assert json.loads(rel.local_app_data["alert_rules"]) == {"groups": []}
    assert rel.local_unit_data["prometheus_scrape_unit_address"] == ADDRESS
    assert rel.local_unit_data["prometheus_scrape_unit_name"] == "coordinator-k8s/0"
    assert "prometheus_scrape_unit_path" not in rel.local_unit_data


def test_app_data_is_deterministic_json():
    relation = _relation()
    out, _ = _run(testing.State(leader=True, relations=[relation], model=MODEL), _publish())
    bag = out.get_relation(relation.id).local_app_data
    for key in ("scrape_jobs", "scrape_metadata", "alert_rules"):
        assert bag[key] == json.dumps(json.loads(bag[key]), sort_keys=True)


def test_alert_rules_are_published_when_given():
    rules: dict[str, object] = {
        "groups": [
            {
                "name": "workers",
                "rules": [
                    {
                        "alert": "Down",
                        "expr": "up < 1",
                        "for": "5m",
                        "labels": {},
                        "annotations": {},
                    }
                ],
            }
        ]
    }
    relation = _relation()
    out, _ = _run(
        testing.State(leader=True, relations=[relation], model=MODEL), _publish(alert_rules=rules)
    )
    bag = out.get_relation(relation.id).local_app_data
    assert json.loads(bag["alert_rules"]) == rules
    interface_schemas.validate(
        bag,
        interface_schemas.PROMETHEUS_SCRAPE_PROVIDER_APP,
        interface_schemas.PROMETHEUS_SCRAPE_PROVIDER_APP_JSON_KEYS,
    )


def test_non_leader_writes_only_its_unit_data():
    relation = _relation()
    out, changed = _run(testing.State(leader=False, relations=[relation], model=MODEL), _publish())

    assert changed
    rel = out.get_relation(relation.id)
    assert rel.local_app_data == {}
    assert rel.local_unit_data["prometheus_scrape_unit_address"] == ADDRESS


def test_republishing_the_same_data_writes_nothing():
    relation = _relation()
    state = testing.State(leader=True, relations=[relation], model=MODEL)
    first, _ = _run(state, _publish())
    second, changed = _run(first, _publish())

    assert not changed
    assert second.get_relation(relation.id) == first.get_relation(relation.id)


def test_only_the_changed_key_is_rewritten():
    relation = _relation()
    first, _ = _run(testing.State(leader=True, relations=[relation], model=MODEL), _publish())
    rules: dict[str, object] = {"groups": [{"name": "g", "rules": []}]}
    second, changed = _run(first, _publish(alert_rules=rules))

    assert changed
    before = first.get_relation(relation.id).local_app_data
    after = second.get_relation(relation.id).local_app_data
    assert {k for k in after if after[k] != before.get(k)} == {"alert_rules"}


def test_publish_on_one_relation_leaves_the_others_alone():
    one, other = _relation(), _relation()
    state = testing.State(leader=True, relations=[one, other], model=MODEL)

    def publish_one(charm: ops.CharmBase) -> bool:
        relation = charm.model.get_relation("metrics-endpoint", one.id)
        return MetricsEndpointProvider(charm).publish(
            _jobs(), unit_address=ADDRESS, relation=relation
        )

    out, _ = _run(state, publish_one)
    assert "scrape_jobs" in out.get_relation(one.id).local_app_data
    assert out.get_relation(other.id).local_app_data == {}


@pytest.mark.parametrize("leader", [True, False])
def test_publish_without_relations_is_a_no_op(leader: bool):
    out, changed = _run(testing.State(leader=leader, model=MODEL), _publish())
    assert not changed
    assert not out.relations
