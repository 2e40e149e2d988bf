# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The allow matrix on hand-written policies: selectors, Service targets, limits, matching."""

from __future__ import annotations

import pytest

from service_mesh.allow_matrix import (
    ANY,
    Allow,
    Service,
    UnsupportedPolicyError,
    Workload,
    allow_matrix,
    path_matches,
    unprotected,
)

WORKLOADS = [
    Workload(
        "m", "coord", {"app.kubernetes.io/name": "coord", "app.kubernetes.io/part-of": "coord"}
    ),
    Workload("m", "w1", {"app.kubernetes.io/name": "w1", "app.kubernetes.io/part-of": "coord"}),
    Workload("m", "loki", {"app.kubernetes.io/name": "loki"}),
    Workload(
        "other", "w1", {"app.kubernetes.io/name": "w1", "app.kubernetes.io/part-of": "coord"}
    ),
]
SERVICES = [
    Service("m", "coord", {"app.kubernetes.io/name": "coord"}),
    Service("m", "coord-endpoints", {"app.kubernetes.io/name": "coord"}),
]


def policy(spec: dict, name: str = "p", namespace: str = "m") -> dict:
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def rule(source: str = "cluster.local/ns/m/sa/w1", to: list | None = None) -> dict:
    return {"from": [{"source": {"principals": [source]}}], "to": to or []}


def test_membership_selector_targets_every_member_in_the_namespace_only():
    spec = {"selector": {"matchLabels": {"app.kubernetes.io/part-of": "coord"}}, "rules": [rule()]}
    rows = allow_matrix([policy(spec)], WORKLOADS, SERVICES)
    assert [(r.source, r.target, r.via, r.ports) for r in rows] == [
        ("m/w1", "m/coord", "pods", ()),
        ("m/w1", "m/w1", "pods", ()),
    ]


def test_service_target_resolves_through_the_service_selector():
    to = [{"operation": {"ports": ["8081"], "methods": ["GET"], "paths": ["/proxy/*"]}}]
    spec = {
        "targetRefs": [{"group": "", "kind": "Service", "name": "coord"}],
        "rules": [rule("cluster.local/ns/cos/sa/prometheus", to)],
    }
    [row] = allow_matrix([policy(spec, "q")], WORKLOADS, SERVICES)
    assert row == Allow(
        "cos/prometheus", "m/coord", "service coord", ("8081",), ("GET",), ("/proxy/*",), (), "m/q"
    )
    assert row.permits(8081, "get", "/proxy/worker/w1-0/metrics")
    assert not row.permits(8081, "POST", "/proxy/x")
    assert not row.permits(8080, "GET", "/proxy/x")
    assert not row.permits(8081, "GET")


def test_unknown_service_is_reported_by_name_rather_than_dropped():
    spec = {"targetRefs": [{"group": "", "kind": "Service", "name": "gone"}], "rules": [rule()]}
    [row] = allow_matrix([policy(spec)], WORKLOADS, SERVICES)
    assert row.target == "m/gone"


def test_no_selector_targets_the_whole_namespace_and_no_from_means_anyone():
    rows = allow_matrix([policy({"rules": [{}]})], WORKLOADS, SERVICES)
    assert {(r.source, r.target) for r in rows} == {
        (ANY, "m/coord"),
        (ANY, "m/w1"),
        (ANY, "m/loki"),
    }


def test_a_policy_without_rules_allows_nothing():
    spec = {"selector": {"matchLabels": {"app.kubernetes.io/name": "loki"}}}
    assert allow_matrix([policy(spec)], WORKLOADS, SERVICES) == []


def test_unprotected_lists_apps_no_policy_targets():
    spec = {"selector": {"matchLabels": {"app.kubernetes.io/part-of": "coord"}}, "rules": [rule()]}
    rows = allow_matrix([policy(spec)], WORKLOADS, SERVICES)
    assert unprotected(WORKLOADS, rows) == ["m/loki", "other/w1"]


@pytest.mark.parametrize(
    "spec",
    [
        {"action": "DENY", "rules": [{}]},
        {"targetRef": {"kind": "Service", "name": "coord"}, "rules": [{}]},
        {"targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "g"}]},
        {"selector": {"matchExpressions": []}, "rules": [{}]},
        {"rules": [{"from": [{"source": {"namespaces": ["m"]}}]}]},
        {"rules": [{"from": [{"source": {"principals": ["spiffe-less"]}}]}]},
        {"rules": [{"to": [{"operation": {"notPorts": ["1"]}}]}]},
    ],
)
def test_what_is_not_modelled_is_refused_not_misreported(spec):
    with pytest.raises(UnsupportedPolicyError, match="m/p"):
        allow_matrix([policy(spec)], WORKLOADS, SERVICES)


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("/api", "/api", True),
        ("/api", "/api/", False),
        ("/api/*", "/api/v1/x", True),
        ("*/metrics", "/a/metrics", True),
        ("/proxy/worker/{*}/metrics", "/proxy/worker/w-0/metrics", True),
        ("/proxy/worker/{*}/metrics", "/proxy/worker/a/b/metrics", False),
        ("/x/{**}/y", "/x/a/b/y", True),
        ("*", "/anything", True),
    ],
)
def test_path_matching_follows_istio(pattern, path, expected):
    assert path_matches(pattern, path) is expected
