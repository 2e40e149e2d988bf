# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Fixtures for the worker charm: Juju through ops.testing, Kubernetes faked at HTTP."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from ops import testing

from service_mesh.testing import FakeKubernetes

sys.path.insert(0, str(Path(__file__).parent))

from worker_scenario import APP, MODEL, charm_module


@pytest.fixture
def kube() -> Iterator[FakeKubernetes]:
    """A fake Kubernetes the charm's own lightkube.Client() reaches through KUBECONFIG."""
    fake = FakeKubernetes()
    fake.add_juju_app(APP, namespace=MODEL)
    with fake.serve_to_environment(namespace=MODEL):
        yield fake


@pytest.fixture
def ctx() -> testing.Context:
    return testing.Context(charm_module.WorkerCharm, app_name=APP)
