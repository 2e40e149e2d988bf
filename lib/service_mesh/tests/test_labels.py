# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""reconcile_charm_labels / remove_charm_labels against a real lightkube.Client and FakeKubernetes.

Where ours differs from upstream's request sequence (vector reconcile-charm-labels-wire.json)
the tests build the expected sequence *from the vector* and say why it differs.
"""

from __future__ import annotations

import copy
import json
import logging
from typing import TYPE_CHECKING, Any

import httpx2
import pytest

from service_mesh import (
    ConflictError,
    ForbiddenError,
    KubernetesError,
    label_problem,
    reconcile_charm_labels,
    remove_charm_labels,
)
from service_mesh.testing import FakeKubernetes, WireRequest

if TYPE_CHECKING:
    from pathlib import Path

    import lightkube

CM = "juju-service-mesh-tempo-labels"
MESH_LABELS = {
    "istio.io/dataplane-mode": "ambient",
    "istio.io/use-waypoint": "cos-istio-beacon-k8s-waypoint",
    "istio.io/use-waypoint-namespace": "cos",
}


@pytest.fixture
def vector(vectors_dir: Path) -> dict[str, Any]:
    return json.loads((vectors_dir / "reconcile-charm-labels-wire.json").read_text())


def reconcile(client: lightkube.Client, labels: dict[str, str], **kwargs: Any) -> bool:
    return reconcile_charm_labels(client, "tempo", "cos", CM, labels, **kwargs)


def template_labels(fake: FakeKubernetes) -> dict[str, str]:
    sts = fake.get("statefulsets", "cos", "tempo")
    assert sts is not None
    return sts["spec"]["template"]["metadata"]["labels"]


def service_labels(fake: FakeKubernetes) -> dict[str, str]:
    service = fake.get("services", "cos", "tempo")
    assert service is not None
    return service["metadata"]["labels"]


def recorded(fake: FakeKubernetes) -> dict[str, str] | None:
    configmap = fake.get("configmaps", "cos", CM)
    return None if configmap is None else json.loads(configmap["data"]["labels"])


def without_resource_version(requests: list[WireRequest]) -> list[WireRequest]:
    """Our record patches carry the resourceVersion read (a concurrency guard); drop it."""
    stripped = copy.deepcopy(requests)
    for request in stripped:
        if isinstance(request["body"], dict):
            request["body"].get("metadata", {}).pop("resourceVersion", None)
    return stripped


def test_join_matches_upstream_but_records_the_labels_when_creating_the_record(
    fake: FakeKubernetes, client: lightkube.Client, vector: dict[str, Any]
):
    upstream = vector["1_join_on_service_mesh_relation_changed"]
    get, create, patch_sts, patch_svc, record = upstream
    # Upstream creates the record with "{}" and fills it last; we create it with the labels,
    # marked pending, before touching the workloads, so no label is ever on an object but not
    # in the record, and clear the mark once both workloads are patched.
    create = copy.deepcopy(create)
    create["body"]["data"] = {**record["body"]["data"], "pending": "true"}
    record = copy.deepcopy(record)
    record["body"]["data"]["pending"] = None
    # The last write also names the StatefulSet (uid from our own patch) as the record's owner,
    # so Kubernetes deletes the record with the app even if `remove` failed.
    sts_uid = (fake.get("statefulsets", "cos", "tempo") or {})["metadata"]["uid"]
    record["body"]["metadata"]["ownerReferences"] = [
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "tempo", "uid": sts_uid}
    ]

    assert reconcile(client, MESH_LABELS) is True

    assert without_resource_version(fake.requests) == [get, create, patch_sts, patch_svc, record]
    assert recorded(fake) == MESH_LABELS
    configmap = fake.get("configmaps", "cos", CM)
    assert configmap is not None
    assert "pending" not in configmap["data"]
    assert template_labels(fake) == {"app.kubernetes.io/name": "tempo", **MESH_LABELS}
    assert service_labels(fake) == {
        "app.kubernetes.io/name": "tempo",
        "app.kubernetes.io/managed-by": "juju",
        **MESH_LABELS,
    }


def test_steady_state_is_one_get_and_no_write(fake: FakeKubernetes, client: lightkube.Client):
    reconcile(client, MESH_LABELS)
    fake.clear_requests()

    assert reconcile(client, dict(reversed(MESH_LABELS.items()))) is False

    assert [(r["method"], r["path"]) for r in fake.requests] == [
        ("GET", f"/api/v1/namespaces/cos/configmaps/{CM}")
    ]


def test_nothing_wanted_and_nothing_recorded_writes_nothing(
    fake: FakeKubernetes, client: lightkube.Client
):
    assert reconcile(client, {}) is False
    assert [r["method"] for r in fake.requests] == ["GET"]
    assert recorded(fake) is None


def test_labels_no_longer_wanted_are_nulled_exactly_like_upstream(
    fake: FakeKubernetes, client: lightkube.Client, vector: dict[str, Any]
):
    reconcile(client, MESH_LABELS)
    fake.clear_requests()

    assert reconcile(client, {}) is True

    assert without_resource_version(fake.requests) == vector["2_provider_labels_become_empty"]
    assert fake.requests[-1]["body"]["metadata"]["resourceVersion"]
    assert recorded(fake) == {}
    assert template_labels(fake) == {"app.kubernetes.io/name": "tempo"}
    assert service_labels(fake) == {
        "app.kubernetes.io/name": "tempo",
        "app.kubernetes.io/managed-by": "juju",
    }


def test_remove_matches_upstream_minus_the_pointless_record_update(
    fake: FakeKubernetes, client: lightkube.Client, vector: dict[str, Any]
):
    reconcile(client, MESH_LABELS)
    fake.clear_requests()
    get, patch_sts, patch_svc, _empty_record, delete = vector["3_service_mesh_relation_broken"]

    assert remove_charm_labels(client, "tempo", "cos", CM) is True

    # Upstream writes "{}" into the record and then deletes it; we only delete it.
    assert fake.requests == [get, patch_sts, patch_svc, delete]
    assert recorded(fake) is None
    sts = fake.get("statefulsets", "cos", "tempo")
    assert sts is not None
    assert sts["spec"] == vector["statefulset_after_broken"]["spec"]


def test_a_change_records_the_union_before_and_the_final_set_after_the_workloads(
    fake: FakeKubernetes, client: lightkube.Client
):
    reconcile(client, {"keep": "1", "drop": "x", "change": "old"})
    fake.clear_requests()

    assert reconcile(client, {"keep": "1", "change": "new", "add": "y"}) is True

    writes = [(r["method"], r["path"].rsplit("/", 2)[-2]) for r in fake.requests]
    assert writes == [
        ("GET", "configmaps"),
        ("PATCH", "configmaps"),
        ("PATCH", "statefulsets"),
        ("PATCH", "services"),
        ("PATCH", "configmaps"),
    ]
    union = json.loads(fake.requests[1]["body"]["data"]["labels"])
    assert union == {"keep": "1", "drop": "x", "change": "new", "add": "y"}
    assert fake.requests[2]["body"]["spec"]["template"]["metadata"]["labels"] == {
        "keep": "1",
        "change": "new",
        "add": "y",
        "drop": None,
    }
    assert recorded(fake) == {"keep": "1", "change": "new", "add": "y"}
    assert template_labels(fake) == {
        "app.kubernetes.io/name": "tempo",
        "keep": "1",
        "change": "new",
        "add": "y",
    }


def test_only_additions_mark_the_record_pending_until_the_workloads_are_patched(
    fake: FakeKubernetes, client: lightkube.Client
):
    reconcile(client, {"a": "1"})
    fake.clear_requests()

    reconcile(client, {"a": "1", "b": "2"})

    assert [r["method"] for r in fake.requests] == ["GET", "PATCH", "PATCH", "PATCH", "PATCH"]
    assert fake.requests[1]["body"]["data"]["pending"] == "true"
    assert fake.requests[-1]["body"]["data"]["pending"] is None
    assert recorded(fake) == {"a": "1", "b": "2"}


@pytest.mark.parametrize("failing", ["/statefulsets/", "/services/"])
@pytest.mark.parametrize("before", [None, {"a": "1"}])
def test_additions_failing_half_way_are_finished_next_time(
    fake: FakeKubernetes, client: lightkube.Client, failing: str, before: dict[str, str] | None
):
    # The union recorded ahead of the workloads equals the wanted labels here, so without the
    # pending mark the next call would find a finished-looking record and stop after its GET.
    if before is not None:
        reconcile(client, before)
    wanted = {"a": "1", "b": "2"}
    fake.fail(method="PATCH", path_contains=failing, status=500)

    with pytest.raises(KubernetesError):
        reconcile(client, wanted)
    assert recorded(fake) == wanted

    assert reconcile(client, wanted) is True
    assert wanted.items() <= template_labels(fake).items()
    assert wanted.items() <= service_labels(fake).items()
    assert reconcile(client, wanted) is False


@pytest.mark.parametrize("failing", ["/statefulsets/", "/services/"])
def test_a_failure_half_way_never_loses_track_of_a_label(
    fake: FakeKubernetes, client: lightkube.Client, failing: str
):
    reconcile(client, {"old": "1"})
    fake.fail(method="PATCH", path_contains=failing, status=500)

    with pytest.raises(KubernetesError):
        reconcile(client, {"new": "2"})
    assert recorded(fake) == {"old": "1", "new": "2"}

    assert reconcile(client, {"new": "2"}) is True
    assert recorded(fake) == {"new": "2"}
    assert "old" not in template_labels(fake)
    assert "old" not in service_labels(fake)
    assert template_labels(fake)["new"] == service_labels(fake)["new"] == "2"


def test_a_failed_final_record_write_is_finished_next_time(
    fake: FakeKubernetes, client: lightkube.Client
):
    reconcile(client, {"old": "1"})
    fake.fail(method="PATCH", path_contains="/configmaps/", status=503)

    with pytest.raises(KubernetesError) as caught:
        reconcile(client, {})
    assert caught.value.status_code == 503
    assert recorded(fake) == {"old": "1"}
    assert "old" not in template_labels(fake)

    assert reconcile(client, {}) is True
    assert recorded(fake) == {}


def test_labels_of_other_owners_are_left_alone(fake: FakeKubernetes, client: lightkube.Client):
    reconcile(client, {"mesh": "yes"})
    reconcile_charm_labels(client, "tempo", "cos", "tempo-pod-labels", {"part-of": "tempo"})
    reconcile(client, {})
    assert template_labels(fake) == {"app.kubernetes.io/name": "tempo", "part-of": "tempo"}


def test_force_patches_the_workloads_even_when_the_record_matches(
    fake: FakeKubernetes, client: lightkube.Client
):
    reconcile(client, {"a": "1"})
    sts = fake.get("statefulsets", "cos", "tempo")
    assert sts is not None
    del sts["spec"]["template"]["metadata"]["labels"]["a"]  # what a Juju refresh may do
    fake.add(sts)
    fake.clear_requests()

    assert reconcile(client, {"a": "1"}, force=True) is True
    # The record is marked pending around the workload patches, so a forced repair that fails
    # half way is finished by the next (unforced) call.
    assert [r["method"] for r in fake.requests] == ["GET", "PATCH", "PATCH", "PATCH", "PATCH"]
    assert template_labels(fake)["a"] == "1"


def test_a_mangled_record_counts_as_empty_and_is_logged(
    fake: FakeKubernetes, client: lightkube.Client, caplog: pytest.LogCaptureFixture
):
    fake.add(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": CM, "namespace": "cos"},
            "data": {"labels": "not json"},
        }
    )
    with caplog.at_level(logging.WARNING):
        assert reconcile(client, {"a": "1"}) is True
    assert recorded(fake) == {"a": "1"}
    assert "not a JSON object of strings" in caplog.text


def test_remove_without_a_record_is_one_get(fake: FakeKubernetes, client: lightkube.Client):
    assert remove_charm_labels(client, "tempo", "cos", CM) is False
    assert [r["method"] for r in fake.requests] == ["GET"]


def test_remove_tolerates_a_gone_app_and_a_gone_record(
    fake: FakeKubernetes, client: lightkube.Client
):
    reconcile(client, {"a": "1"})
    fake.fail(method="PATCH", path_contains="/statefulsets/", status=404)
    fake.fail(method="PATCH", path_contains="/services/", status=404)
    fake.fail(method="DELETE", path_contains="/configmaps/", status=404)

    assert remove_charm_labels(client, "tempo", "cos", CM) is True


def test_remove_reports_other_failures(fake: FakeKubernetes, client: lightkube.Client):
    reconcile(client, {"a": "1"})
    fake.fail(method="DELETE", status=500)
    with pytest.raises(KubernetesError) as caught:
        remove_charm_labels(client, "tempo", "cos", CM)
    assert caught.value.status_code == 500


def test_forbidden_tells_the_operator_to_trust_the_app(
    fake: FakeKubernetes, client: lightkube.Client
):
    fake.fail(method="GET", status=403)
    with pytest.raises(ForbiddenError) as caught:
        reconcile(client, MESH_LABELS)
    assert caught.value.status_code == 403
    assert "juju trust tempo --scope=cluster" in str(caught.value)
    assert "ConfigMap juju-service-mesh-tempo-labels" in str(caught.value)
    assert not isinstance(caught.value, httpx2.HTTPError)


def test_a_racing_record_creation_is_a_conflict(fake: FakeKubernetes, client: lightkube.Client):
    fake.fail(method="POST", status=409)
    with pytest.raises(ConflictError):
        reconcile(client, MESH_LABELS)


def test_a_record_changed_behind_our_back_is_a_conflict(
    fake: FakeKubernetes, client: lightkube.Client
):
    reconcile(client, {"a": "1"})
    # Another writer changes the record between our GET and our PATCH.
    fake.fail(method="PATCH", path_contains="/configmaps/", status=409)
    with pytest.raises(ConflictError):
        reconcile(client, {"b": "2"})


def test_a_missing_statefulset_is_an_error_when_labelling(fake: FakeKubernetes):
    client = fake.client(namespace="cos", field_manager="ghost")
    with pytest.raises(KubernetesError) as caught:
        reconcile_charm_labels(client, "ghost", "cos", "ghost-labels", {"a": "1"})
    assert caught.value.status_code == 404


@pytest.mark.parametrize("error", ["connect", "timeout"])
def test_transport_failures_are_kubernetes_errors_without_status(
    fake: FakeKubernetes, client: lightkube.Client, error: Any
):
    fake.fail_transport(error=error)
    with pytest.raises(KubernetesError) as caught:
        reconcile(client, MESH_LABELS)
    assert caught.value.status_code is None
    assert "did not answer" in str(caught.value)


def test_works_through_kubeconfig_like_a_charm(
    fake: FakeKubernetes, monkeypatch: pytest.MonkeyPatch, vector: dict[str, Any]
):
    import lightkube

    with fake.serve(namespace="cos") as kubeconfig:
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
        with lightkube.Client(namespace="cos", field_manager="tempo") as client:
            assert reconcile(client, MESH_LABELS) is True
            assert reconcile(client, MESH_LABELS) is False
    assert fake.requests[2:4] == vector["1_join_on_service_mesh_relation_changed"][2:4]
    assert len(fake.requests) == 6


def test_a_record_naming_jujus_selector_or_a_malformed_key_never_gets_them_patched(
    fake: FakeKubernetes, client: lightkube.Client, caplog: pytest.LogCaptureFixture
):
    """Issue 17.3: nulling the selector label is refused (422) forever; such keys are dropped."""
    hostile = {"app.kubernetes.io/name": "tempo", "/x": "1", "Bad Key": "1", "b": "2"}
    fake.add(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": CM, "namespace": "cos"},
            "data": {"labels": json.dumps(hostile)},
        }
    )

    with caplog.at_level(logging.WARNING):
        assert reconcile(client, {"a": "1"}) is True

    assert template_labels(fake) == {"app.kubernetes.io/name": "tempo", "a": "1"}
    assert service_labels(fake)["app.kubernetes.io/name"] == "tempo"
    assert recorded(fake) == {"a": "1"}
    assert "ignoring 3 recorded labels that cannot be ours" in caplog.text


def test_remove_never_patches_jujus_selector_label_from_a_record(
    fake: FakeKubernetes, client: lightkube.Client
):
    fake.add(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": CM, "namespace": "cos"},
            "data": {"labels": json.dumps({"app.kubernetes.io/name": "tempo"})},
        }
    )

    assert remove_charm_labels(client, "tempo", "cos", CM) is True

    assert template_labels(fake) == {"app.kubernetes.io/name": "tempo"}
    assert fake.get("configmaps", "cos", CM) is None


@pytest.mark.parametrize(
    ("key", "value"),
    [("/x", "1"), ("a/", "1"), ("app.kubernetes.io/name", "x"), ("a" * 64, "1"), ("a", "b c")],
)
def test_label_problem_refuses_what_kubernetes_or_juju_would(key: str, value: str):
    assert label_problem(key, value) is not None


@pytest.mark.parametrize(("key", "value"), [("a", ""), ("istio.io/dataplane-mode", "ambient")])
def test_label_problem_accepts_valid_labels(key: str, value: str):
    assert label_problem(key, value) is None


def _statefulset_owner(fake: FakeKubernetes, app: str) -> dict[str, str]:
    sts = fake.get("statefulsets", "cos", app)
    assert sts is not None
    uid = sts["metadata"]["uid"]
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": app, "uid": uid}


def test_the_record_is_owned_by_the_apps_statefulset(
    fake: FakeKubernetes, client: lightkube.Client
):
    """Kubernetes garbage-collects the record with the app even if `remove` failed."""
    reconcile(client, MESH_LABELS)

    configmap = fake.get("configmaps", "cos", CM)
    assert configmap is not None
    assert configmap["metadata"]["ownerReferences"] == [_statefulset_owner(fake, "tempo")]


def test_a_record_from_before_owner_references_is_adopted_once(
    fake: FakeKubernetes, client: lightkube.Client
):
    fake.add(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": CM, "namespace": "cos"},
            "data": {"labels": json.dumps(MESH_LABELS)},
        }
    )

    assert reconcile(client, MESH_LABELS) is True
    fake.clear_requests()
    assert reconcile(client, MESH_LABELS) is False

    configmap = fake.get("configmaps", "cos", CM)
    assert configmap is not None
    assert configmap["metadata"]["ownerReferences"] == [_statefulset_owner(fake, "tempo")]
    assert [r["method"] for r in fake.requests] == ["GET"], "then steady state again"


def test_colliding_record_names_never_share_labels(fake: FakeKubernetes, client: lightkube.Client):
    """Issue 17.6: worker `juju-service-mesh-a`'s `<app>-pod-labels` is app `a-pod`'s record."""
    from service_mesh import LabelRecordOwnerError

    shared = "juju-service-mesh-a-pod-labels"
    worker, meshed = "juju-service-mesh-a", "a-pod"
    fake.add_juju_app(worker, namespace="cos")
    fake.add_juju_app(meshed, namespace="cos")
    part_of = {"app.kubernetes.io/part-of": "coordinator"}
    reconcile_charm_labels(client, worker, "cos", shared, part_of)

    with pytest.raises(LabelRecordOwnerError, match="collided"):
        reconcile_charm_labels(client, meshed, "cos", shared, MESH_LABELS)
    assert remove_charm_labels(client, meshed, "cos", shared) is False

    meshed_sts = fake.get("statefulsets", "cos", meshed)
    assert meshed_sts is not None
    assert meshed_sts["spec"]["template"]["metadata"]["labels"] == {
        "app.kubernetes.io/name": meshed
    }
    configmap = fake.get("configmaps", "cos", shared)
    assert configmap is not None
    assert json.loads(configmap["data"]["labels"]) == part_of, "the owner's record is intact"
    # The worker leaving its cluster still takes its own label off.
    reconcile_charm_labels(client, worker, "cos", shared, {})
    worker_sts = fake.get("statefulsets", "cos", worker)
    assert worker_sts is not None
    assert "app.kubernetes.io/part-of" not in worker_sts["spec"]["template"]["metadata"]["labels"]


def test_a_record_nested_deeper_than_json_follows_counts_as_empty(
    fake: FakeKubernetes, client: lightkube.Client
):
    """Found by the fuzz suite: json.loads raised RecursionError out of reconcile."""
    fake.add(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": CM, "namespace": "cos"},
            "data": {"labels": "[" * 5000 + "]" * 5000},
        }
    )

    assert reconcile(client, {"a": "1"}) is True
    assert recorded(fake) == {"a": "1"}
