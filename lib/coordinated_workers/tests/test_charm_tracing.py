# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Where charm traces go: the OTLP/HTTP traces URL, and ops' tracing present or absent."""

from __future__ import annotations

import ops
import pytest

from coordinated_workers import _charm_tracing
from coordinated_workers._telemetry_proxy import TelemetryTargets, plan_proxy


@pytest.mark.parametrize(
    ("receiver", "expected"),
    [
        ("http://tempo:4318", "http://tempo:4318/v1/traces"),
        ("http://tempo:4318/", "http://tempo:4318/v1/traces"),
        (
            "https://tempo.cos.svc.cluster.local:4318/base",
            "https://tempo.cos.svc.cluster.local:4318/base/v1/traces",
        ),
        (
            "http://c:8081/proxy/charm-tracing/otlp_http/",
            "http://c:8081/proxy/charm-tracing/otlp_http/v1/traces",
        ),
        ("http://c:8081/a//", "http://c:8081/a/v1/traces"),
        ("http://[fd00::1]:4318", "http://[fd00::1]:4318/v1/traces"),
        ("http://tempo:4318/?tenant=a", "http://tempo:4318/v1/traces?tenant=a"),
    ],
)
def test_traces_url_appends_the_otlp_path_with_one_slash(receiver: str, expected: str):
    assert _charm_tracing.traces_url(receiver) == expected


def test_traces_url_of_the_proxy_url_workers_are_given():
    plan = plan_proxy(
        TelemetryTargets(charm_tracing={"otlp_http": "http://tempo.cos.svc.cluster.local:4318"}),
        "coord.m.svc.cluster.local",
        8081,
    )
    proxied = plan.published.charm_tracing["otlp_http"]
    assert _charm_tracing.traces_url(proxied) == (
        "http://coord.m.svc.cluster.local:8081/proxy/charm-tracing/otlp_http/v1/traces"
    )


@pytest.mark.parametrize(
    "receiver",
    ["tempo:4317", "grpc://tempo:4317", "ftp://tempo/", "http://", "http:///v1", "/v1/traces", ""],
)
def test_traces_url_refuses_what_ops_cannot_send_to(receiver: str):
    with pytest.raises(ValueError, match="not an http"):
        _charm_tracing.traces_url(receiver)


@pytest.fixture
def destinations(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str | None, str | None]]:
    """Every destination given to ops' (public) ``ops.tracing.set_destination``."""
    tracing = ops.tracing
    assert tracing is not None, "the unit group installs ops[tracing]"
    calls: list[tuple[str | None, str | None]] = []
    monkeypatch.setattr(tracing, "set_destination", lambda url, ca: calls.append((url, ca)))
    return calls


def test_set_destination_passes_the_traces_url_and_ca(destinations):
    _charm_tracing.set_destination("https://tempo:4318", ca="PEM")
    _charm_tracing.set_destination(None, ca="PEM")
    assert destinations == [("https://tempo:4318/v1/traces", "PEM"), (None, None)]


def test_bad_receiver_clears_the_destination_then_raises(destinations):
    with pytest.raises(ValueError, match="not an http"):
        _charm_tracing.set_destination("tempo:4317")
    assert destinations == [(None, None)]


def test_without_ops_tracing_nothing_is_set_but_bad_urls_are_still_refused(
    monkeypatch: pytest.MonkeyPatch, destinations
):
    monkeypatch.setattr(ops, "tracing", None)  # what `import ops` gives without ops[tracing]
    _charm_tracing.set_destination("http://tempo:4318")
    _charm_tracing.set_destination(None)
    with pytest.raises(ValueError, match="not an http"):
        _charm_tracing.set_destination("tempo:4317")
    assert destinations == []
