# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The AuthorizationPolicy builder reproduces upstream's resources and Istio accepts them."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pydantic
import pytest
import yaml
from hypothesis import HealthCheck, given, settings

from service_mesh import Endpoint, MeshPolicy, PolicyTargetType, istio
from tests.support.mesh_strategies import app_names, dns_labels, mesh_policies

if TYPE_CHECKING:
    from pathlib import Path


def _json(path: Path) -> Any:
    return json.loads(path.read_text())


def _policies(cases: list[dict[str, Any]]) -> list[MeshPolicy]:
    return [MeshPolicy.model_validate(case["meshpolicy_json"]) for case in cases]


def _without_labels(body: dict[str, Any]) -> dict[str, Any]:
    """An applied body minus the ownership labels the resource manager adds."""
    metadata = {key: value for key, value in body["metadata"].items() if key != "labels"}
    return {**body, "metadata": metadata}


def _patch_bodies(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [_without_labels(r["body"]) for r in requests if r["method"] == "PATCH"]


def test_raw_builder_output_is_identical_including_key_order(vectors_dir: Path):
    wire = _json(vectors_dir / "prm-cluster-internal-tempo-wire.json")
    raw = _json(vectors_dir / "policy-builder-raw-cluster-internal-tempo.json")["resources"]

    ours = istio.authorization_policies("tempo", "cos", _policies(wire["mesh_policies"]))

    got = [json.dumps({"metadata": m["metadata"], "spec": m["spec"]}) for m in ours]
    assert got == [json.dumps(resource) for resource in raw]


@pytest.mark.parametrize(
    ("wire_file", "owner", "requests_key"),
    [
        ("prm-cluster-internal-tempo-wire.json", ("tempo", "cos"), "pass1_reconcile_requests"),
        ("beacon-from-consumer-tempo-wire.json", ("istio-beacon-k8s", "cos"), "requests"),
    ],
)
def test_manifests_equal_the_applied_bodies_byte_for_byte(
    vectors_dir: Path, wire_file: str, owner: tuple[str, str], requests_key: str
):
    wire = _json(vectors_dir / wire_file)

    ours = istio.authorization_policies(*owner, _policies(wire["mesh_policies"]))

    expected = _patch_bodies(wire[requests_key])
    assert len(expected) == len(wire["mesh_policies"])
    assert [json.dumps(m) for m in ours] == [json.dumps(body) for body in expected]


@pytest.mark.parametrize(
    ("yaml_file", "wire_file", "owner"),
    [
        (
            "authorizationpolicies-cluster-internal-tempo.yaml",
            "prm-cluster-internal-tempo-wire.json",
            ("tempo", "cos"),
        ),
        (
            "authorizationpolicies-beacon-from-consumer-tempo.yaml",
            "beacon-from-consumer-tempo-wire.json",
            ("istio-beacon-k8s", "cos"),
        ),
    ],
)
def test_every_applied_policy_gets_the_same_name_namespace_and_spec(
    vectors_dir: Path, yaml_file: str, wire_file: str, owner: tuple[str, str]
):
    applied = list(yaml.safe_load_all((vectors_dir / yaml_file).read_text()))
    cases = _json(vectors_dir / wire_file)["mesh_policies"]

    ours = istio.authorization_policies(*owner, _policies(cases))

    assert [m["metadata"]["name"] for m in ours] == [a["metadata"]["name"] for a in applied]
    assert [m["metadata"]["namespace"] for m in ours] == [
        a["metadata"]["namespace"] for a in applied
    ]
    assert [m["spec"] for m in ours] == [a["spec"] for a in applied]


def _edge_cases(vectors_dir: Path) -> list[dict[str, Any]]:
    return _json(vectors_dir / "policy-builder-edge-cases.json")["builder_cases"]


def _upstream_refuses_or_opens_namespace(case: dict[str, Any]) -> bool:
    """Upstream returned None, or emitted a policy with no target (the whole namespace)."""
    resource = case["resource"]
    return resource is None or not {"selector", "targetRefs"} & resource["spec"].keys()


def test_edge_cases_build_exactly_what_upstream_builds(vectors_dir: Path):
    cases = [c for c in _edge_cases(vectors_dir) if not _upstream_refuses_or_opens_namespace(c)]
    assert len(cases) >= 6  # hosts, empty endpoint, no endpoints, service only, unit, long name

    for case in cases:
        policy = MeshPolicy.model_validate(case["meshpolicy"])
        assert str(policy) == case["str_for_hash"], case["description"]

        [manifest] = istio.authorization_policies(case["prm_app"], case["prm_model"], [policy])

        got = {"metadata": manifest["metadata"], "spec": manifest["spec"]}
        assert json.dumps(got) == json.dumps(case["resource"]), case["description"]
        assert (
            istio.policy_name(case["prm_app"], case["prm_model"], policy)
            == (case["resource"]["metadata"]["name"])
        )


def test_the_long_name_case_is_truncated_like_upstream(vectors_dir: Path):
    [case] = [c for c in _edge_cases(vectors_dir) if "long" in c["description"]]
    policy = MeshPolicy.model_validate(case["meshpolicy"])

    name = istio.policy_name(case["prm_app"], case["prm_model"], policy)

    assert name == case["resource"]["metadata"]["name"]
    assert len(name) <= 253
    assert f"-policy-{'s' * 30}-{'n' * 30}-{'t' * 30}-" in name


def test_policies_upstream_mishandles_are_refused_before_the_builder(vectors_dir: Path):
    """Upstream drops one (crashing its resource manager) and opens the namespace for the other."""
    cases = [c for c in _edge_cases(vectors_dir) if _upstream_refuses_or_opens_namespace(c)]
    assert len(cases) == 2

    for case in cases:
        with pytest.raises(pydantic.ValidationError, match="unit policy"):
            MeshPolicy.model_validate(case["meshpolicy"])


def test_one_manifest_per_policy_in_order_from_any_iterable():
    policies = [
        MeshPolicy(
            source_namespace="m", source_app_name=src, target_namespace="m", target_app_name="t"
        )
        for src in ("a", "b", "c")
    ]

    manifests = istio.authorization_policies("o", "m", (p for p in policies))

    assert [m["spec"]["rules"][0]["from"][0]["source"]["principals"] for m in manifests] == [
        ["cluster.local/ns/m/sa/a"],
        ["cluster.local/ns/m/sa/b"],
        ["cluster.local/ns/m/sa/c"],
    ]
    assert istio.authorization_policies("o", "m", []) == []


def test_manifests_do_not_share_state_with_the_policy():
    labels = {"app.kubernetes.io/part-of": "tempo"}
    policy = MeshPolicy(
        source_namespace="m",
        source_app_name="a",
        target_namespace="m",
        target_selector_labels=labels,
        target_type=PolicyTargetType.unit,
        endpoints=[Endpoint(ports=[80])],
    )

    [manifest] = istio.authorization_policies("o", "m", [policy])
    manifest["spec"]["selector"]["matchLabels"]["extra"] = "x"

    assert policy.target_selector_labels == {"app.kubernetes.io/part-of": "tempo"}


def test_resource_constants_name_the_v1_authorization_policy():
    assert (istio.GROUP, istio.VERSION, istio.KIND, istio.PLURAL) == (
        "security.istio.io",
        "v1",
        "AuthorizationPolicy",
        "authorizationpolicies",
    )
    assert istio.API_VERSION == "security.istio.io/v1"


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(owner_app=app_names, owner_model=dns_labels, policy=mesh_policies)
def test_every_manifest_the_builder_can_produce_is_accepted_by_the_crd(
    authorization_policy_validator: Any, owner_app: str, owner_model: str, policy: MeshPolicy
):
    [manifest] = istio.authorization_policies(owner_app, owner_model, [policy])

    assert authorization_policy_validator(manifest) == []
    assert "action" not in manifest["spec"]
