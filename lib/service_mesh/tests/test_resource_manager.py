# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""PolicyResourceManager against a real lightkube.Client and FakeKubernetes.

The cluster-internal example of the vectors (coordinator ``tempo``, workers ``tempo-querier``
and ``tempo-ingester``, model ``cos``) drives the wire comparisons. Where our sequence differs
from upstream's on purpose, the expected sequence is derived from the vector and the reason given.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import TYPE_CHECKING, Any

import pytest

from service_mesh import (
    ConflictError,
    CRDMissingError,
    Endpoint,
    ForbiddenError,
    KubernetesError,
    MalformedResponseError,
    MeshPolicy,
    MeshType,
    PolicyResourceManager,
    PolicyTargetType,
)
from service_mesh.testing import FakeKubernetes

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    import lightkube


@dataclasses.dataclass(frozen=True)
class _Named:
    name: str


@dataclasses.dataclass(frozen=True)
class _Charm:
    """What PolicyResourceManager reads from a charm: its app's and model's names."""

    app: _Named
    model: _Named


CHARM = _Charm(app=_Named("tempo"), model=_Named("cos"))
POLICIES_PATH = "/apis/security.istio.io/v1/namespaces/cos/authorizationpolicies/"


@pytest.fixture(scope="module")
def vector(vectors_dir: Path) -> dict[str, Any]:
    return json.loads((vectors_dir / "prm-cluster-internal-tempo-wire.json").read_text())


@pytest.fixture(scope="module")
def policies(vector: dict[str, Any]) -> list[MeshPolicy]:
    return [MeshPolicy.model_validate(p["meshpolicy_json"]) for p in vector["mesh_policies"]]


@pytest.fixture
def fake() -> FakeKubernetes:
    return FakeKubernetes()


@pytest.fixture
def client(fake: FakeKubernetes) -> Iterator[lightkube.Client]:
    client = fake.client(namespace="cos", field_manager="tempo-cos")
    yield client
    client.close()


@pytest.fixture
def prm(client: lightkube.Client, vector: dict[str, Any]) -> PolicyResourceManager:
    return PolicyResourceManager(CHARM, client, vector["prm_labels"])


def without_ingester(policies: list[MeshPolicy]) -> list[MeshPolicy]:
    return [p for p in policies if p.source_app_name != "tempo-ingester"]


def stored_names(fake: FakeKubernetes) -> list[str]:
    return [p["metadata"]["name"] for p in fake.list("authorizationpolicies")]


def methods(fake: FakeKubernetes) -> list[str]:
    return [r["method"] for r in fake.requests]


def test_first_reconcile_sends_exactly_upstreams_requests(
    fake: FakeKubernetes, prm: PolicyResourceManager, policies: list[MeshPolicy], vector: dict
):
    result = prm.reconcile(policies, MeshType.istio)

    assert fake.requests == vector["pass1_reconcile_requests"]
    assert len(result.applied) == 5
    assert result.deleted == result.unchanged == ()


def test_applied_policies_are_valid_for_istio(
    fake: FakeKubernetes,
    prm: PolicyResourceManager,
    policies: list[MeshPolicy],
    authorization_policy_validator: Any,
):
    prm.reconcile(policies, MeshType.istio)
    stored = fake.list("authorizationpolicies")
    assert len(stored) == 5
    for policy in stored:
        manifest = {k: policy[k] for k in ("apiVersion", "kind", "spec")}
        manifest["metadata"] = {k: policy["metadata"][k] for k in ("name", "namespace", "labels")}
        assert authorization_policy_validator(manifest) == []


def test_steady_state_is_one_list_and_no_write(
    fake: FakeKubernetes, prm: PolicyResourceManager, policies: list[MeshPolicy], vector: dict
):
    prm.reconcile(policies, MeshType.istio)
    fake.clear_requests()

    result = prm.reconcile(policies, MeshType.istio)

    assert fake.requests == vector["pass1_reconcile_requests"][:1]
    assert not result.changed
    assert len(result.unchanged) == 5


