# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Our tracing v2 requirer interoperates with PyPI's charmlibs-interfaces-tracing 1.0.0.

Each side runs as a tiny charm through ops.testing: what one implementation writes is fed as
remote data to the other, in both directions. Upstream is also the requirer most providers
use, so its models double as a check of the bag we write.
"""

from __future__ import annotations

import json
from typing import Any

import ops
import pytest
from charmlibs.interfaces import tracing as upstream
from ops import testing

from coordinated_workers.telemetry import TracingRequirer

pytestmark = [
    pytest.mark.contract,
    # Upstream 1.0.0 reads pydantic's deprecated ``__fields__`` on every load and instance
    # ``model_fields`` on every dump (PydanticDeprecatedSince211 subclasses this category).
    pytest.mark.filterwarnings("ignore::pydantic.warnings.PydanticDeprecatedSince20"),
    pytest.mark.filterwarnings("ignore::pydantic.warnings.PydanticDeprecatedSince211"),
]

MODEL = testing.Model(name="test")
REQUIRER_META: dict[str, Any] = {
    "name": "coordinator-k8s",
    "requires": {"charm-tracing": {"interface": "tracing", "limit": 1}},
}
PROVIDER_META: dict[str, Any] = {
    "name": "tempo",
    "provides": {"tracing": {"interface": "tracing"}},
}


class OurRequirer(ops.CharmBase):
    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.tracing = TracingRequirer(self, "charm-tracing", ["otlp_http", "otlp_grpc"])
        framework.observe(self.on.update_status, self._on_update_status)

    def _on_update_status(self, _: ops.EventBase):
        self.tracing.request_protocols()
        self.receivers = self.tracing.receivers()


class UpstreamProvider(ops.CharmBase):
    RECEIVERS: tuple[tuple[Any, str], ...] = (
        ("otlp_http", "http://tempo.cos.svc.cluster.local:4318"),
        ("otlp_grpc", "tempo.cos.svc.cluster.local:4317"),
        ("zipkin", "http://tempo.cos.svc.cluster.local:9411"),
    )

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.tracing = upstream.TracingEndpointProvider(self)
        framework.observe(self.on.update_status, self._on_update_status)

    def _on_update_status(self, _: ops.EventBase):
        self.requested = self.tracing.requested_protocols()
        self.tracing.publish_receivers(self.RECEIVERS)


def _run_ours(relation: testing.Relation) -> tuple[testing.State, OurRequirer]:
    ctx = testing.Context(OurRequirer, meta=REQUIRER_META)
    state = testing.State(leader=True, relations=[relation], model=MODEL)
    with ctx(ctx.on.update_status(), state) as manager:
        return manager.run(), manager.charm


def _run_upstream(relation: testing.Relation) -> tuple[testing.State, UpstreamProvider]:
    ctx = testing.Context(UpstreamProvider, meta=PROVIDER_META)
    state = testing.State(leader=True, relations=[relation], model=MODEL)
    with ctx(ctx.on.update_status(), state) as manager:
        return manager.run(), manager.charm


def test_upstream_provider_reads_our_request_and_we_read_its_receivers():
    ours = testing.Relation("charm-tracing", "tracing", remote_app_name="tempo")
    out, _ = _run_ours(ours)
    request = out.get_relation(ours.id).local_app_data

    theirs = testing.Relation(
        "tracing", "tracing", remote_app_name="coordinator-k8s", remote_app_data=request
    )
    provider_out, provider = _run_upstream(theirs)
    assert provider.requested == {"otlp_http", "otlp_grpc"}
    published = provider_out.get_relation(theirs.id).local_app_data

    ours_again = testing.Relation(
        "charm-tracing", "tracing", remote_app_name="tempo", remote_app_data=published
    )
    _, requirer = _run_ours(ours_again)
    assert requirer.receivers.problems == ()
    assert requirer.receivers.value == dict(sorted(UpstreamProvider.RECEIVERS))


def test_upstream_models_accept_our_request_bag():
    ours = testing.Relation("charm-tracing", "tracing", remote_app_name="tempo")
    out, _ = _run_ours(ours)
    bag = out.get_relation(ours.id).local_app_data
    assert upstream.TracingRequirerAppData.load(dict(bag)).receivers == ["otlp_grpc", "otlp_http"]


def test_bag_upstream_rejects_is_one_we_report():
    bag = {"receivers": json.dumps([{"protocol": {"name": "otlp_http"}, "url": "http://x:1"}])}
    with pytest.raises(upstream.DataValidationError):
        upstream.TracingProviderAppData.load(bag)
    ours = testing.Relation(
        "charm-tracing", "tracing", remote_app_name="tempo", remote_app_data=bag
    )
    _, requirer = _run_ours(ours)
    assert requirer.receivers.value == {}
    assert len(requirer.receivers.problems) == 1
