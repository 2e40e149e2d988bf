# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The offline CRD validator (``authorization_policy_validator``) rejects what Kubernetes would.

Other suites trust an empty error list from it, so this proves it is not vacuous: each
mutation below breaks a manifest in one way a real cluster would reject.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import pytest
import yaml

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

Manifest = dict[str, Any]
VECTOR_FILES = [
    "authorizationpolicies-cluster-internal-tempo.yaml",
    "authorizationpolicies-beacon-from-consumer-tempo.yaml",
    "authorizationpolicies-aux-hardened-modeloperator.yaml",
]


def _documents(vectors_dir: Path, name: str) -> list[Manifest]:
    return list(yaml.safe_load_all((vectors_dir / name).read_text()))


@pytest.fixture
def valid(vectors_dir: Path) -> Manifest:
    """A selector policy on port 8080, as the beacon applies it (with ownership labels)."""
    return _documents(vectors_dir, "authorizationpolicies-beacon-from-consumer-tempo.yaml")[2]


@pytest.mark.parametrize("name", VECTOR_FILES)
def test_every_policy_upstream_applies_is_valid(
    vectors_dir: Path, authorization_policy_validator: Any, name: str
):
    for manifest in _documents(vectors_dir, name):
        assert authorization_policy_validator(manifest) == [], manifest["metadata"]["name"]


def _operation(m: Manifest) -> dict[str, Any]:
    return m["spec"]["rules"][0]["to"][0]["operation"]


def _set(path: list[str | int], value: Any) -> Callable[[Manifest], None]:
    def mutate(manifest: Manifest) -> None:
        node: Any = manifest
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return mutate


def _int_ports(m: Manifest) -> None:
    _operation(m)["ports"] = [8080]


def _no_api_version(m: Manifest) -> None:
    del m["apiVersion"]


MUTATIONS: dict[str, tuple[Callable[[Manifest], None], str]] = {
    "int port": (_int_ports, "8080 is not of type 'string'"),
    "unknown spec field": (_set(["spec", "actions"], "ALLOW"), "'actions' was unexpected"),
    "unknown operation field": (
        lambda m: _operation(m).update(port="8080"),
        "'port' was unexpected",
    ),
    "unknown top-level field": (_set(["status2"], {}), "'status2' was unexpected"),
    "unknown metadata field": (_set(["metadata", "label"], {}), "metadata.label: unknown"),
    "bad action enum": (_set(["spec", "action"], "Allow"), "is not one of"),
    "selector and targetRefs": (
        _set(["spec", "targetRefs"], [{"group": "", "kind": "Service", "name": "tempo"}]),
        "only one of targetRefs or selector can be set",
    ),
    "wildcard label value": (
        _set(["spec", "selector", "matchLabels", "app.kubernetes.io/name"], "tem*"),
        "wildcard not allowed in label value match",
    ),
    "empty label key": (
        _set(["spec", "selector", "matchLabels", ""], "x"),
        "key must not be empty",
    ),
    "cross-namespace targetRef": (
        lambda m: (
            m["spec"].update(
                selector=None,
                targetRefs=[{"kind": "Service", "name": "t", "namespace": "other"}],
            )
            or m["spec"].pop("selector")
        ),
        "cross namespace referencing is not currently supported",
    ),
    "serviceAccounts with principals": (
        lambda m: m["spec"]["rules"][0]["from"][0]["source"].update(serviceAccounts=["x"]),
        "Cannot set serviceAccounts with namespaces or principals",
    ),
    "upper-case name": (_set(["metadata", "name"], "Tempo-policy"), "metadata.name"),
    "underscore in name": (_set(["metadata", "name"], "tempo_policy"), "metadata.name"),
    "name too long": (_set(["metadata", "name"], "a" * 254), "metadata.name"),
    "missing namespace": (lambda m: m["metadata"].pop("namespace"), "metadata.namespace"),
    "namespace with a dot": (_set(["metadata", "namespace"], "co.s"), "metadata.namespace"),
    "bad label value": (
        _set(["metadata", "labels", "app.kubernetes.io/instance"], "-x"),
        "not a valid label value",
    ),
    "wrong apiVersion": (_set(["apiVersion"], "security.istio.io/v1beta1"), "is not one of"),
    "missing apiVersion": (_no_api_version, "'apiVersion' is a required property"),
}


@pytest.mark.parametrize("case", MUTATIONS, ids=str)
def test_invalid_manifests_are_reported(
    valid: Manifest, authorization_policy_validator: Any, case: str
):
    mutate, expected = MUTATIONS[case]
    manifest = copy.deepcopy(valid)
    mutate(manifest)

    errors = authorization_policy_validator(manifest)

    assert any(expected in error for error in errors), errors


def test_the_longest_valid_name_passes(valid: Manifest, authorization_policy_validator: Any):
    valid["metadata"]["name"] = "a" * 253
    assert authorization_policy_validator(valid) == []
