# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The show-mesh action: the live allow matrix, and every difference from what is intended.

The coordinator first converges on a fake cluster (it applies its cluster-internal policies and
labels its StatefulSet); the fake runs no controller, so the test then seeds the Pods with the
labels they would carry, and changes the cluster behind the coordinator's back.
"""

from __future__ import annotations

import json
import sys

import pytest
from coordinator_scenario import APP, MODEL, state
from lightkube.generic_resource import create_namespaced_resource
from ops import testing

from coordinated_workers import _mesh as mesh
from coordinated_workers.testing import worker_relation
from service_mesh import MeshPolicy, istio
from service_mesh import testing as service_mesh_testing
from service_mesh.testing import FakeKubernetes

MESH_LABELS = {"istio.io/dataplane-mode": "ambient"}
BEACON = "istio-beacon-k8s"
WORKER_UNITS = {"worker-read": 2, "worker-write": 1}


def relations(*extra: testing.RelationBase) -> list[testing.RelationBase]:
    return [
        worker_relation("worker-read", ["read"], units=2, model=MODEL),
        worker_relation("worker-write", ["write"], units=1, model=MODEL),
        service_mesh_testing.mesh_relation(MESH_LABELS, remote_app_name=BEACON),
        *extra,
    ]


def add_pod(kube: FakeKubernetes, name: str, labels: dict[str, str]) -> None:
    kube.add(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": MODEL, "labels": labels},
            "spec": {"containers": [{"name": "charm"}]},
        }
    )


def cluster_labels(app: str, meshed: bool = True) -> dict[str, str]:
    mesh_labels = MESH_LABELS if meshed else {}
    return {"app.kubernetes.io/name": app, "app.kubernetes.io/part-of": APP, **mesh_labels}


def converge(ctx, kube, rels, meshed: bool = True) -> testing.State:
    """The coordinator's first hook, then every cluster pod as a roll-out would label it."""
    out = ctx.run(ctx.on.config_changed(), state(*rels))
    add_pod(kube, f"{APP}-0", cluster_labels(APP, meshed))
    for worker, units in WORKER_UNITS.items():
        for unit in range(units):
            add_pod(kube, f"{worker}-{unit}", cluster_labels(worker, meshed))
    add_pod(kube, "other-0", {"app.kubernetes.io/name": "other"})  # not in the cluster
    kube.clear_requests()
    return out


def show_mesh(ctx, rels, **kwargs) -> dict:
    ctx.run(ctx.on.action("show-mesh"), state(*rels, **kwargs))
    assert ctx.action_results is not None
    return ctx.action_results


def policies(kube: FakeKubernetes) -> list[dict]:
    return kube.list("authorizationpolicies", MODEL)


def test_a_cluster_as_intended_shows_its_flows_and_no_difference(ctx, kube):
    rels = relations()
    converge(ctx, kube, rels)

    results = show_mesh(ctx, rels)

    assert results["in-sync"] == "true"
    assert "differences" not in results
    assert results["policies"] == "5"
    # every member reaches every member on pods (3 x 3), each worker the Service (2)
    assert results["flows"] == str(3 * 3 + 2)
    assert results["summary"] == f"5 AuthorizationPolicies allow 11 flows; as {APP} intends"
    report = results["report"]
    members = f"{APP}, worker-read, worker-write"
    assert f"  worker-read -> {members} via pods, any port" in report
    assert f"  worker-write -> {APP} via service {APP}, any port" in report
    assert "differences: none" in report
    # the pod outside the cluster is neither a difference nor reached by our policies
    assert "selected by no policy (in a hardened mesh, nothing reaches them): other" in report
    # three reads, nothing written
    assert [(r["method"], r["path"].rsplit("/", 1)[-1]) for r in kube.requests] == [
        ("GET", "authorizationpolicies"),
        ("GET", "pods"),
        ("GET", "services"),
    ]


def test_a_missing_policy_is_named_with_what_it_allowed(ctx, kube):
    rels = relations()
    converge(ctx, kube, rels)
    [gone] = [p for p in policies(kube) if "worker-write" in p["metadata"]["name"]][:1]
    resource = create_namespaced_resource(istio.GROUP, istio.VERSION, istio.KIND, istio.PLURAL)
    with kube.client(namespace=MODEL) as client:
        client.delete(resource, gone["metadata"]["name"], namespace=MODEL)

    results = show_mesh(ctx, rels)

    assert results["in-sync"] == "false"
    assert set(results["differences"]) == {"policy-missing"}
    missing = results["differences"]["policy-missing"]
    assert missing.startswith(gone["metadata"]["name"] + ": lets worker-write reach ")
    assert results["policies"] == "4"


