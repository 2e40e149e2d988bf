# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""FakeKubernetes behaves like an API server as far as a real lightkube.Client can tell."""

from __future__ import annotations

import json
import os
from typing import Any

import httpx2
import lightkube
import pytest
from lightkube.config.kubeconfig import KubeConfig
from lightkube.config.models import Cluster, User
from lightkube.core.generic_client import GenericSyncClient
from lightkube.generic_resource import create_namespaced_resource
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apps_v1 import StatefulSet
from lightkube.resources.core_v1 import ConfigMap, Service
from lightkube.types import PatchType

from service_mesh.testing import FakeKubernetes

AuthorizationPolicy = create_namespaced_resource(
    "security.istio.io", "v1", "AuthorizationPolicy", "authorizationpolicies"
)


def _policy(name: str, namespace: str = "cos", **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"rules": [{}]},
    }


def _api_error(call: Any) -> lightkube.ApiError:
    with pytest.raises(lightkube.ApiError) as caught:
        call()
    return caught.value


def test_seeded_juju_app_is_readable(client: lightkube.Client):
    sts = client.get(StatefulSet, "tempo")
    assert sts.spec is not None
    assert sts.spec.template.metadata is not None
    assert sts.spec.template.metadata.labels == {"app.kubernetes.io/name": "tempo"}
    assert client.get(Service, "tempo-endpoints").spec.clusterIP == "None"  # type: ignore[union-attr]


def test_requests_are_recorded_in_the_wire_vector_shape(
    fake: FakeKubernetes, client: lightkube.Client
):
    client.create(ConfigMap(metadata=ObjectMeta(name="x"), data={"labels": "{}"}))
    assert fake.requests == [
        {
            "method": "POST",
            "path": "/api/v1/namespaces/cos/configmaps",
            "query": {"fieldManager": "tempo"},
            "content_type": "application/json",
            "body": {
                "apiVersion": "v1",
                "data": {"labels": "{}"},
                "kind": "ConfigMap",
                "metadata": {"name": "x"},
            },
        }
    ]
    assert fake.clear_requests()[0]["method"] == "POST"
    assert fake.requests == []


def test_create_conflicts_with_an_existing_object(client: lightkube.Client):
    error = _api_error(lambda: client.create(Service(metadata=ObjectMeta(name="tempo"))))
    assert error.status.code == 409
    assert error.status.reason == "AlreadyExists"


def test_get_and_delete_of_a_missing_object_is_a_404(client: lightkube.Client):
    assert _api_error(lambda: client.get(ConfigMap, "nope")).status.code == 404
    assert _api_error(lambda: client.delete(ConfigMap, "nope")).status.code == 404


def test_delete_removes(fake: FakeKubernetes, client: lightkube.Client):
    client.delete(Service, "tempo")
    assert fake.get("services", "cos", "tempo") is None
    assert fake.get("services", "cos", "tempo-endpoints") is not None


def test_strategic_merge_patch_merges_maps_and_null_deletes(
    fake: FakeKubernetes, client: lightkube.Client
):
    client.patch(Service, "tempo", {"metadata": {"labels": {"a": "1", "b": "2"}}})
    client.patch(Service, "tempo", {"metadata": {"labels": {"a": None, "c": "3"}}})
    labels = fake.get("services", "cos", "tempo")["metadata"]["labels"]  # type: ignore[index]
    assert labels == {
        "app.kubernetes.io/name": "tempo",
        "app.kubernetes.io/managed-by": "juju",
        "b": "2",
        "c": "3",
    }


