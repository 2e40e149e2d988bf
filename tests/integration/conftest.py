# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Fixtures for the integration suite: packed charms, their resources, and the Juju gate.

The suite needs a bootstrapped Juju controller on Kubernetes (CI gets one from
`concierge prepare -p k8s`). Without one every test is skipped, and `-ra` prints why; with
`REQUIRE_JUJU=1` (set by the CI workflow) that is an error instead.
It never packs: run `tox -e pack` first, or point the `*_CHARM_PATH` variables at charms.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess

import pytest
from helpers import REPO_ROOT, PackedCharm, charm_resources


def _why_no_controller(controller: str | None) -> str | None:
    """Return why no Juju controller is reachable, or None when one is."""
    juju = shutil.which("juju")
    if juju is None:
        return "no `juju` binary on PATH"
    try:
        result = subprocess.run(
            [juju, "controllers", "--format", "json"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "`juju controllers` timed out"
    if result.returncode != 0:
        return f"`juju controllers` failed: {result.stderr.strip() or result.returncode}"
    known = json.loads(result.stdout or "{}")
    wanted = controller or known.get("current-controller")
    if not wanted:
        return "`juju controllers` shows no current controller"
    if wanted not in (known.get("controllers") or {}):
        return f"controller {wanted!r} is not known to this Juju client"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the whole suite, with the reason, when there is no controller to run against.

    Where a controller was promised (``REQUIRE_JUJU=1``, as in the CI workflow) its absence is
    an error instead: an all-skipped run exits 0 and would pass for a green one.
    """
    if not items:
        return
    reason = _why_no_controller(config.getoption("--juju-controller"))
    if reason is None:
        return
    if os.environ.get("REQUIRE_JUJU") == "1":
        raise pytest.UsageError(f"REQUIRE_JUJU=1 but no Juju controller is reachable: {reason}")
    skip = pytest.mark.skip(reason=f"no Juju controller reachable: {reason}")
    for item in items:
        item.add_marker(skip)


def _packed(env_var: str, default: str, charm_dir: str) -> PackedCharm:
    """Find a packed charm (from `env_var`, else `default` under the repo root)."""
    path = pathlib.Path(os.environ.get(env_var) or REPO_ROOT / default).resolve()
    if not path.is_file():
        pytest.fail(
            f"{path} does not exist: run `tox -e pack` first, or set {env_var}", pytrace=False
        )
    return PackedCharm(path=path, resources=charm_resources(REPO_ROOT / charm_dir))


@pytest.fixture(scope="session")
def coordinator_charm() -> PackedCharm:
    return _packed("COORDINATOR_CHARM_PATH", ".packed/coordinator-k8s.charm", "coordinator")


@pytest.fixture(scope="session")
def worker_charm() -> PackedCharm:
    return _packed("WORKER_CHARM_PATH", ".packed/worker-k8s.charm", "worker")


@pytest.fixture(scope="session")
def api_client_charm() -> PackedCharm:
    return _packed(
        "API_CLIENT_CHARM_PATH", ".packed/api-client.charm", "tests/integration/testers/api-client"
    )