def test_worker_removed_deletes_only_its_policies(
    fake: FakeKubernetes, prm: PolicyResourceManager, policies: list[MeshPolicy], vector: dict
):
    prm.reconcile(policies, MeshType.istio)
    fake.clear_requests()
    upstream = vector["pass2_reconcile_without_tempo_ingester"]
    upstream_deletes = [r for r in upstream if r["method"] == "DELETE"]

    result = prm.reconcile(without_ingester(policies), MeshType.istio)

    # Upstream re-applies the 3 unchanged policies; we skip them (they are already as wanted)
    # and delete in listing order (namespace, name); upstream deletes in Python set order,
    # which the vector records sorted by path.
    expected = [upstream[0], *sorted(upstream_deletes, key=lambda r: r["path"])]
    assert fake.requests == expected
    assert len(result.deleted) == 2
    assert len(result.unchanged) == 3
    assert len(stored_names(fake)) == 3


def test_delete_lists_then_deletes_like_upstream(
    fake: FakeKubernetes, prm: PolicyResourceManager, policies: list[MeshPolicy], vector: dict
):
    prm.reconcile(without_ingester(policies), MeshType.istio)
    fake.clear_requests()

    result = prm.delete()

    assert fake.requests == vector["pass3_delete"]
    assert len(result.deleted) == 3
    assert stored_names(fake) == []


def test_an_update_applies_before_it_deletes(
    fake: FakeKubernetes, prm: PolicyResourceManager, policies: list[MeshPolicy]
):
    prm.reconcile(policies, MeshType.istio)
    fake.clear_requests()
    narrowed = [
        p.model_copy(update={"endpoints": [Endpoint(ports=[8080])]})
        if p.target_type is PolicyTargetType.app
        else p
        for p in policies
    ]

    result = prm.reconcile(narrowed, MeshType.istio)

    assert methods(fake) == ["GET", "PATCH", "PATCH", "DELETE", "DELETE"]
    assert len(result.applied) == len(result.deleted) == 2


def _principal(policy: dict[str, Any]) -> str:
    return policy["spec"]["rules"][0]["from"][0]["source"]["principals"][0]


def test_a_failed_apply_keeps_only_the_old_policies_it_replaces(
    fake: FakeKubernetes, prm: PolicyResourceManager, policies: list[MeshPolicy]
):
    prm.reconcile(policies, MeshType.istio)
    before = {p["metadata"]["name"]: _principal(p) for p in fake.list("authorizationpolicies")}
    fake.clear_requests()
    narrowed = [p.model_copy(update={"endpoints": [Endpoint(ports=[1])]}) for p in policies]
    fake.fail(method="PATCH", path_contains="tempo-querier", status=500, times=None)

    with pytest.raises(KubernetesError) as caught:
        prm.reconcile(narrowed, MeshType.istio)

    assert caught.value.status_code == 500
    assert "2 of 5 AuthorizationPolicies could not be applied" in str(caught.value)
    assert "2 stale ones they replace were kept" in str(caught.value)
    querier = "cluster.local/ns/cos/sa/tempo-querier"
    kept = {name for name, principal in before.items() if principal == querier}
    assert len(kept) == 2
    # The querier keeps its old access until its new rules are in place; every other source's
    # stale policy is gone (their replacements are in place).
    stored = {p["metadata"]["name"]: _principal(p) for p in fake.list("authorizationpolicies")}
    assert set(before) & set(stored) == kept
    assert sorted(stored.values()).count(querier) == 2
    assert methods(fake) == ["GET"] + ["PATCH"] * 5 + ["DELETE"] * 3
    result = prm.last_result
    assert result is not None
    assert (len(result.applied), len(result.failed), len(result.deleted)) == (3, 2, 3)
    assert {name.partition("/")[2] for name in result.held} == kept


