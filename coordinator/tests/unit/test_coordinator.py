# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The coordinator charm through ops.testing, with Kubernetes faked at the HTTP boundary."""

from __future__ import annotations

import dataclasses
import json

import ops
from coordinator_scenario import APP, MODEL, state
from lightkube.generic_resource import create_namespaced_resource
from ops import testing

from coordinated_workers.testing import read_provider_data, worker_relation
from service_mesh import testing as service_mesh_testing
from service_mesh.testing import FakeKubernetes, WireRequest

MESH_LABELS = {
    "istio.io/dataplane-mode": "ambient",
    "istio.io/use-waypoint": f"{MODEL}-istio-beacon-k8s-waypoint",
    "istio.io/use-waypoint-namespace": MODEL,
}


def mesh_relation(labels: dict[str, str] | None = None) -> testing.Relation:
    return service_mesh_testing.mesh_relation(MESH_LABELS if labels is None else labels)


def workers() -> list[testing.Relation]:
    return [
        worker_relation("worker-read", ["read"], units=2, model=MODEL),
        worker_relation("worker-write", ["write"], units=1, model=MODEL),
    ]


def pod_labels(kube: FakeKubernetes, app: str = APP) -> dict[str, str]:
    sts = kube.get("statefulsets", MODEL, app)
    assert sts is not None
    return sts["spec"]["template"]["metadata"]["labels"]


def policies(kube: FakeKubernetes) -> dict[str, dict]:
    return {p["metadata"]["name"]: p for p in kube.list("authorizationpolicies", MODEL)}


def writes(kube: FakeKubernetes) -> list[WireRequest]:
    return [r for r in kube.clear_requests() if r["method"] not in ("GET",)]


def test_without_workers_labels_itself_and_is_blocked(ctx, kube):
    out = ctx.run(ctx.on.config_changed(), state())
    assert out.unit_status == ops.BlockedStatus("[consistency] Missing any worker relation.")
    assert pod_labels(kube)["app.kubernetes.io/part-of"] == APP
    assert policies(kube) == {}
    nginx_conf = out.get_container("nginx").layers
    assert "nginx" in nginx_conf


def test_full_cluster_on_mesh(ctx, kube):
    relations = [*workers(), mesh_relation()]
    out = ctx.run(ctx.on.config_changed(), state(*relations))

    assert out.unit_status == ops.ActiveStatus()
    assert pod_labels(kube) == {
        "app.kubernetes.io/name": APP,
        "app.kubernetes.io/part-of": APP,
        **MESH_LABELS,
    }
    names = policies(kube)
    assert len(names) == 5  # coordinator->members, and per worker app: ->members, ->Service
    sources = sorted(
        p["spec"]["rules"][0]["from"][0]["source"]["principals"][0] for p in names.values()
    )
    assert sources == sorted(
        [f"cluster.local/ns/{MODEL}/sa/{APP}"]
        + [f"cluster.local/ns/{MODEL}/sa/worker-read"] * 2
        + [f"cluster.local/ns/{MODEL}/sa/worker-write"] * 2
    )
    for policy in names.values():
        assert policy["metadata"]["labels"] == {
            "app.kubernetes.io/instance": f"{APP}-{MODEL}",
            "kubernetes-resource-handler-scope": f"{APP}-{MODEL}-cluster-internal",
        }

    for relation in out.relations:
        if relation.endpoint == "cluster":
            data = read_provider_data(relation)
            assert data.worker_labels == {"app.kubernetes.io/part-of": APP, **MESH_LABELS}
            assert data.worker_config
            assert data.worker_ports == (8080,)


def test_external_policies_published_to_the_beacon(ctx, kube):
    api = testing.Relation("api", interface="coordinated_api", remote_app_name="client")
    metrics = testing.Relation(
        "metrics-endpoint", interface="prometheus_scrape", remote_app_name="prometheus"
    )
    out = ctx.run(ctx.on.config_changed(), state(*workers(), mesh_relation(), api, metrics))
    mesh_out = out.get_relation(next(r.id for r in out.relations if r.endpoint == "service-mesh"))
    published = json.loads(mesh_out.local_app_data["policies"])
    by_source = {(p["source_app_name"], p["target_type"]): p for p in published}
    assert by_source[("prometheus", "unit")]["endpoints"] == [
        {"hosts": None, "ports": [9113], "methods": None, "paths": None}
    ]
    assert by_source[("prometheus", "app")]["endpoints"] == [
        {
            "hosts": None,
            "ports": [8081],
            "methods": ["GET"],
            "paths": ["/proxy/worker/{*}/metrics"],
        }
    ]
    assert by_source[("client", "app")]["endpoints"] == [
        {"hosts": None, "ports": [8080], "methods": None, "paths": None}
    ]


def test_steady_state_makes_no_kubernetes_writes(ctx, kube):
    start = state(*workers(), mesh_relation())
    out = ctx.run(ctx.on.config_changed(), start)
    kube.clear_requests()
    ctx.run(ctx.on.update_status(), out)
    requests = kube.clear_requests()
    assert [r["method"] for r in requests if r["method"] != "GET"] == []
    assert len(requests) <= 2


