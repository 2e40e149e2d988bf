# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The policy models reproduce upstream's repr and dump, which policy names and databags embed."""

import json
import pathlib
from typing import Any

import pydantic
import pytest

from service_mesh import Endpoint, MeshPolicy, Method, PolicyTargetType
from service_mesh._provider import decode_policies

VECTORS = pathlib.Path(__file__).parents[3] / "tests" / "vectors"


def _cluster_internal_cases() -> list[dict[str, object]]:
    wire = json.loads((VECTORS / "prm-cluster-internal-tempo-wire.json").read_text())
    return wire["mesh_policies"]


@pytest.mark.parametrize("case", _cluster_internal_cases(), ids=lambda c: c["str_for_hash"][:60])
def test_repr_and_dump_match_upstream(case: dict[str, object]):
    policy = MeshPolicy.model_validate(case["meshpolicy_json"])
    assert str(policy) == case["str_for_hash"]
    assert policy.model_dump(mode="json") == case["meshpolicy_json"]


def test_unit_policy_with_l7_rules_is_refused():
    with pytest.raises(pydantic.ValidationError, match="can only restrict ports"):
        MeshPolicy(
            source_namespace="a",
            source_app_name="b",
            target_namespace="a",
            target_app_name="t",
            target_type=PolicyTargetType.unit,
            endpoints=[Endpoint(ports=[80], methods=[Method.get])],
        )


def test_unit_policy_without_target_is_refused():
    with pytest.raises(pydantic.ValidationError, match="every pod of the namespace"):
        MeshPolicy(
            source_namespace="a",
            source_app_name="b",
            target_namespace="a",
            target_type=PolicyTargetType.unit,
        )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "needs target_app_name or target_service"),
        ({"target_app_name": "t", "target_selector_labels": {"k": "v"}}, "cannot use"),
    ],
)
def test_bad_app_policies_are_refused(fields: dict[str, Any], message: str):
    with pytest.raises(pydantic.ValidationError, match=message):
        MeshPolicy(source_namespace="a", source_app_name="b", target_namespace="a", **fields)


_VALID = {
    "source_namespace": "obs--prod",
    "source_app_name": "grafana",
    "target_namespace": "cos",
    "target_app_name": "tempo",
}


@pytest.mark.parametrize(
    "fields",
    [
        _VALID,
        {**_VALID, "source_app_name": "a1-b2c-x"},
        {**_VALID, "source_namespace": "0-a"},
        {**_VALID, "target_app_name": None, "target_service": "tempo-api"},
        {**_VALID, "source_app_name": "a" * 63, "target_namespace": "n" * 63},
        {**_VALID, "endpoints": [{"ports": [1, 65535]}]},
    ],
    ids=["double-hyphen-model", "digit-words", "leading-digit-model", "service", "63", "ports"],
)
def test_names_juju_and_kubernetes_accept_are_accepted(fields: dict[str, object]):
    MeshPolicy.model_validate(fields)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({**_VALID, "source_app_name": "Evil_App"}, "source_app_name"),
        ({**_VALID, "source_app_name": "app-1"}, "source_app_name"),
        ({**_VALID, "source_app_name": "a--b"}, "source_app_name"),
        ({**_VALID, "source_app_name": "1app"}, "source_app_name"),
        ({**_VALID, "source_app_name": "a" * 64}, "source_app_name"),
        ({**_VALID, "target_app_name": "*"}, "target_app_name"),
        ({**_VALID, "source_namespace": "cos-"}, "source_namespace"),
        ({**_VALID, "source_namespace": "-cos"}, "source_namespace"),
        ({**_VALID, "target_namespace": "n" * 64}, "target_namespace"),
        ({**_VALID, "target_namespace": "a/b"}, "target_namespace"),
        ({**_VALID, "target_service": "1svc"}, "target_service"),
        ({**_VALID, "endpoints": [{"ports": [0]}]}, "endpoints.0.ports.0"),
        ({**_VALID, "endpoints": [{"ports": [65536]}]}, "endpoints.0.ports.0"),
    ],
    ids=[
        "uppercase",
        "digit-word",
        "double-hyphen-app",
        "leading-digit-app",
        "64-app",
        "wildcard-target",
        "trailing-hyphen-ns",
        "leading-hyphen-ns",
        "64-ns",
        "slash-ns",
        "service-digit",
        "port-0",
        "port-65536",
    ],
)
def test_names_and_ports_juju_or_kubernetes_refuse_are_refused(
    fields: dict[str, object], field: str
):
    with pytest.raises(pydantic.ValidationError) as raised:
        MeshPolicy.model_validate(fields)
    locations = [".".join(str(part) for part in e["loc"]) for e in raised.value.errors()]
    assert locations == [field]


def test_a_consumer_policy_the_api_server_would_refuse_is_skipped_at_decode_time():
    # Issue 11 defect 5: "Evil_App" validated, then every reconcile failed on its 422.
    good = {**_VALID, "source_namespace": "cos"}
    raw = json.dumps([{**good, "source_app_name": "Evil_App"}, good])

    policies, problem = decode_policies(raw, "tempo")

    assert policies == [MeshPolicy.model_validate(good)]
    assert problem is not None
    assert problem.startswith("ignored 1 of 2 policies from 'tempo': #0: source_app_name: String")