def test_one_refused_policy_does_not_hold_back_another_sources_revocation(
    fake: FakeKubernetes, prm: PolicyResourceManager
):
    # Issue 11 defect 5: a policy the API server refuses (422) used to stop every delete, so
    # removing another consumer's relation never revoked its access.
    def allow(source: str, port: int) -> MeshPolicy:
        return MeshPolicy(
            source_namespace="cos",
            source_app_name=source,
            target_namespace="cos",
            target_app_name="tempo",
            endpoints=[Endpoint(ports=[port])],
        )

    prm.reconcile([allow("grafana", 3200), allow("leaving", 3200)], MeshType.istio)
    [old_grafana, old_leaving] = [
        p["metadata"]["name"] for p in sorted(fake.list("authorizationpolicies"), key=_principal)
    ]
    fake.fail(method="PATCH", status=422, times=None)

    with pytest.raises(KubernetesError, match=r"\(422\)"):
        prm.reconcile([allow("grafana", 9096)], MeshType.istio)

    assert stored_names(fake) == [old_grafana]
    assert old_leaving not in stored_names(fake)


def test_a_failed_policy_whose_sources_are_unknown_holds_back_its_namespace(
    fake: FakeKubernetes, prm: PolicyResourceManager, policies: list[MeshPolicy]
):
    prm.reconcile(policies, MeshType.istio)
    before = stored_names(fake)
    any_source = {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "allow-from-monitoring", "namespace": "cos"},
        "spec": {"rules": [{"from": [{"source": {"namespaces": ["monitoring"]}}]}]},
    }
    fake.fail(method="PATCH", path_contains="allow-from-monitoring", status=500)

    with pytest.raises(KubernetesError):
        prm.reconcile([], MeshType.istio, raw_policies=[any_source])

    assert stored_names(fake) == before


def test_an_unreachable_api_stops_at_the_first_failed_apply(
    fake: FakeKubernetes, prm: PolicyResourceManager, policies: list[MeshPolicy]
):
    fake.fail_transport(method="PATCH", error="timeout", times=None)
    with pytest.raises(KubernetesError) as caught:
        prm.reconcile(policies, MeshType.istio)
    assert caught.value.status_code is None
    assert methods(fake) == ["GET", "PATCH"]


def test_an_unreachable_api_deletes_nothing(
    fake: FakeKubernetes, prm: PolicyResourceManager, policies: list[MeshPolicy]
):
    prm.reconcile(policies, MeshType.istio)
    before = stored_names(fake)
    fake.clear_requests()
    fake.fail_transport(method="PATCH", error="connect", times=None)

    changed = policies[0].model_copy(update={"endpoints": [Endpoint(ports=[1])]})

    with pytest.raises(KubernetesError):
        prm.reconcile([changed], MeshType.istio)

    assert methods(fake) == ["GET", "PATCH"]  # no delete is tried without an answer
    result = prm.last_result
    assert result is not None
    assert len(result.held) == len(before)
    assert stored_names(fake) == before


def test_drift_is_repaired_by_reapplying_only_the_drifted_policy(
    fake: FakeKubernetes, prm: PolicyResourceManager, policies: list[MeshPolicy]
):
    prm.reconcile(policies, MeshType.istio)
    [first, *_] = fake.list("authorizationpolicies")
    first["spec"]["rules"] = [{}]  # someone opened it up by hand
    first["metadata"]["labels"]["added-by"] = "someone-else"
    fake.add(first)
    fake.clear_requests()

    result = prm.reconcile(policies, MeshType.istio)

    assert result.applied == (f"cos/{first['metadata']['name']}",)
    repaired = fake.get("authorizationpolicies", "cos", first["metadata"]["name"])
    assert repaired is not None
    assert repaired["spec"]["rules"][0]["from"]
    assert prm.reconcile(policies, MeshType.istio).changed is False


def test_policies_in_other_namespaces_are_found_and_removed(
    fake: FakeKubernetes, prm: PolicyResourceManager
):
    elsewhere = MeshPolicy(
        source_namespace="cos",
        source_app_name="tempo",
        target_namespace="other-model",
        target_app_name="grafana",
    )
    prm.reconcile([elsewhere], MeshType.istio)
    assert len(fake.list("authorizationpolicies", "other-model")) == 1

    assert len(prm.reconcile([], MeshType.istio).deleted) == 1
    assert fake.list("authorizationpolicies") == []