def test_merge_and_json_patches(fake: FakeKubernetes, client: lightkube.Client):
    client.patch(
        Service, "tempo", {"metadata": {"annotations": {"x": "y"}}}, patch_type=PatchType.MERGE
    )
    client.patch(
        Service,
        "tempo",
        [
            {"op": "add", "path": "/metadata/labels/json", "value": "yes"},
            {"op": "remove", "path": "/metadata/annotations/x"},
        ],
        patch_type=PatchType.JSON,
    )
    service = fake.get("services", "cos", "tempo")
    assert service is not None
    assert service["metadata"]["labels"]["json"] == "yes"
    assert service["metadata"]["annotations"] == {}
    error = _api_error(
        lambda: client.patch(
            Service,
            "tempo",
            [{"op": "test", "path": "/metadata/labels/json", "value": "no"}],
            patch_type=PatchType.JSON,
        )
    )
    assert error.status.code == 422


def test_resource_version_bumps_only_on_change(fake: FakeKubernetes, client: lightkube.Client):
    before = fake.get("services", "cos", "tempo")["metadata"]["resourceVersion"]  # type: ignore[index]
    client.patch(Service, "tempo", {"metadata": {"labels": {"app.kubernetes.io/name": "tempo"}}})
    unchanged = fake.get("services", "cos", "tempo")["metadata"]["resourceVersion"]  # type: ignore[index]
    client.patch(Service, "tempo", {"metadata": {"labels": {"new": "x"}}})
    after = fake.get("services", "cos", "tempo")["metadata"]["resourceVersion"]  # type: ignore[index]
    assert before == unchanged
    assert int(after) > int(before)


def test_stale_resource_version_is_a_conflict(client: lightkube.Client):
    cm = client.create(ConfigMap(metadata=ObjectMeta(name="x"), data={"k": "1"}))
    assert cm.metadata is not None
    client.patch(ConfigMap, "x", {"data": {"k": "2"}})
    stale = {"metadata": {"resourceVersion": cm.metadata.resourceVersion}, "data": {"k": "3"}}
    assert _api_error(lambda: client.patch(ConfigMap, "x", stale)).status.code == 409


def test_invalid_labels_are_rejected_like_the_api_server(client: lightkube.Client):
    too_long = "x" * 64
    error = _api_error(
        lambda: client.patch(Service, "tempo", {"metadata": {"labels": {"a": too_long}}})
    )
    assert error.status.code == 422
    assert "63 characters" in error.status.message  # type: ignore[operator]


def test_server_side_apply_creates_updates_and_drops_unapplied_fields(
    fake: FakeKubernetes, client: lightkube.Client
):
    body = _policy("p", owner="me")
    body["spec"] = {"selector": {"matchLabels": {"a": "b"}}, "rules": [{}]}
    client.patch(
        AuthorizationPolicy, "p", body, namespace="cos", patch_type=PatchType.APPLY, force=True
    )
    assert fake.requests[-1]["query"] == {"fieldManager": "tempo", "force": "true"}
    assert fake.requests[-1]["content_type"] == "application/apply-patch+yaml"
    body["spec"] = {"rules": [{}]}
    client.patch(
        AuthorizationPolicy, "p", body, namespace="cos", patch_type=PatchType.APPLY, force=True
    )
    stored = fake.get("authorizationpolicies", "cos", "p")
    assert stored is not None
    assert stored["spec"] == {"rules": [{}]}
    assert stored["metadata"]["labels"] == {"owner": "me"}


def _resources_body(**resources: Any) -> dict[str, Any]:
    """An apply body as the compute-resources patch sends it: no metadata, one container."""
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": "tempo"}},
            "serviceName": "tempo-endpoints",
            "template": {"spec": {"containers": [{"name": "charm", "resources": resources}]}},
        },
    }


