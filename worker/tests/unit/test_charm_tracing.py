# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The worker's own charm traces go to the URL the coordinator gives it, through ops.tracing.

ops.testing replaces ops' tracing backend with an in-memory one: the spans are in
``Context.trace_data`` but the destination is dropped. The destination is observed at ops'
public ``ops.tracing.set_destination``, which is wrapped, not replaced: ops still checks it.
"""

from __future__ import annotations

import dataclasses

import ops
import pytest
from worker_scenario import state

from coordinated_workers import ClusterProviderAppData
from coordinated_workers.testing import coordinator_relation

CA_PEM = "-----BEGIN CERTIFICATE-----\nQ0E=\n-----END CERTIFICATE-----"

PROXY = "http://coordinator-k8s.test.svc.cluster.local:8081/proxy/charm-tracing/otlp_http/"
TRACES = f"{PROXY}v1/traces"

Destinations = list[tuple[str | None, str | None]]


@pytest.fixture
def destinations(monkeypatch: pytest.MonkeyPatch) -> Destinations:
    """Every destination the charm gives ops' tracing, in order."""
    tracing = ops.tracing
    assert tracing is not None, "the worker charm depends on ops[tracing]"
    real = tracing.set_destination
    calls: Destinations = []

    def record(url: str | None, ca: str | None) -> None:
        real(url=url, ca=ca)
        calls.append((url, ca))

    monkeypatch.setattr(tracing, "set_destination", record)
    return calls


def published(**overrides) -> ClusterProviderAppData:
    data = {"worker_config": "x: 1\n", "worker_labels": {}, "worker_ports": [8080], **overrides}
    return ClusterProviderAppData.model_validate(data)


def test_traces_go_to_the_coordinators_proxy(ctx, kube, destinations):
    relation = coordinator_relation(published(charm_tracing_receivers={"otlp_http": PROXY}))
    out = ctx.run(ctx.on.config_changed(), state(relation))
    assert destinations == [(TRACES, None)]
    assert out.unit_status == ops.ActiveStatus("all ready")
    assert "ops.main" in {span.name for span in ctx.trace_data}


def test_https_receiver_is_verified_with_the_clusters_ca(ctx, kube, destinations):
    https = PROXY.replace("http://", "https://")
    data = published(charm_tracing_receivers={"otlp_http": https}, ca_cert=CA_PEM)
    ctx.run(ctx.on.config_changed(), state(coordinator_relation(data)))
    assert destinations == [(f"{https}v1/traces", CA_PEM)]


def test_other_protocols_are_not_used_for_charm_traces(ctx, kube, destinations):
    data = published(charm_tracing_receivers={"otlp_grpc": "coordinator-k8s:4317"})
    ctx.run(ctx.on.config_changed(), state(coordinator_relation(data)))
    assert destinations == [(None, None)]


def test_url_withdrawn_clears_the_destination(ctx, kube, destinations):
    relation = coordinator_relation(published(charm_tracing_receivers={"otlp_http": PROXY}))
    out = ctx.run(ctx.on.config_changed(), state(relation))
    withdrawn = dataclasses.replace(relation, remote_app_data=published().dump())
    ctx.run(ctx.on.relation_changed(withdrawn), dataclasses.replace(out, relations=[withdrawn]))
    assert destinations == [(TRACES, None), (None, None)]


def test_coordinator_leaving_clears_the_destination(ctx, kube, destinations):
    relation = coordinator_relation(published(charm_tracing_receivers={"otlp_http": PROXY}))
    out = ctx.run(ctx.on.config_changed(), state(relation))
    ctx.run(ctx.on.relation_broken(out.get_relation(relation.id)), out)
    assert destinations == [(TRACES, None), (None, None)]


def test_without_coordinator_nothing_is_sent(ctx, kube, destinations):
    ctx.run(ctx.on.install(), state())
    assert destinations == [(None, None)]


def test_a_url_ops_cannot_send_to_is_reported_and_the_workload_still_runs(ctx, kube, destinations):
    data = published(charm_tracing_receivers={"otlp_http": "coordinator-k8s:4317"})
    out = ctx.run(ctx.on.config_changed(), state(coordinator_relation(data)))
    assert destinations == [(None, None)]
    assert isinstance(out.unit_status, ops.BlockedStatus)
    assert out.unit_status.message.startswith("cluster: charm tracing receiver")
    assert "workload" in out.get_container("workload").plan.services


def test_malformed_coordinator_data_keeps_the_last_destination(ctx, kube, destinations):
    relation = coordinator_relation(remote_app_data={"charm_tracing_receivers": "{not json"})
    ctx.run(ctx.on.config_changed(), state(relation))
    assert destinations == []


def test_without_ops_tracing_the_charm_works_and_sends_nothing(
    ctx, kube, destinations, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(ops, "tracing", None)  # what `import ops` gives without ops[tracing]
    relation = coordinator_relation(published(charm_tracing_receivers={"otlp_http": PROXY}))
    out = ctx.run(ctx.on.config_changed(), state(relation))
    assert out.unit_status == ops.ActiveStatus("all ready")
    assert destinations == []