def test_worker_app_leaving_removes_its_policies(ctx, kube):
    relations = [*workers(), mesh_relation()]
    out = ctx.run(ctx.on.config_changed(), state(*relations))
    assert len(policies(kube)) == 5
    leaving = next(r for r in out.relations if r.remote_app_name == "worker-write")
    ctx.run(ctx.on.relation_broken(leaving), out)
    remaining = policies(kube)
    assert len(remaining) == 3
    assert not any("worker-write" in name for name in remaining)


def test_mesh_removed_drops_mesh_labels_and_policies(ctx, kube):
    out = ctx.run(ctx.on.config_changed(), state(*workers(), mesh_relation()))
    mesh = next(r for r in out.relations if r.endpoint == "service-mesh")
    out = ctx.run(ctx.on.relation_broken(mesh), out)
    assert pod_labels(kube) == {"app.kubernetes.io/name": APP, "app.kubernetes.io/part-of": APP}
    assert policies(kube) == {}
    for relation in out.relations:
        if relation.endpoint == "cluster":
            assert read_provider_data(relation).worker_labels == {"app.kubernetes.io/part-of": APP}


def test_non_leader_with_mesh_writes_nothing_and_does_not_raise(ctx, kube):
    out = ctx.run(ctx.on.config_changed(), state(*workers(), mesh_relation(), leader=False))
    assert writes(kube) == []
    for relation in out.relations:
        assert relation.local_app_data == {}


def test_forbidden_kubernetes_asks_for_trust(ctx, kube):
    kube.fail(status=403, times=None)
    out = ctx.run(ctx.on.config_changed(), state(*workers(), mesh_relation()))
    assert isinstance(out.unit_status, ops.BlockedStatus)
    assert f"juju trust {APP}" in out.unit_status.message


def test_failure_then_recovery_converges(ctx, kube):
    kube.fail(method="PATCH", path_contains="authorizationpolicies", status=500, times=None)
    out = ctx.run(ctx.on.config_changed(), state(*workers(), mesh_relation()))
    assert isinstance(out.unit_status, ops.WaitingStatus)
    kube.clear_faults()
    out = ctx.run(ctx.on.update_status(), out)
    assert out.unit_status == ops.ActiveStatus()
    assert len(policies(kube)) == 5


def test_incoherent_cluster_is_blocked(ctx, kube):
    out = ctx.run(
        ctx.on.config_changed(), state(worker_relation("worker-read", ["read"], model=MODEL))
    )
    assert out.unit_status == ops.BlockedStatus(
        "[consistency] Cluster inconsistent: no worker runs write"
    )


def test_nginx_routes_roles_to_worker_services(ctx, kube):
    out = ctx.run(ctx.on.config_changed(), state(*workers()))
    fs = out.get_container("nginx").get_filesystem(ctx)
    conf = (fs / "etc/nginx/nginx.conf").read_text()
    assert f"worker-read-endpoints.{MODEL}.svc.cluster.local" in conf
    assert f"worker-write-endpoints.{MODEL}.svc.cluster.local" in conf


def test_worker_telemetry_goes_through_the_proxy(ctx, kube):
    loki = testing.Relation(
        "logging",
        interface="loki_push_api",
        remote_app_name="loki",
        remote_units_data={
            0: {
                "endpoint": json.dumps(
                    {
                        "url": "http://loki-0.loki-endpoints.cos.svc.cluster.local:3100/loki/api/v1/push"
                    }
                )
            }
        },
    )
    out = ctx.run(ctx.on.config_changed(), state(*workers(), loki))
    cluster = next(r for r in out.relations if r.endpoint == "cluster")
    data = read_provider_data(cluster)
    assert data.loki_endpoints == {
        "loki/0": f"http://{APP}.{MODEL}.svc.cluster.local:8081/proxy/loki/loki-0/push"
    }
    conf = (out.get_container("nginx").get_filesystem(ctx) / "etc/nginx/nginx.conf").read_text()
    assert "/proxy/loki/loki-0/push" in conf


def test_start_opens_the_api_proxy_and_exporter_ports(ctx, kube):
    out = ctx.run(ctx.on.start(), state())
    assert out.opened_ports == {
        testing.TCPPort(8080),
        testing.TCPPort(8081),
        testing.TCPPort(9113),
    }


def test_mesh_labels_cannot_take_the_cluster_membership_label(ctx, kube):
    # The cluster-internal policies select members by it: a mesh label overriding it would
    # take every pod out of its own cluster's allow rules.
    hijack = {**MESH_LABELS, "app.kubernetes.io/part-of": "someone-else"}
    out = ctx.run(ctx.on.config_changed(), state(*workers(), mesh_relation(hijack)))

    assert pod_labels(kube)["app.kubernetes.io/part-of"] == APP
    assert MESH_LABELS.items() <= pod_labels(kube).items()
    for relation in out.relations:
        if relation.endpoint == "cluster":
            labels = read_provider_data(relation).worker_labels
            assert labels == {**MESH_LABELS, "app.kubernetes.io/part-of": APP}