def test_apply_without_a_name_merges_containers_by_name_and_drops_what_it_stopped_applying(
    fake: FakeKubernetes, client: lightkube.Client
):
    def apply(**resources: Any) -> None:
        client.patch(
            StatefulSet,
            "tempo",
            _resources_body(**resources),
            namespace="cos",
            patch_type=PatchType.APPLY,
            field_manager="ResourcePatcher",
        )

    apply(limits={"cpu": "1", "memory": "2Gi"}, requests={"cpu": "50m"})
    stored = fake.get("statefulsets", "cos", "tempo")
    assert stored is not None
    (container,) = stored["spec"]["template"]["spec"]["containers"]
    assert container == {
        "name": "charm",
        "image": "jujusolutions/charm-base",  # what the apply does not name is kept
        "resources": {"limits": {"cpu": "1", "memory": "2Gi"}, "requests": {"cpu": "50m"}},
    }
    apply(limits={"cpu": "1"}, requests={"cpu": "50m"})
    stored = fake.get("statefulsets", "cos", "tempo")
    assert stored is not None
    resources = stored["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert resources == {"limits": {"cpu": "1"}, "requests": {"cpu": "50m"}}


def test_apply_without_a_name_to_a_missing_object_is_refused(client: lightkube.Client):
    error = _api_error(
        lambda: client.patch(
            StatefulSet,
            "nothing",
            _resources_body(),
            namespace="cos",
            patch_type=PatchType.APPLY,
            field_manager="ResourcePatcher",
        )
    )
    assert error.status.code == 400


def test_apply_without_field_manager_is_a_bad_request(fake: FakeKubernetes):
    client = fake.client(namespace="cos")
    error = _api_error(
        lambda: client.patch(
            AuthorizationPolicy,
            "p",
            _policy("p"),
            patch_type=PatchType.APPLY,
            field_manager="",
        )
    )
    assert error.status.code == 400


def test_list_by_label_selector_across_namespaces(fake: FakeKubernetes, client: lightkube.Client):
    fake.add(_policy("a", "cos", owner="me", scope="x"))
    fake.add(_policy("b", "other", owner="me", scope="x"))
    fake.add(_policy("c", "cos", owner="someone-else", scope="x"))
    fake.add(_policy("d", "cos", owner="me"))
    listed = client.list(AuthorizationPolicy, namespace="*", labels={"owner": "me", "scope": "x"})
    assert [(p.metadata.namespace, p.metadata.name) for p in listed] == [  # type: ignore[union-attr]
        ("cos", "a"),
        ("other", "b"),
    ]
    assert fake.requests[-1]["path"] == "/apis/security.istio.io/v1/authorizationpolicies"
    assert fake.requests[-1]["query"] == {"labelSelector": "owner=me,scope=x"}
    in_cos = client.list(AuthorizationPolicy, labels={"scope": None, "owner": ["me", "nobody"]})
    assert [p.metadata.name for p in in_cos] == ["a"]  # type: ignore[union-attr]


@pytest.mark.parametrize("status", [403, 404, 409, 500])
def test_injected_api_errors_become_lightkube_api_errors(
    fake: FakeKubernetes, client: lightkube.Client, status: int
):
    fake.fail(method="PATCH", path_contains="/services/", status=status)
    error = _api_error(
        lambda: client.patch(Service, "tempo", {"metadata": {"labels": {"a": "b"}}})
    )
    assert error.status.code == status
    # Once spent, the fault is gone and nothing was changed by the failed request.
    assert fake.get("services", "cos", "tempo")["metadata"]["labels"].get("a") is None  # type: ignore[index]
    client.patch(Service, "tempo", {"metadata": {"labels": {"a": "b"}}})
    assert len(fake.requests) == 2


def test_forbidden_message_names_the_resource(fake: FakeKubernetes, client: lightkube.Client):
    fake.fail(status=403)
    message = _api_error(lambda: client.get(ConfigMap, "x")).status.message
    assert message is not None
    assert 'cannot get resource "configmaps"' in message


def test_faults_match_method_and_path_and_can_persist(
    fake: FakeKubernetes, client: lightkube.Client
):
    fake.fail(method="DELETE", times=None, status=500)
    client.get(Service, "tempo")
    for _ in range(3):
        assert _api_error(lambda: client.delete(Service, "tempo")).status.code == 500
    fake.clear_faults()
    client.delete(Service, "tempo")


@pytest.mark.parametrize(
    ("error", "raised"), [("connect", httpx2.ConnectError), ("timeout", httpx2.ReadTimeout)]
)
def test_transport_faults_raise_httpx2_errors(
    fake: FakeKubernetes, client: lightkube.Client, error: Any, raised: type[Exception]
):
    fake.fail_transport(error=error)
    with pytest.raises(raised):
        client.get(Service, "tempo")
    assert client.get(Service, "tempo").metadata is not None


def test_mangled_answers_come_after_the_request_was_carried_out(
    fake: FakeKubernetes, client: lightkube.Client
):
    body = {"spec": {"template": {"metadata": {"labels": {"x": "y"}}}}}
    fake.fail_body("not-json", method="PATCH")
    with pytest.raises(ValueError, match="JSON"):
        client.patch(StatefulSet, "tempo", body)
    sts = fake.get("statefulsets", "cos", "tempo")
    assert sts is not None
    assert sts["spec"]["template"]["metadata"]["labels"]["x"] == "y"
    assert client.get(Service, "tempo").metadata is not None  # times=1: the next one is fine


@pytest.mark.parametrize("front_end", ["in-process", "loopback"])
def test_each_mangled_body_is_what_the_client_receives(fake: FakeKubernetes, front_end: str):
    def bodies(http: httpx2.Client) -> dict[str, bytes]:
        got: dict[str, bytes] = {}
        for kind in ("not-json", "truncated", "wrong-kind"):
            fake.fail_body(kind, method="GET")
            answer = http.get("/api/v1/namespaces/cos/services/tempo")
            assert answer.status_code == 200
            got[kind] = answer.content
        return got

    if front_end == "in-process":
        with httpx2.Client(transport=fake.transport, base_url="http://fake.invalid") as http:
            got = bodies(http)
    else:
        with fake.serve(namespace="cos") as kubeconfig:
            server = json.loads(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
            with httpx2.Client(base_url=server, trust_env=False) as http:
                got = bodies(http)
    assert got["not-json"].startswith(b"<html>")
    real = json.dumps(fake.get("services", "cos", "tempo")).encode()
    assert got["truncated"] == real[: len(real) // 2]
    assert json.loads(got["wrong-kind"])["kind"] == "Secret"


def test_a_mangled_collection_answer_is_a_list_of_another_kind(
    fake: FakeKubernetes, client: lightkube.Client
):
    fake.fail_body("wrong-kind", method="GET")
    [item] = list(client.list(AuthorizationPolicy, namespace="*"))
    assert item["kind"] == "Secret"


def test_objects_go_with_the_last_of_their_owners(fake: FakeKubernetes):
    sts = fake.get("statefulsets", "cos", "tempo")
    svc = fake.get("services", "cos", "tempo")
    assert sts is not None
    assert svc is not None

    def owned_by(name: str, *owners: dict[str, Any]) -> dict[str, Any]:
        references = [{"uid": o["metadata"]["uid"], "name": o["metadata"]["name"]} for o in owners]
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "cos", "ownerReferences": references},
        }

    fake.add(owned_by("by-sts", sts))
    fake.add(owned_by("by-both", sts, svc))
    fake.add(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "own", "namespace": "cos"}}
    )

    client = fake.client(namespace="cos")
    client.delete(StatefulSet, "tempo")
    assert [c["metadata"]["name"] for c in fake.list("configmaps")] == ["by-both", "own"]

    fake.remove_juju_app("tempo", namespace="cos")

    assert [c["metadata"]["name"] for c in fake.list("configmaps")] == ["own"]