def test_a_namespaced_manager_lists_and_deletes_only_there(
    fake: FakeKubernetes, prm: PolicyResourceManager, client: lightkube.Client, vector: dict
):
    elsewhere = MeshPolicy(
        source_namespace="other-model",
        source_app_name="tempo",
        target_namespace="other-model",
        target_app_name="grafana",
    )
    prm.reconcile([elsewhere], MeshType.istio)  # same labels, all-namespace owner
    namespaced = PolicyResourceManager(CHARM, client, vector["prm_labels"], namespace="cos")

    assert namespaced.delete().deleted == ()
    assert len(fake.list("authorizationpolicies", "other-model")) == 1
    assert fake.requests[-1]["path"].startswith("/apis/security.istio.io/v1/namespaces/cos/")
    with pytest.raises(ValueError, match="only manages 'cos'"):
        namespaced.reconcile([elsewhere], MeshType.istio)


def test_policies_of_other_owners_are_never_touched(
    fake: FakeKubernetes, prm: PolicyResourceManager, client: lightkube.Client, policies: list
):
    other = PolicyResourceManager(
        _Charm(app=_Named("beacon"), model=_Named("cos")),
        client,
        {"app.kubernetes.io/instance": "cos-beacon"},
    )
    other.reconcile(policies[:1], MeshType.istio)
    prm.reconcile(policies, MeshType.istio)
    prm.delete()
    assert [n.split("-policy-")[0] for n in stored_names(fake)] == ["beacon-cos"]


def test_raw_policies_are_managed_with_the_ownership_labels(
    fake: FakeKubernetes, prm: PolicyResourceManager, vector: dict
):
    raw = {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "allow-modeloperator", "namespace": "cos"},
        "spec": {"selector": {"matchLabels": {"juju-modeloperator": "modeloperator"}}},
    }
    prm.reconcile([], MeshType.istio, raw_policies=[raw])
    stored = fake.get("authorizationpolicies", "cos", "allow-modeloperator")
    assert stored is not None
    assert stored["metadata"]["labels"] == vector["prm_labels"]
    assert raw["metadata"] == {"name": "allow-modeloperator", "namespace": "cos"}


def test_a_raw_policy_of_the_wrong_kind_is_refused(prm: PolicyResourceManager):
    with pytest.raises(ValueError, match="apiVersion/kind"):
        prm.reconcile([], MeshType.istio, raw_policies=[{"kind": "Service", "metadata": {}}])


def test_unsupported_mesh_types_are_refused(prm: PolicyResourceManager):
    with pytest.raises(ValueError, match="linkerd"):
        prm.reconcile([], "linkerd")  # type: ignore[arg-type]


def test_labels_are_required(client: lightkube.Client):
    with pytest.raises(ValueError, match="ownership labels"):
        PolicyResourceManager(CHARM, client, {})


def test_a_field_manager_is_required_before_anything_is_written(
    fake: FakeKubernetes, policies: list[MeshPolicy]
):
    prm = PolicyResourceManager(CHARM, fake.client(namespace="cos"), {"a": "b"})
    with pytest.raises(ValueError, match="field_manager"):
        prm.reconcile(policies, MeshType.istio)
    assert [r["method"] for r in fake.requests] == ["GET"]


def test_missing_crd_is_a_named_error_on_reconcile(
    fake: FakeKubernetes, prm: PolicyResourceManager, policies: list[MeshPolicy]
):
    fake.crds_installed = False
    with pytest.raises(CRDMissingError) as caught:
        prm.reconcile(policies, MeshType.istio)
    assert "Istio is not installed" in str(caught.value)
    assert methods(fake) == ["GET"]


def test_missing_crd_means_nothing_to_delete(fake: FakeKubernetes, prm: PolicyResourceManager):
    fake.crds_installed = False
    assert prm.delete().changed is False
    assert methods(fake) == ["GET"]


def test_forbidden_list_tells_the_operator_to_trust_the_app(
    fake: FakeKubernetes, prm: PolicyResourceManager, policies: list[MeshPolicy]
):
    fake.fail(method="GET", status=403)
    with pytest.raises(ForbiddenError) as caught:
        prm.reconcile(policies, MeshType.istio)
    assert "juju trust tempo --scope=cluster" in str(caught.value)