def test_policies_of_a_same_labelled_coordinator_in_another_model_are_left_alone(ctx, kube):
    # Upstream's ownership labels join app and model with a dash, so app "coordinator" in
    # model "k8s-test" carries exactly our labels; its policies live in its own namespace.
    other = {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {
            "name": "coordinator-k8s-test-policy-coordinator-k8s-test-custom-selector-0",
            "namespace": "k8s-test",
            "labels": {
                "app.kubernetes.io/instance": f"{APP}-{MODEL}",
                "kubernetes-resource-handler-scope": f"{APP}-{MODEL}-cluster-internal",
            },
        },
        "spec": {},
    }
    kube.add(other)

    out = ctx.run(ctx.on.config_changed(), state(*workers(), mesh_relation()))
    mesh = next(r for r in out.relations if r.endpoint == "service-mesh")
    ctx.run(ctx.on.relation_broken(mesh), out)

    assert kube.get("authorizationpolicies", "k8s-test", other["metadata"]["name"]) is not None
    assert policies(kube) == {}


def test_unchanged_desired_state_needs_no_kubernetes_request(ctx, kube):
    out = ctx.run(ctx.on.config_changed(), state(*workers(), mesh_relation()))
    kube.clear_requests()
    out = ctx.run(ctx.on.config_changed(), out)
    assert kube.clear_requests() == []
    # A new worker app changes what we apply: the cluster is consulted again.
    out = ctx.run(
        ctx.on.config_changed(),
        dataclasses.replace(
            out, relations={*out.relations, worker_relation("worker-x", ["read"], model=MODEL)}
        ),
    )
    assert len(policies(kube)) == 7


def test_update_status_repairs_what_was_changed_behind_our_back(ctx, kube):
    out = ctx.run(ctx.on.config_changed(), state(*workers(), mesh_relation()))
    victim = next(iter(policies(kube)))
    policy = create_namespaced_resource(
        "security.istio.io", "v1", "AuthorizationPolicy", "authorizationpolicies"
    )
    kube.client(namespace=MODEL).delete(policy, victim)  # someone else deletes it
    out = ctx.run(ctx.on.config_changed(), out)
    assert victim not in policies(kube)
    ctx.run(ctx.on.update_status(), out)
    assert victim in policies(kube)


def test_a_failed_apply_is_retried_by_the_next_hook_of_any_kind(ctx, kube):
    kube.fail(method="PATCH", path_contains="authorizationpolicies", status=500, times=None)
    out = ctx.run(ctx.on.config_changed(), state(*workers(), mesh_relation()))
    kube.clear_faults()
    ctx.run(ctx.on.config_changed(), out)
    assert len(policies(kube)) == 5


def test_unreachable_pebble_waits_and_touches_no_container(ctx, kube):
    offline = [dataclasses.replace(c, can_connect=False) for c in state().containers]

    out = ctx.run(ctx.on.config_changed(), state(*workers(), containers=offline))

    assert out.unit_status == ops.WaitingStatus("waiting for the nginx container")
    assert all(not c.layers for c in out.containers)


def test_unreachable_exporter_alone_is_reported(ctx, kube):
    exporter_offline = [
        dataclasses.replace(c, can_connect=c.name == "nginx") for c in state().containers
    ]

    out = ctx.run(ctx.on.config_changed(), state(*workers(), containers=exporter_offline))

    assert out.unit_status == ops.WaitingStatus(
        "waiting for the nginx-prometheus-exporter container"
    )
    assert out.get_container("nginx").layers, "nginx is configured all the same"


def test_status_without_a_reconcile_still_checks_pebble(ctx, kube):
    # remove does not reconcile: the status must still find out that Pebble is away.
    offline = [dataclasses.replace(c, can_connect=False) for c in state().containers]

    out = ctx.run(ctx.on.stop(), state(*workers(), containers=offline))

    assert out.unit_status == ops.WaitingStatus("waiting for the nginx container")


def test_a_pebble_error_is_a_waiting_status_not_a_crash(ctx, kube, tmp_path):
    # Pebble answering with an error (here its file API: /etc/nginx is a mount whose host
    # directory is gone, so no config can be written) is not "away": wait and say why.
    gone = testing.Mount(location="/etc/nginx", source=tmp_path / "gone")
    broken = [
        dataclasses.replace(c, mounts={"conf": gone}) if c.name == "nginx" else c
        for c in state().containers
    ]

    out = ctx.run(ctx.on.config_changed(), state(*workers(), containers=broken))

    assert isinstance(out.unit_status, ops.WaitingStatus)
    assert out.unit_status.message.startswith("nginx: Pebble failed (not-found - ")
    assert out.unit_status.message.endswith("); retrying on the next event")
