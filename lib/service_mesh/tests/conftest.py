# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Fixtures shared by the service_mesh tests: golden databags, databag writes, a fake cluster."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import ops
import pytest

from service_mesh.testing import FakeKubernetes

if TYPE_CHECKING:
    import pathlib
    from collections.abc import Iterator

    import lightkube


@pytest.fixture
def consumer_vector(vectors_dir: pathlib.Path) -> dict[str, Any]:
    """What upstream's consumer (a Tempo coordinator) writes, and the policies it means."""
    return json.loads((vectors_dir / "consumer-databag-tempo.json").read_text())


@pytest.fixture
def provider_vector(vectors_dir: pathlib.Path) -> dict[str, Any]:
    """What upstream's provider (istio-beacon-k8s) writes."""
    return json.loads((vectors_dir / "provider-databag-istio-beacon.json").read_text())


@pytest.fixture
def bag_writes(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, str]]:
    """Every relation-set the charm makes (ops funnels all databag writes through update)."""
    writes: list[dict[str, str]] = []
    original = ops.RelationDataContent.update

    def recording_update(self: ops.RelationDataContent, data: Any = (), /, **kwargs: str) -> None:
        writes.append(dict(data, **kwargs))
        original(self, data, **kwargs)

    monkeypatch.setattr(ops.RelationDataContent, "update", recording_update)
    return writes


@pytest.fixture
def fake() -> FakeKubernetes:
    """A cluster holding Juju's StatefulSet and Service for app ``tempo`` in namespace ``cos``."""
    fake = FakeKubernetes()
    fake.add_juju_app("tempo", namespace="cos")
    return fake


@pytest.fixture
def client(fake: FakeKubernetes) -> Iterator[lightkube.Client]:
    """A real lightkube client on `fake`; field manager ``tempo``, as upstream's consumer uses."""
    client = fake.client(namespace="cos", field_manager="tempo")
    yield client
    client.close()