def test_missing_crds_answer_404_like_a_real_api_server(
    fake: FakeKubernetes, client: lightkube.Client
):
    fake.crds_installed = False
    error = _api_error(lambda: list(client.list(AuthorizationPolicy, namespace="*")))
    assert error.status.code == 404
    assert error.status.message == "the server could not find the requested resource"
    assert client.get(Service, "tempo").metadata is not None


def test_served_fake_works_with_a_default_lightkube_client(
    fake: FakeKubernetes, monkeypatch: pytest.MonkeyPatch
):
    with fake.serve(namespace="cos") as kubeconfig:
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
        with lightkube.Client(field_manager="tempo") as client:
            client.patch(
                StatefulSet, "tempo", {"spec": {"template": {"metadata": {"labels": {"x": "y"}}}}}
            )
            assert _api_error(lambda: client.get(ConfigMap, "missing")).status.code == 404
            fake.fail_transport()
            with pytest.raises(httpx2.TransportError):
                client.get(Service, "tempo")
    assert [r["method"] for r in fake.requests] == ["PATCH", "GET", "GET"]
    assert fake.requests[0]["path"] == "/apis/apps/v1/namespaces/cos/statefulsets/tempo"
    assert fake.requests[0]["query"] == {"fieldManager": "tempo"}
    sts = fake.get("statefulsets", "cos", "tempo")
    assert sts is not None
    assert sts["spec"]["template"]["metadata"]["labels"]["x"] == "y"