@pytest.mark.parametrize(("status", "error"), [(403, ForbiddenError), (409, ConflictError)])
def test_apply_errors_are_named(
    fake: FakeKubernetes,
    prm: PolicyResourceManager,
    policies: list[MeshPolicy],
    status: int,
    error: type[KubernetesError],
):
    fake.fail(method="PATCH", status=status)
    with pytest.raises(error) as caught:
        prm.reconcile(policies, MeshType.istio)
    assert caught.value.status_code == status
    assert len(stored_names(fake)) == 4  # the other four were applied


@pytest.mark.parametrize(
    "inject", [{"status": 500}, {"error": "timeout"}], ids=["server-error", "timeout"]
)
def test_list_failures_are_kubernetes_errors(
    fake: FakeKubernetes, prm: PolicyResourceManager, policies: list, inject: dict
):
    if "error" in inject:
        fake.fail_transport(method="GET", **inject)
    else:
        fake.fail(method="GET", **inject)
    with pytest.raises(KubernetesError) as caught:
        prm.reconcile(policies, MeshType.istio)
    assert caught.value.status_code == inject.get("status")


def test_a_policy_already_gone_is_deleted_fine(
    fake: FakeKubernetes, prm: PolicyResourceManager, policies: list[MeshPolicy]
):
    prm.reconcile(policies, MeshType.istio)
    fake.fail(method="DELETE", status=404)
    assert len(prm.delete().deleted) == 5


def test_delete_failures_are_raised_after_trying_every_delete(
    fake: FakeKubernetes, prm: PolicyResourceManager, policies: list[MeshPolicy]
):
    prm.reconcile(policies, MeshType.istio)
    fake.clear_requests()
    fake.fail(method="DELETE", status=500, times=2)
    with pytest.raises(KubernetesError, match="2 of 5 stale AuthorizationPolicies remain"):
        prm.delete()
    assert methods(fake).count("DELETE") == 5
    assert len(stored_names(fake)) == 2


def test_works_through_kubeconfig_like_a_charm(
    fake: FakeKubernetes,
    monkeypatch: pytest.MonkeyPatch,
    policies: list[MeshPolicy],
    vector: dict,
):
    import lightkube

    with fake.serve(namespace="cos") as kubeconfig:
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
        with lightkube.Client(namespace="cos", field_manager="tempo-cos") as client:
            prm = PolicyResourceManager(CHARM, client, vector["prm_labels"])
            prm.reconcile(policies, MeshType.istio)
            prm.reconcile(policies, MeshType.istio)
    assert fake.requests == [
        *vector["pass1_reconcile_requests"],
        vector["pass1_reconcile_requests"][0],
    ]


def test_a_plain_text_404_from_an_older_api_server_also_means_no_crd():
    """Older API servers answer unknown groups with text/plain "404 page not found"."""
    import httpx2
    import lightkube
    from lightkube.config.kubeconfig import KubeConfig
    from lightkube.config.models import Cluster, User

    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(404, text="404 page not found", request=request)

    config = KubeConfig.from_one(cluster=Cluster(server="http://old"), user=User(token="t"))
    with lightkube.Client(
        config=config,
        field_manager="tempo-cos",
        trust_env=False,
        transport=httpx2.MockTransport(answer),
    ) as client:
        prm = PolicyResourceManager(CHARM, client, {"a": "b"})
        with pytest.raises(CRDMissingError):
            prm.reconcile([], MeshType.istio)
        assert prm.delete().changed is False


# --- logging: one line per reconcile (under Juju each record is a `juju-log` process) ---------


def _records(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "service_mesh._resource_manager"]


def test_a_reconcile_logs_one_line_for_all_it_applied(
    prm: PolicyResourceManager, policies: list[MeshPolicy], caplog: pytest.LogCaptureFixture
):
    with caplog.at_level(logging.INFO):
        result = prm.reconcile(policies, MeshType.istio)

    assert _records(caplog) == [
        f"applied {len(policies)} AuthorizationPolicies: " + ", ".join(result.applied)
    ]


