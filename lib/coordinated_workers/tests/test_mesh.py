# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The cluster's mesh footprint equals what upstream coordinated-workers applies."""

from __future__ import annotations

import json

import yaml

from coordinated_workers import _mesh as mesh
from service_mesh import AppPolicy, Endpoint, Method, PolicyTargetType, UnitPolicy
from service_mesh.istio import authorization_policies


def test_cluster_internal_policies_match_upstream_vector(vectors_dir):
    applied = list(
        yaml.safe_load_all(
            (vectors_dir / "authorizationpolicies-cluster-internal-tempo.yaml").read_text()
        )
    )
    expected = {doc["metadata"]["name"]: doc["spec"] for doc in applied if doc}
    ours = authorization_policies(
        "tempo",
        "cos",
        mesh.cluster_internal_policies("tempo", "cos", ["tempo-querier", "tempo-ingester"]),
    )
    assert {m["metadata"]["name"]: m["spec"] for m in ours} == expected


def test_policy_manager_labels_match_upstream(vectors_dir):
    wire = json.loads((vectors_dir / "prm-cluster-internal-tempo-wire.json").read_text())
    assert mesh.policy_manager_labels("tempo", "cos") == wire["prm_labels"]
    assert mesh.policy_field_manager("tempo", "cos") == "tempo-cos"


def test_one_plus_two_policies_per_worker_app_in_a_stable_order():
    policies = mesh.cluster_internal_policies("c", "m", ["w2", "w1", "w1"])
    assert [(p.source_app_name, p.target_type) for p in policies] == [
        ("c", PolicyTargetType.unit),
        ("w1", PolicyTargetType.unit),
        ("w1", PolicyTargetType.app),
        ("w2", PolicyTargetType.unit),
        ("w2", PolicyTargetType.app),
    ]
    for policy in policies:
        assert policy.endpoints == []
        if policy.target_type is PolicyTargetType.unit:
            assert policy.target_selector_labels == {"app.kubernetes.io/part-of": "c"}
        else:
            assert policy.target_app_name == "c"


def test_long_label_values_are_cut_with_a_hash():
    labels = mesh.policy_manager_labels("a" * 40, "m" * 30)
    for value in labels.values():
        assert len(value) <= 63
    assert labels["app.kubernetes.io/instance"] != labels["kubernetes-resource-handler-scope"]


def test_default_external_policies():
    with_proxy = mesh.default_external_policies("metrics-endpoint", 9113, 8081)
    assert with_proxy[0] == UnitPolicy(relation="metrics-endpoint", ports=[9113])
    proxy = with_proxy[1]
    assert isinstance(proxy, AppPolicy)
    assert proxy.endpoints[0].ports == [8081]
    assert proxy.endpoints[0].methods == [Method.get]
    assert proxy.endpoints[0].paths == ["/proxy/worker/{*}/metrics"]
    assert mesh.default_external_policies("metrics-endpoint", 9113, None) == with_proxy[:1]
    assert mesh.default_external_policies(None, 9113, 8081) == []


def test_a_proxy_port_speaking_tls_gets_a_ports_only_rule():
    """A waypoint cannot read methods or paths inside TLS that nginx terminates."""
    (_, proxy) = mesh.default_external_policies("metrics-endpoint", 9113, 8443, tls=True)
    assert isinstance(proxy, AppPolicy)
    assert proxy.endpoints == [Endpoint(ports=[8443])]
    assert proxy.endpoints[0].is_l4


def test_charm_policies_follow_defaults():
    charm = [AppPolicy(relation="api", endpoints=[])]
    defaults = mesh.default_external_policies("metrics-endpoint", 9113, None)
    assert mesh.external_policies(defaults, charm) == [*defaults, *charm]