def test_served_in_process_a_default_lightkube_client_reaches_the_fake_without_a_socket(
    fake: FakeKubernetes,
):
    before = os.environ.get("KUBECONFIG")
    with fake.serve_to_environment(namespace="cos", in_process=True) as kubeconfig:
        assert os.environ["KUBECONFIG"] == str(kubeconfig)
        server = json.loads(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
        assert server.endswith(".invalid")  # a name no resolver answers: nothing listens
        with lightkube.Client(field_manager="tempo") as client:
            client.patch(
                StatefulSet, "tempo", {"spec": {"template": {"metadata": {"labels": {"x": "y"}}}}}
            )
            assert _api_error(lambda: client.get(ConfigMap, "missing")).status.code == 404
            fake.fail_transport()
            with pytest.raises(httpx2.TransportError):
                client.get(Service, "tempo")
        elsewhere = KubeConfig.from_one(
            cluster=Cluster(server="http://127.0.0.1:9"),
            user=User(token="t"),
        )
        with lightkube.Client(config=elsewhere) as other, pytest.raises(httpx2.ConnectError):
            other.get(Service, "tempo")  # another server's client keeps its own transport
    assert [r["method"] for r in fake.requests] == ["PATCH", "GET", "GET"]
    assert fake.requests[0]["path"] == "/apis/apps/v1/namespaces/cos/statefulsets/tempo"
    assert fake.requests[0]["query"] == {"fieldManager": "tempo"}
    sts = fake.get("statefulsets", "cos", "tempo")
    assert sts is not None
    assert sts["spec"]["template"]["metadata"]["labels"]["x"] == "y"
    assert os.environ.get("KUBECONFIG") == before
    assert "AdapterClient" not in GenericSyncClient.__dict__  # lightkube's own again


def test_replace_honours_resource_version_preconditions(
    fake: FakeKubernetes, client: lightkube.Client
):
    cm = client.create(ConfigMap(metadata=ObjectMeta(name="x"), data={"k": "1"}))
    cm.data = {"k": "2"}
    client.replace(cm)
    stored = fake.get("configmaps", "cos", "x")
    assert stored is not None
    assert stored["data"] == {"k": "2"}
    cm.data = {"k": "3"}  # cm still carries the resourceVersion from before the first replace
    assert _api_error(lambda: client.replace(cm)).status.code == 409


def test_delete_collection(fake: FakeKubernetes, client: lightkube.Client):
    fake.add(_policy("a", owner="me"))
    fake.add(_policy("b", owner="you"))
    fake.add(_policy("c", namespace="other"))
    fake.add(_policy("d", owner="me"))
    status, _ = fake.handle(
        "DELETE",
        "/apis/security.istio.io/v1/namespaces/cos/authorizationpolicies",
        {"labelSelector": "owner=me"},
        None,
        b"",
    )
    assert status == 200
    assert [p["metadata"]["name"] for p in fake.list("authorizationpolicies")] == ["b", "c"]
    client.deletecollection(AuthorizationPolicy)
    assert [p["metadata"]["name"] for p in fake.list("authorizationpolicies")] == ["c"]


def test_dry_run_changes_nothing(fake: FakeKubernetes):
    client = fake.client(namespace="cos", field_manager="tempo", dry_run=True)
    client.create(ConfigMap(metadata=ObjectMeta(name="x")))
    client.patch(Service, "tempo", {"metadata": {"labels": {"a": "b"}}})
    assert fake.get("configmaps", "cos", "x") is None
    assert "a" not in fake.get("services", "cos", "tempo")["metadata"]["labels"]  # type: ignore[index]
    assert all(r["query"]["dryRun"] == "All" for r in fake.requests)


@pytest.mark.parametrize(
    ("selector", "names"),
    [
        ("owner!=me", ["b", "c"]),
        ("owner notin (me,you)", ["c"]),  # codespell:ignore notin
        ("owner in (me,you)", ["a", "b"]),
        ("!owner", ["c"]),
        ("owner", ["a", "b"]),
        ("owner==me", ["a"]),
    ],
)
def test_label_selector_operators(fake: FakeKubernetes, selector: str, names: list[str]):
    fake.add(_policy("a", owner="me"))
    fake.add(_policy("b", owner="you"))
    fake.add(_policy("c"))
    status, listed = fake.handle(
        "GET",
        "/apis/security.istio.io/v1/authorizationpolicies",
        {"labelSelector": selector},
        None,
        b"",
    )
    assert status == 200
    assert isinstance(listed, dict)
    assert [item["metadata"]["name"] for item in listed["items"]] == names


@pytest.mark.parametrize(
    ("method", "path", "query", "status"),
    [
        ("GET", "/version", {}, 404),
        ("GET", "/api/v1/namespaces/cos/pods/p/log", {}, 404),
        ("GET", "/api/v1/namespaces/cos/pods", {"watch": "true"}, 400),
        ("PUT", "/api/v1/namespaces/cos/configmaps", {}, 405),
    ],
)
def test_what_is_not_modelled_fails_loudly(
    fake: FakeKubernetes, method: str, path: str, query: dict[str, str], status: int
):
    code, body = fake.handle(method, path, query, None, b"")
    assert code == status
    assert isinstance(body, dict)
    assert body["kind"] == "Status"


def test_apply_accepts_a_yaml_body(fake: FakeKubernetes):
    yaml_body = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: y\ndata:\n  k: v\n"
    status, obj = fake.handle(
        "PATCH",
        "/api/v1/namespaces/cos/configmaps/y",
        {"fieldManager": "me"},
        "application/apply-patch+yaml",
        yaml_body,
    )
    assert status == 201
    assert isinstance(obj, dict)
    assert obj["data"] == {"k": "v"}
    assert fake.requests[-1]["body"]["metadata"] == {"name": "y"}


def test_a_statefulset_whose_template_leaves_its_selector_is_refused(
    fake: FakeKubernetes, client: lightkube.Client
):
    """As the API server does: nulling Juju's selector label on the template is a 422."""
    from lightkube.resources.apps_v1 import StatefulSet

    error = _api_error(
        lambda: client.patch(
            StatefulSet,
            "tempo",
            {"spec": {"template": {"metadata": {"labels": {"app.kubernetes.io/name": None}}}}},
        )
    )

    assert error.status.code == 422
    assert "selector` does not match template `labels`" in error.status.message  # type: ignore[operator]
    sts = fake.get("statefulsets", "cos", "tempo")
    assert sts is not None
    assert sts["spec"]["template"]["metadata"]["labels"] == {"app.kubernetes.io/name": "tempo"}


def test_a_label_key_with_an_empty_prefix_is_refused(client: lightkube.Client):
    error = _api_error(
        lambda: client.patch(Service, "tempo", {"metadata": {"labels": {"/x": "1"}}})
    )
    assert error.status.code == 422
