# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The cluster on its own: role-split workers, routing by role through the coordinator, scaling.

One model for the module. The API is called from inside the coordinator's pod at the
coordinator's service address, as any in-cluster client would.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from helpers import (
    API_PORT,
    COORDINATOR,
    PackedCharm,
    app_host,
    deploy,
    http_get_many,
    model_name,
    requests_served_by_app,
    units,
    wait_settled,
    worker_roles,
)

if TYPE_CHECKING:
    import jubilant

WORKER_READ = "worker-read"
WORKER_WRITE = "worker-write"
WORKER_ALL = "worker-all"
REQUESTS = 40


@pytest.mark.juju_setup
def test_deploy(juju: jubilant.Juju, coordinator_charm: PackedCharm, worker_charm: PackedCharm):
    deploy(juju, coordinator_charm, COORDINATOR)
    deploy(juju, worker_charm, WORKER_READ, config=worker_roles("read"))
    deploy(juju, worker_charm, WORKER_WRITE, config=worker_roles("write"))
    juju.integrate(f"{COORDINATOR}:cluster", f"{WORKER_READ}:cluster")
    juju.integrate(f"{COORDINATOR}:cluster", f"{WORKER_WRITE}:cluster")

    wait_settled(juju, COORDINATOR, WORKER_READ, WORKER_WRITE)


def _call_api(juju: jubilant.Juju, path: str, apps: list[str]) -> dict[str, float]:
    """Send REQUESTS GETs to the API at `path`; return how many each of `apps` served."""
    client = units(juju, COORDINATOR)[0]
    before = {app: requests_served_by_app(juju, client, app) for app in apps}
    url = f"http://{app_host(COORDINATOR, model_name(juju))}:{API_PORT}{path}"
    statuses, body = http_get_many(juju, client, url, count=REQUESTS)
    assert statuses == [200] * REQUESTS, f"{url}: {statuses}, last body {body[:200]!r}"
    return {app: requests_served_by_app(juju, client, app) - before[app] for app in apps}


def _assert_served_by(served: dict[str, float], *apps: str) -> None:
    """All requests went to `apps`; the other apps saw at most background noise."""
    assert sum(served[app] for app in apps) >= REQUESTS, served
    # Pebble health checks may touch a workload in the meantime, never REQUESTS/2 times.
    others = {app: n for app, n in served.items() if app not in apps}
    assert all(n < REQUESTS / 2 for n in others.values()), served


def test_reads_reach_only_read_workers(juju: jubilant.Juju):
    served = _call_api(juju, "/read/some/object", [WORKER_READ, WORKER_WRITE])
    _assert_served_by(served, WORKER_READ)


def test_writes_reach_only_write_workers(juju: jubilant.Juju):
    served = _call_api(juju, "/write/some/object", [WORKER_READ, WORKER_WRITE])
    _assert_served_by(served, WORKER_WRITE)


def test_adding_worker_units_converges(juju: jubilant.Juju):
    juju.add_unit(WORKER_READ, num_units=2)

    wait_settled(juju, COORDINATOR, WORKER_READ, WORKER_WRITE)
    assert len(units(juju, WORKER_READ)) == 3
    served = _call_api(juju, "/read/after-scale-up", [WORKER_READ, WORKER_WRITE])
    _assert_served_by(served, WORKER_READ)


def test_removing_a_worker_unit_converges(juju: jubilant.Juju):
    juju.remove_unit(WORKER_READ, num_units=1)

    juju.wait(lambda status: len(status.get_units(WORKER_READ)) == 2, timeout=10 * 60)
    wait_settled(juju, COORDINATOR, WORKER_READ, WORKER_WRITE)
    served = _call_api(juju, "/read/after-scale-down", [WORKER_READ, WORKER_WRITE])
    _assert_served_by(served, WORKER_READ)


def test_a_third_worker_app_joins(juju: jubilant.Juju, worker_charm: PackedCharm):
    deploy(juju, worker_charm, WORKER_ALL)  # role-all, the default
    juju.integrate(f"{COORDINATOR}:cluster", f"{WORKER_ALL}:cluster")

    wait_settled(juju, COORDINATOR, WORKER_READ, WORKER_WRITE, WORKER_ALL)
    served = _call_api(juju, "/write/with-three-apps", [WORKER_READ, WORKER_WRITE, WORKER_ALL])
    _assert_served_by(served, WORKER_WRITE, WORKER_ALL)


def test_a_worker_app_leaves(juju: jubilant.Juju):
    juju.remove_application(WORKER_ALL)

    juju.wait(lambda status: WORKER_ALL not in status.apps, timeout=10 * 60)
    wait_settled(juju, COORDINATOR, WORKER_READ, WORKER_WRITE)
    served = _call_api(juju, "/write/after-removal", [WORKER_READ, WORKER_WRITE])
    _assert_served_by(served, WORKER_WRITE)