def test_a_reconcile_logs_one_line_for_all_it_deleted(
    prm: PolicyResourceManager, policies: list[MeshPolicy], caplog: pytest.LogCaptureFixture
):
    prm.reconcile(policies, MeshType.istio)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        result = prm.reconcile(without_ingester(policies), MeshType.istio)

    assert _records(caplog) == ["deleted 2 AuthorizationPolicies: " + ", ".join(result.deleted)]


def test_a_large_reconcile_names_the_first_ten_and_counts_the_rest(
    prm: PolicyResourceManager, caplog: pytest.LogCaptureFixture
):
    many = [
        MeshPolicy(
            source_namespace="cos",
            source_app_name=f"worker-w{n}",
            target_namespace="cos",
            target_app_name="tempo",
        )
        for n in range(25)
    ]
    with caplog.at_level(logging.INFO):
        result = prm.reconcile(many, MeshType.istio)

    (line,) = _records(caplog)
    assert line == (
        "applied 25 AuthorizationPolicies: " + ", ".join(result.applied[:10]) + " and 15 more"
    )


def test_what_was_applied_before_a_failure_is_still_logged(
    fake: FakeKubernetes,
    prm: PolicyResourceManager,
    policies: list[MeshPolicy],
    caplog: pytest.LogCaptureFixture,
):
    fake.fail(method="PATCH", path_contains="tempo-querier", status=500, times=None)

    with caplog.at_level(logging.INFO), pytest.raises(KubernetesError):
        prm.reconcile(policies, MeshType.istio)

    (line,) = _records(caplog)
    assert line.startswith(f"applied {len(policies) - 2} AuthorizationPolicies: ")
    assert "tempo-querier" not in line


def test_the_transport_stays_quiet_with_a_client_built_elsewhere(
    prm: PolicyResourceManager, policies: list[MeshPolicy], caplog: pytest.LogCaptureFixture
):
    # The fixture's client was not built by kubernetes_client(); each of its requests would
    # still log httpx2's "HTTP Request" at INFO (a juju-log process under Juju) if let through.
    transport = logging.getLogger("httpx2")
    saved = transport.level
    transport.setLevel(logging.NOTSET)
    try:
        with caplog.at_level(logging.DEBUG):
            prm.reconcile(policies, MeshType.istio)
    finally:
        transport.setLevel(saved)

    assert [r.getMessage() for r in caplog.records if r.name.startswith("httpx2")] == []
    assert any(r.name == "service_mesh._resource_manager" for r in caplog.records)


@pytest.mark.parametrize("body", ["not-json", "truncated", "wrong-kind"])
@pytest.mark.parametrize("method", ["GET", "PATCH"])
def test_a_malformed_answer_is_a_named_error_and_the_next_reconcile_converges(
    fake: FakeKubernetes,
    prm: PolicyResourceManager,
    policies: list[MeshPolicy],
    method: str,
    body: Any,
):
    fake.fail_body(body, method=method)

    with pytest.raises(MalformedResponseError, match="Kubernetes") as caught:
        prm.reconcile(policies, MeshType.istio)

    assert caught.value.status_code == 200
    prm.reconcile(policies, MeshType.istio)
    assert len(stored_names(fake)) == 5


@pytest.fixture
def owned_prm(fake: FakeKubernetes, client: lightkube.Client, vector: dict[str, Any]):
    fake.add_juju_app("tempo", namespace="cos")
    return PolicyResourceManager(
        CHARM, client, vector["prm_labels"], namespace="cos", owner_statefulset="tempo"
    )


