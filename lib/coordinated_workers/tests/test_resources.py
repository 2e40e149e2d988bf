# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Compute resources: upstream's limit arithmetic and request sequence, checked on the vectors.

``tests/vectors/cos/kubernetes_compute_resources_patch-requests.json`` holds every request the
maintained library sent to a recording API server; here the same StatefulSet is served by
FakeKubernetes to a real lightkube client.
"""

from __future__ import annotations

import decimal
import json
import pathlib
from typing import Any

import pytest

from coordinated_workers._resources import (
    FIELD_MANAGER,
    ComputeResources,
    ContainerNotFoundError,
    InvalidResourcesError,
    adjust_requirements,
    parse_quantity,
    patch_resources,
)
from service_mesh.testing import FakeKubernetes

VECTOR = json.loads(
    (
        pathlib.Path(__file__).parents[3]
        / "tests"
        / "vectors"
        / "cos"
        / "kubernetes_compute_resources_patch-requests.json"
    ).read_text()
)
VARIANTS: dict[str, Any] = VECTOR["variants"]
REQUESTS = {"cpu": "50m", "memory": "100Mi"}  # what every variant requests


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", "1"),
        ("50m", "0.050"),
        ("2Gi", "2147483648"),
        ("100Mi", "104857600"),
        ("1.5", "1.5"),
        (".5", "0.5"),
        ("1e3", "1000"),
        ("1E-3", "0.001"),
        ("2k", "2000"),
        ("3M", "3000000"),
        ("+7", "7"),
        ("100n", "1.00E-7"),
    ],
)
def test_quantities_as_kubernetes_reads_them(text: str, value: str):
    assert parse_quantity(text) == decimal.Decimal(value)


@pytest.mark.parametrize(
    "text", ["", "-1", "abc", "1Gb", "1 Gi", "1e999", "Gi", "1.2.3", "k" * 70]
)
def test_not_a_quantity(text: str):
    with pytest.raises(InvalidResourcesError):
        parse_quantity(text)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_limits_are_adjusted_exactly_as_upstream(variant: str):
    config = VARIANTS[variant]["config"]
    limits = {"cpu": config.get("cpu_limit", ""), "memory": config.get("memory_limit", "")}
    wanted = adjust_requirements(limits, REQUESTS)
    assert wanted.to_json() == VARIANTS[variant]["library_views"]["resource_reqs_func"]


def test_a_limit_without_request_is_also_requested_and_memory_is_whole_bytes():
    wanted = adjust_requirements({"cpu": "1", "memory": "0.8Gi"}, {})
    assert wanted.to_json() == {
        "limits": {"cpu": "1", "memory": "858993460"},
        "requests": {"cpu": "1", "memory": "858993460"},
    }


def test_config_options_and_default_requests():
    resources = ComputeResources()
    assert resources.requirements({}).to_json() == {"limits": {}, "requests": REQUESTS}
    declared = {"cpu_limit": "2", "memory_limit": "", "cpu_request": "", "memory_request": "1Gi"}
    assert resources.requirements(declared).to_json() == {
        "limits": {"cpu": "2"},
        "requests": {"memory": "1Gi", "cpu": "2"},
    }
    with pytest.raises(InvalidResourcesError, match="limit cpu: 'lots' is not a quantity"):
        resources.requirements({"cpu_limit": "lots"})
    with pytest.raises(InvalidResourcesError, match="must be a string"):
        resources.requirements({"cpu_limit": 3})


def _served_like_the_vector() -> FakeKubernetes:
    fake = FakeKubernetes()
    fake.add(json.loads(json.dumps(VECTOR["statefulset_served_initially"])))
    fake.clear_requests()
    return fake


def _expected(variant: str, marker_from: str, marker_to: str | None) -> list[dict[str, Any]]:
    """The vector's requests between two markers, as FakeKubernetes records them."""
    log = VARIANTS[variant]["requests_log"]
    start = next(i for i, r in enumerate(log) if r.get("marker", "").startswith(marker_from))
    end = next((i for i, r in enumerate(log[start + 1 :], start + 1) if "marker" in r), len(log))
    if marker_to is None:
        end = len(log)
    return [
        {
            "method": r["method"],
            "path": r["path"],
            "query": r["query"],
            **({"content_type": r["content_type"], "body": r["body"]} if "body" in r else {}),
        }
        for r in log[start + 1 : end]
    ]


def _sent(fake: FakeKubernetes) -> list[dict[str, Any]]:
    return [
        {
            "method": r["method"],
            "path": r["path"],
            "query": r["query"],
            **({"content_type": r["content_type"], "body": r["body"]} if r["body"] else {}),
        }
        for r in fake.clear_requests()
    ]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_the_request_sequence_and_body_are_upstreams(variant: str):
    fake = _served_like_the_vector()
    config = VARIANTS[variant]["config"]
    limits = {"cpu": config.get("cpu_limit", ""), "memory": config.get("memory_limit", "")}
    wanted = adjust_requirements(limits, REQUESTS)
    with fake.client(namespace="obs") as client:
        assert patch_resources(client, "coordinator", "obs", "nginx", wanted)
        assert _sent(fake) == _expected(variant, "config-changed hook ->", "update-status")
        # Already as wanted: one GET, as upstream's repeated patch.
        assert not patch_resources(client, "coordinator", "obs", "nginx", wanted)
        assert _sent(fake) == _expected(variant, "config-changed hook again", None)
    sts = fake.get("statefulsets", "obs", "coordinator")
    assert sts is not None
    containers = {c["name"]: c for c in sts["spec"]["template"]["spec"]["containers"]}
    assert containers["nginx"]["resources"] == VARIANTS[variant]["nginx_container_resources_after"]
    assert containers["nginx"]["image"] == "ghcr.io/canonical/nginx:1.27.5"  # kept
    assert containers["charm"]["resources"] == {"requests": {"cpu": "250m"}}  # not ours


def test_the_field_manager_is_upstreams_so_ownership_carries_over():
    assert FIELD_MANAGER == "ResourcePatcher"


def test_a_missing_container_is_a_named_error():
    fake = _served_like_the_vector()
    with fake.client(namespace="obs") as client, pytest.raises(ContainerNotFoundError):
        patch_resources(client, "coordinator", "obs", "tempo", adjust_requirements({}, REQUESTS))
