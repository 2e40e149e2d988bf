# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The package's exports: every name resolves, and a worker does not load coordinator code."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import coordinated_workers


@pytest.mark.parametrize("name", coordinated_workers.__all__)
def test_every_exported_name_resolves(name: str):
    assert getattr(coordinated_workers, name) is not None


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        coordinated_workers.nope  # noqa: B018 - the access is the test


def test_the_worker_does_not_import_nginx_or_the_telemetry_proxy():
    # A fresh interpreter, as each hook is: what a worker charm's import of `Worker` pulls in.
    probe = (
        "import json, sys; from coordinated_workers import Worker; "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('coordinated_workers'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = json.loads(result.stdout)
    assert "coordinated_workers._worker" in loaded
    coordinator_only = (
        "_nginx",
        "_nginx_pebble",
        "_nginx_text",
        "_telemetry_proxy",
        "_coordinator",
        "_plan",
        "_steps",
    )
    assert {f"coordinated_workers.{name}" for name in coordinator_only} & set(loaded) == set()