def test_owned_policies_carry_a_reference_to_the_statefulset_and_nothing_else_changes(
    fake: FakeKubernetes, owned_prm: PolicyResourceManager, policies: list[MeshPolicy], vector
):
    owned_prm.reconcile(policies, MeshType.istio)

    sts = fake.get("statefulsets", "cos", "tempo")
    assert sts is not None
    reference = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "name": "tempo",
        "uid": sts["metadata"]["uid"],
    }
    [get, *applies] = fake.requests[1:]
    assert (get["method"], get["path"]) == (
        "GET",
        "/apis/apps/v1/namespaces/cos/statefulsets/tempo",
    )
    # Upstream's bodies, byte for byte, but for the one ownerReference (a namespaced manager
    # lists in its namespace only: compare the bodies, not the LIST path).
    upstream = [r for r in vector["pass1_reconcile_requests"] if r["method"] == "PATCH"]
    assert len(applies) == len(upstream) == 5
    for ours, theirs in zip(applies, upstream, strict=True):
        body = json.loads(json.dumps(ours["body"]))
        assert body["metadata"].pop("ownerReferences") == [reference]
        assert (ours["path"], ours["query"], body) == (
            theirs["path"],
            theirs["query"],
            theirs["body"],
        )


def test_the_owner_is_fetched_only_when_something_is_applied(
    fake: FakeKubernetes, owned_prm: PolicyResourceManager, policies: list[MeshPolicy]
):
    owned_prm.reconcile(policies, MeshType.istio)
    fake.clear_requests()

    owned_prm.reconcile(policies, MeshType.istio)
    owned_prm.reconcile(without_ingester(policies), MeshType.istio)

    assert methods(fake) == ["GET", "GET", "DELETE", "DELETE"]
    assert all("statefulsets" not in r["path"] for r in fake.requests)


def test_policies_applied_without_an_owner_get_one(
    fake: FakeKubernetes,
    prm: PolicyResourceManager,
    owned_prm: PolicyResourceManager,
    policies: list[MeshPolicy],
):
    prm.reconcile(policies, MeshType.istio)  # as an older version (or upstream) left them
    fake.clear_requests()

    result = owned_prm.reconcile(policies, MeshType.istio)

    assert len(result.applied) == 5
    assert all(p["metadata"]["ownerReferences"] for p in fake.list("authorizationpolicies"))
    assert not owned_prm.reconcile(policies, MeshType.istio).changed


def test_juju_removing_the_app_takes_its_policies_even_without_a_hook(
    fake: FakeKubernetes, owned_prm: PolicyResourceManager, policies: list[MeshPolicy]
):
    fake.add_juju_app("other", namespace="cos")
    owned_prm.reconcile(policies, MeshType.istio)
    assert len(stored_names(fake)) == 5

    fake.remove_juju_app("other", namespace="cos")
    assert len(stored_names(fake)) == 5
    fake.remove_juju_app("tempo", namespace="cos")
    assert stored_names(fake) == []


def test_a_missing_owner_statefulset_is_an_error_before_any_apply(
    fake: FakeKubernetes, client: lightkube.Client, policies: list[MeshPolicy], vector
):
    prm = PolicyResourceManager(
        CHARM, client, vector["prm_labels"], namespace="cos", owner_statefulset="tempo"
    )
    with pytest.raises(KubernetesError, match=r"get StatefulSet tempo: Kubernetes answered 404"):
        prm.reconcile(policies, MeshType.istio)
    assert methods(fake) == ["GET", "GET"]


def test_an_owner_needs_the_namespace(client: lightkube.Client):
    with pytest.raises(ValueError, match="namespace"):
        PolicyResourceManager(CHARM, client, {"a": "b"}, owner_statefulset="tempo")


def test_a_raw_policy_keeps_owners_of_its_own(
    fake: FakeKubernetes, owned_prm: PolicyResourceManager
):
    theirs = {"apiVersion": "v1", "kind": "ConfigMap", "name": "anchor", "uid": "1234"}
    raw = {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "raw", "namespace": "cos", "ownerReferences": [theirs]},
        "spec": {"rules": [{"from": [{"source": {"principals": ["cluster.local/ns/a/sa/b"]}}]}]},
    }

    owned_prm.reconcile([], MeshType.istio, raw_policies=[raw])

    [stored] = fake.list("authorizationpolicies")
    assert [ref["name"] for ref in stored["metadata"]["ownerReferences"]] == ["anchor", "tempo"]
