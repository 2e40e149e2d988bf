# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The model's proxy settings reach the workload's environment (issue 16)."""

from __future__ import annotations

from worker_scenario import state

from coordinated_workers._cluster_data import ClusterProviderAppData
from coordinated_workers._proxy import proxy_environment, with_proxy_environment
from coordinated_workers.testing import coordinator_relation

PROXY = {
    "JUJU_CHARM_HTTP_PROXY": "http://squid.internal:3128",
    "JUJU_CHARM_HTTPS_PROXY": "http://squid.internal:3129",
    "JUJU_CHARM_NO_PROXY": "10.0.0.0/8,.svc.cluster.local",
}


def test_both_spellings_and_nothing_unset():
    assert proxy_environment(PROXY) == {
        "HTTP_PROXY": "http://squid.internal:3128",
        "http_proxy": "http://squid.internal:3128",
        "HTTPS_PROXY": "http://squid.internal:3129",
        "https_proxy": "http://squid.internal:3129",
        "NO_PROXY": "10.0.0.0/8,.svc.cluster.local",
        "no_proxy": "10.0.0.0/8,.svc.cluster.local",
    }
    assert proxy_environment({"JUJU_CHARM_HTTP_PROXY": " ", "OTHER": "x"}) == {}


def test_the_charms_own_variables_win():
    layer = {"services": {"a": {"command": "a", "environment": {"no_proxy": "mine"}}}}
    result = with_proxy_environment(layer, proxy_environment(PROXY))  # type: ignore[arg-type]
    environment = result.get("services", {})["a"].get("environment", {})
    assert environment["no_proxy"] == "mine"
    assert environment["NO_PROXY"] == "10.0.0.0/8,.svc.cluster.local"
    assert layer["services"]["a"]["environment"] == {"no_proxy": "mine"}  # not changed in place


def test_the_workload_runs_behind_the_models_proxy(ctx, kube, monkeypatch):
    for name, value in PROXY.items():
        monkeypatch.setenv(name, value)
    cluster = coordinator_relation(ClusterProviderAppData(worker_config="a: 1\n"))
    out = ctx.run(ctx.on.config_changed(), state(cluster))
    environment = out.get_container("workload").plan.services["workload"].environment
    assert environment["HTTPS_PROXY"] == "http://squid.internal:3129"
    assert environment["no_proxy"] == "10.0.0.0/8,.svc.cluster.local"


def test_without_a_proxy_the_environment_is_untouched(ctx, kube, monkeypatch):
    for name in PROXY:
        monkeypatch.delenv(name, raising=False)
    cluster = coordinator_relation(ClusterProviderAppData(worker_config="a: 1\n"))
    out = ctx.run(ctx.on.config_changed(), state(cluster))
    assert out.get_container("workload").plan.services["workload"].environment == {}