def test_a_changed_and_an_extra_policy_are_named(ctx, kube):
    rels = relations()
    converge(ctx, kube, rels)
    [changed, *_] = sorted(policies(kube), key=lambda p: p["metadata"]["name"])
    changed["spec"]["rules"][0]["to"] = [{"operation": {"ports": ["80"]}}]
    kube.add(changed)
    extra = json.loads(json.dumps(changed))
    extra["metadata"] = {
        "name": "left-behind",
        "namespace": MODEL,
        "labels": mesh.policy_manager_labels(APP, MODEL),
    }
    kube.add(extra)
    foreign = dict(extra, metadata={"name": "someone-elses", "namespace": MODEL})
    kube.add(foreign)  # not ours: neither extra nor compared

    results = show_mesh(ctx, rels)

    assert results["differences"] == {
        "policy-changed": f"{changed['metadata']['name']}: its spec is not the intended one",
        "policy-extra": "left-behind: carries our ownership labels but is not wanted",
    }
    assert "ports 80" in results["report"]  # the matrix shows what the live policy allows


def test_a_pod_without_its_labels_is_named_and_unreachable(ctx, kube):
    rels = relations()
    converge(ctx, kube, rels)
    add_pod(kube, "worker-write-0", {"app.kubernetes.io/name": "worker-write"})  # not rolled

    results = show_mesh(ctx, rels)

    assert results["differences"] == {
        "pod-unlabelled": (
            f"worker-write-0: lacks app.kubernetes.io/part-of={APP}; "
            "lacks istio.io/dataplane-mode=ambient"
        )
    }
    # no selector matches worker-write any more: members reach the two others only
    assert f"  worker-read -> {APP}, worker-read via pods" in results["report"]
    assert results["flows"] == str(3 * 2 + 2)


def test_a_policy_asked_of_the_beacon_is_missing_until_the_beacon_applies_it(ctx, kube):
    rels = relations(testing.Relation("api", remote_app_name="api-client"))
    out = converge(ctx, kube, rels)
    [mesh_out] = [r for r in out.relations if r.endpoint == "service-mesh"]
    published = [
        MeshPolicy.model_validate(p) for p in json.loads(mesh_out.local_app_data["policies"])
    ]
    beacon_policies = istio.authorization_policies(BEACON, MODEL, published)
    assert len(beacon_policies) == 1

    results = show_mesh(ctx, rels)

    [name] = [p["metadata"]["name"] for p in beacon_policies]
    assert results["differences"] == {
        "beacon-policy-missing": f"{name}: lets api-client reach Service {APP}"
    }

    for policy in beacon_policies:
        kube.add({**policy, "metadata": {**policy["metadata"], "labels": {"beacon": "owns"}}})
    results = show_mesh(ctx, rels, leader=False)  # any unit can answer

    assert results["in-sync"] == "true"
    assert f"  api-client -> {APP} via service {APP}, ports 8080" in results["report"]


def test_without_the_mesh_our_leftover_policies_are_extra(ctx, kube):
    rels = relations()
    converge(ctx, kube, rels)
    unmeshed = rels[:2]
    for pod in kube.list("pods", MODEL):  # the mesh labels are gone
        labels = {k: v for k, v in pod["metadata"]["labels"].items() if k not in MESH_LABELS}
        add_pod(kube, pod["metadata"]["name"], labels)

    results = show_mesh(ctx, unmeshed)

    assert set(results["differences"]) == {"policy-extra"}
    assert len(results["differences"]["policy-extra"].splitlines()) == 5


def test_a_policy_the_matrix_does_not_model_is_listed_not_misread(ctx, kube):
    rels = relations()
    converge(ctx, kube, rels)
    kube.add(
        {
            "apiVersion": istio.API_VERSION,
            "kind": istio.KIND,
            "metadata": {"name": "deny-all", "namespace": MODEL},
            "spec": {"action": "DENY", "rules": [{}]},
        }
    )

    results = show_mesh(ctx, rels)

    assert "not evaluated:\n  deny-all: test/deny-all: only ALLOW policies" in results["report"]
    assert results["in-sync"] == "true"


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (lambda kube: kube.fail(status=403, times=None), f"juju trust {APP} --scope=cluster"),
        (lambda kube: setattr(kube, "crds_installed", False), "Istio is not installed"),
        (
            lambda kube: kube.fail_transport("GET", "/pods", "timeout", times=None),
            "the Kubernetes API did not answer",
        ),
        (lambda kube: kube.fail("GET", "/services", 500), "Kubernetes answered 500"),
    ],
    ids=["forbidden", "no-istio", "timeout", "server-error"],
)
def test_kubernetes_errors_fail_the_action_with_the_reason(ctx, kube, fault, message):
    rels = relations()
    converge(ctx, kube, rels)
    fault(kube)

    with pytest.raises(testing.ActionFailed) as failed:
        ctx.run(ctx.on.action("show-mesh"), state(*rels))

    assert failed.value.message.startswith("cannot read the mesh: failed to list")
    assert message in failed.value.message
    assert [r["method"] for r in kube.requests if r["method"] != "GET"] == []


