# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The coordinator's own charm traces go straight to its charm-tracing receiver.

ops.testing replaces ops' tracing backend with an in-memory one: the spans are in
``Context.trace_data`` but the destination is dropped. The destination is observed at ops'
public ``ops.tracing.set_destination``, which is wrapped, not replaced: ops still checks it.
"""

from __future__ import annotations

import json

import ops
import pytest
from coordinator_scenario import APP, MODEL, state
from ops import testing

from coordinated_workers.testing import read_provider_data, worker_relation

TEMPO = "http://tempo-0.tempo-endpoints.cos.svc.cluster.local:4318"

Destinations = list[tuple[str | None, str | None]]


@pytest.fixture
def destinations(monkeypatch: pytest.MonkeyPatch) -> Destinations:
    """Every destination the charm gives ops' tracing, in order."""
    tracing = ops.tracing
    assert tracing is not None, "the coordinator charm depends on ops[tracing]"
    real = tracing.set_destination
    calls: Destinations = []

    def record(url: str | None, ca: str | None) -> None:
        real(url=url, ca=ca)
        calls.append((url, ca))

    monkeypatch.setattr(tracing, "set_destination", record)
    return calls


def tracing_relation(*receivers: tuple[str, str, str]) -> testing.Relation:
    """A Tempo on charm-tracing offering (protocol, transport, url) receivers."""
    offered = [
        {"protocol": {"name": name, "type": transport}, "url": url}
        for name, transport, url in receivers
    ]
    return testing.Relation(
        "charm-tracing",
        interface="tracing",
        remote_app_name="tempo",
        remote_app_data={"receivers": json.dumps(offered)} if receivers else {},
        limit=1,
    )


def workers() -> list[testing.Relation]:
    return [
        worker_relation("worker-read", ["read"], model=MODEL),
        worker_relation("worker-write", ["write"], model=MODEL),
    ]


def test_own_traces_go_to_the_receiver_and_workers_get_the_proxy(ctx, kube, destinations):
    tempo = tracing_relation(("otlp_grpc", "grpc", "tempo:4317"), ("otlp_http", "http", TEMPO))
    out = ctx.run(ctx.on.config_changed(), state(*workers(), tempo))

    assert destinations == [(f"{TEMPO}/v1/traces", None)]
    assert out.unit_status == ops.ActiveStatus()
    assert "ops.main" in {span.name for span in ctx.trace_data}
    cluster = next(r for r in out.relations if r.endpoint == "cluster")
    assert read_provider_data(cluster).charm_tracing_receivers == {
        "otlp_http": f"http://{APP}.{MODEL}.svc.cluster.local:8081/proxy/charm-tracing/otlp_http/"
    }


def test_only_the_library_requirer_writes_the_charm_tracing_bag(ctx, kube, destinations):
    tempo = tracing_relation(("otlp_http", "http", TEMPO))
    out = ctx.run(ctx.on.config_changed(), state(*workers(), tempo))
    requested = out.get_relation(tempo.id).local_app_data
    assert requested == {"receivers": '["otlp_http"]'}

    again = ctx.run(ctx.on.update_status(), out)
    assert again.get_relation(tempo.id).local_app_data == requested
    assert destinations == [(f"{TEMPO}/v1/traces", None)] * 2


def test_non_leader_sends_its_traces_too(ctx, kube, destinations):
    tempo = tracing_relation(("otlp_http", "http", TEMPO))
    out = ctx.run(ctx.on.config_changed(), state(*workers(), tempo, leader=False))
    assert destinations == [(f"{TEMPO}/v1/traces", None)]
    assert out.get_relation(tempo.id).local_app_data == {}


def test_receiver_not_offered_yet_sends_nothing(ctx, kube, destinations):
    ctx.run(ctx.on.config_changed(), state(*workers(), tracing_relation()))
    assert destinations == [(None, None)]


def test_tempo_leaving_clears_the_destination(ctx, kube, destinations):
    tempo = tracing_relation(("otlp_http", "http", TEMPO))
    out = ctx.run(ctx.on.config_changed(), state(*workers(), tempo))
    ctx.run(ctx.on.relation_broken(out.get_relation(tempo.id)), out)
    assert destinations == [(f"{TEMPO}/v1/traces", None), (None, None)]


def test_otlp_http_offered_over_grpc_is_reported_not_sent_to(ctx, kube, destinations):
    tempo = tracing_relation(("otlp_http", "grpc", "tempo:4318"))
    out = ctx.run(ctx.on.config_changed(), state(*workers(), tempo))
    assert destinations == [(None, None)]
    assert out.unit_status == ops.BlockedStatus(
        "charm-tracing: charm tracing receiver 'tempo:4318' is not an http(s) URL"
    )
