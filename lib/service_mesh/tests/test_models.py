"""The policy models reproduce upstream's repr and dump, which policy names and databags embed."""

import json
import pathlib

import pydantic
import pytest

from service_mesh import Endpoint, MeshPolicy, Method, PolicyTargetType

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
def test_bad_app_policies_are_refused(fields: dict[str, object], message: str):
    with pytest.raises(pydantic.ValidationError, match=message):
        MeshPolicy(source_namespace="a", source_app_name="b", target_namespace="a", **fields)