def test_hooks_neither_observe_nor_import_the_action(ctx, kube, monkeypatch):
    rels = relations()
    for name in ("coordinated_workers._show_mesh", "service_mesh.allow_matrix"):
        package, _, module = name.partition(".")  # as in a fresh hook process
        monkeypatch.delitem(sys.modules, name, raising=False)
        monkeypatch.delattr(sys.modules[package], module, raising=False)

    out = ctx.run(ctx.on.config_changed(), state(*rels))
    ctx.run(ctx.on.update_status(), out)

    assert "coordinated_workers._show_mesh" not in sys.modules
    assert "service_mesh.allow_matrix" not in sys.modules
    ctx.run(ctx.on.action("show-mesh"), out)
    assert "coordinated_workers._show_mesh" in sys.modules


def test_while_the_mesh_data_is_malformed_policies_are_not_compared(ctx, kube):
    rels = relations()
    converge(ctx, kube, rels)
    broken = service_mesh_testing.mesh_relation(
        remote_app_name=BEACON, remote_app_data={"labels": "{not json", "mesh_type": '"istio"'}
    )
    for policy in policies(kube)[:2]:  # the coordinator keeps what is in place meanwhile
        policy["spec"]["rules"] = []
        kube.add(policy)

    results = show_mesh(ctx, [*rels[:2], broken])

    assert "differences" not in results
    assert results["in-sync"] == "unknown"
    assert "policies not compared: the mesh's data is malformed" in results["report"]


def test_a_wrong_label_value_and_a_policy_without_our_labels_are_named(ctx, kube):
    rels = relations()
    converge(ctx, kube, rels)
    add_pod(
        kube, "worker-read-1", {**cluster_labels("worker-read"), "app.kubernetes.io/part-of": "x"}
    )
    add_pod(kube, "bare-pod", {"run": "debug"})  # no Juju app label: neither checked nor matched
    members = next(p for p in policies(kube) if "selector" in p["spec"])
    members["metadata"]["labels"] = {}
    kube.add(members)  # the same policy, but no longer ours by its labels

    results = show_mesh(ctx, rels)

    assert results["differences"] == {
        "pod-unlabelled": (f"worker-read-1: has app.kubernetes.io/part-of=x instead of {APP}"),
        "policy-changed": f"{members['metadata']['name']}: its ownership labels are missing",
    }
    assert "bare-pod" not in results["report"]


def test_a_missing_member_policy_says_which_pods_it_selected(ctx, kube):
    rels = relations()
    converge(ctx, kube, rels)
    [gone] = [
        p for p in policies(kube) if "selector" in p["spec"] and "/sa/worker-read" in json.dumps(p)
    ]
    resource = create_namespaced_resource(istio.GROUP, istio.VERSION, istio.KIND, istio.PLURAL)
    with kube.client(namespace=MODEL) as client:
        client.delete(resource, gone["metadata"]["name"], namespace=MODEL)

    results = show_mesh(ctx, rels)

    assert results["differences"] == {
        "policy-missing": (
            f"{gone['metadata']['name']}: lets worker-read reach pods labelled "
            f"app.kubernetes.io/part-of={APP}"
        )
    }
    # worker-read now reaches the coordinator through its Service only
    assert "  worker-read -> " + APP + " via service" in results["report"]
    assert f"  worker-read -> {APP}, worker-read" not in results["report"]


def test_a_worker_app_no_policy_can_name_is_not_expected_to_have_one(ctx, kube):
    long_name = "worker-" + "x" * 60  # Juju's pattern, but no Kubernetes Service can have it
    rels = relations(worker_relation(long_name, ["write"], units=0, model=MODEL))
    converge(ctx, kube, rels)

    results = show_mesh(ctx, rels)

    assert results["in-sync"] == "true"
    assert results["policies"] == "5"
