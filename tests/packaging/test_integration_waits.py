# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The integration suite's waits: this repository's charms fail fast, others only if stuck.

istio-k8s and istio-beacon-k8s pass through error statuses while they start (the beacon
raises until its waypoint is ready), so a wait that failed on their first error would fail
runs that were about to succeed; an error in our own charms is a bug to see at once.
"""

from __future__ import annotations

import importlib.util
import pathlib
import sys
import time
from typing import TYPE_CHECKING, Any

from jubilant import statustypes

if TYPE_CHECKING:
    import types

HELPERS = pathlib.Path(__file__).resolve().parents[1] / "integration" / "helpers.py"


def _load_helpers() -> types.ModuleType:
    """Import tests/integration/helpers.py by path, as the integration suite does."""
    spec = importlib.util.spec_from_file_location("integration_helpers", HELPERS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


helpers = _load_helpers()


def _status(**apps: tuple[str, str]) -> Any:
    """A status with one unit per app: name -> (charm name, workload status)."""
    return statustypes.Status(
        model=statustypes.ModelStatus(
            name="test", type="caas", controller="c", cloud="k8s", version="3.6.0"
        ),
        machines={},
        apps={
            name: statustypes.AppStatus(
                charm=charm,
                charm_origin="local" if charm in helpers.OUR_CHARMS else "charmhub",
                charm_name=charm,
                charm_rev=1,
                exposed=False,
                units={f"{name}/0": statustypes.UnitStatus(workload_status=_info(current))},
            )
            for name, (charm, current) in apps.items()
        },
    )


def _info(current: str) -> Any:
    return statustypes.StatusInfo(current=current)


def test_an_error_in_our_charm_fails_at_once():
    gate = helpers.ErrorGate("coordinator-k8s", "istio-beacon-k8s")
    assert gate(_status(**{"coordinator-k8s": ("coordinator-k8s", "error")})) is True
    assert gate(_status(**{"coordinator-k8s": ("coordinator-k8s", "active")})) is False


def test_a_transient_error_elsewhere_does_not_fail_the_wait():
    gate = helpers.ErrorGate("istio-beacon-k8s", persistent=60)
    erring = _status(**{"istio-beacon-k8s": ("istio-beacon-k8s", "error")})
    assert gate(erring) is False
    assert gate(_status(**{"istio-beacon-k8s": ("istio-beacon-k8s", "active")})) is False
    assert gate(erring) is False


def test_an_error_elsewhere_that_persists_fails_the_wait():
    gate = helpers.ErrorGate("istio-k8s", persistent=0.05)
    erring = _status(**{"istio-k8s": ("istio-k8s", "error")})
    assert gate(erring) is False
    time.sleep(0.06)
    assert gate(erring) is True


def test_a_cleared_error_starts_the_clock_again():
    gate = helpers.ErrorGate("istio-k8s", persistent=0.05)
    erring = _status(**{"istio-k8s": ("istio-k8s", "error")})
    assert gate(erring) is False
    time.sleep(0.06)
    assert gate(_status(**{"istio-k8s": ("istio-k8s", "maintenance")})) is False
    assert gate(erring) is False


def test_apps_not_waited_on_are_ignored():
    gate = helpers.ErrorGate("coordinator-k8s")
    assert gate(_status(**{"worker-read": ("worker-k8s", "error")})) is False
