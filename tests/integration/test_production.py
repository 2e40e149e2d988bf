# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Object storage and compute resources on a real controller (issue 16).

s3-integrator (with dummy credentials: nothing here talks to the storage) is related to the
coordinator; every worker must get the connection (the coordinator's secret, readable by the
worker's units, and the bucket in its config file), never the keys as databag text. Then the
resource options are set on both charms and the pods must run with those limits.
"""

from __future__ import annotations

import json
import shlex
from fractions import Fraction
from typing import Any

import jubilant
import pytest
from helpers import (
    COORDINATOR,
    PackedCharm,
    deploy,
    eventually,
    kube_client,
    model_name,
    units,
    wait_settled,
    worker_roles,
)
from lightkube.resources.core_v1 import Pod

_SUFFIXES = {"m": Fraction(1, 1000), "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "": 1}


def parse_quantity(text: str) -> Fraction:
    """The value of the quantities used here (Kubernetes may write them another way)."""
    for suffix, factor in sorted(_SUFFIXES.items(), key=lambda item: -len(item[0])):
        if text.endswith(suffix) and text[: len(text) - len(suffix)]:
            return Fraction(text[: len(text) - len(suffix)]) * factor
    raise ValueError(text)


WORKER = "worker-read"
S3 = "s3-integrator"
BUCKET = "obs-traces"
ENDPOINT = "https://s3.obs.example:9000"
WORKER_CONFIG = "/etc/worker/config.yaml"
# `juju exec` runs in the charm container; the workload's Pebble answers on its socket there.
IN_WORKLOAD = "PEBBLE_SOCKET=/charm/containers/workload/pebble.socket /charm/bin/pebble exec -- "


@pytest.mark.juju_setup
def test_deploy(juju: jubilant.Juju, coordinator_charm: PackedCharm, worker_charm: PackedCharm):
    deploy(juju, coordinator_charm, COORDINATOR)
    deploy(juju, worker_charm, WORKER, config=worker_roles("read", "write"))
    juju.deploy(
        S3, S3, channel="1/stable", config={"bucket": BUCKET, "endpoint": ENDPOINT, "path": "t"}
    )
    juju.integrate(f"{COORDINATOR}:cluster", f"{WORKER}:cluster")
    # The action needs the integrator's agent up; it stays blocked until it has the keys.
    juju.wait(lambda status: jubilant.all_agents_idle(status, S3), timeout=10 * 60)
    juju.run(
        units(juju, S3)[0],
        "sync-s3-credentials",
        {"access-key": "DUMMY-ACCESS-KEY", "secret-key": "DUMMY-SECRET-KEY"},
    )
    juju.integrate(f"{COORDINATOR}:s3", f"{S3}:s3-credentials")
    wait_settled(juju, COORDINATOR, WORKER, S3)


def _coordinator_bag(juju: jubilant.Juju, worker_unit: str) -> dict[str, Any]:
    """The coordinator's cluster app bag as the worker unit sees it, values decoded."""
    shown = json.loads(juju.cli("show-unit", worker_unit, "--format", "json"))
    for relation in shown[worker_unit]["relation-info"]:
        if relation["endpoint"] == "cluster":
            return {k: json.loads(v) for k, v in relation["application-data"].items()}
    raise AssertionError(f"{worker_unit} has no cluster relation")


def test_workers_get_the_connection_through_a_granted_secret(juju: jubilant.Juju):
    for unit in units(juju, WORKER):

        def check(unit: str = unit) -> None:
            bag = _coordinator_bag(juju, unit)
            assert "DUMMY" not in json.dumps(bag), "credentials in the databag"
            secret_id = bag["s3_secret_id"]
            task = juju.exec(f"secret-get {shlex.quote(secret_id)} --format json", unit=unit)
            content = json.loads(task.stdout)
            assert content["access-key"] == "DUMMY-ACCESS-KEY"
            assert content["secret-key"] == "DUMMY-SECRET-KEY"
            assert content["bucket"] == BUCKET
            assert content["endpoint"] == ENDPOINT

        eventually(check)


def test_the_worker_config_names_the_bucket(juju: jubilant.Juju):
    for unit in units(juju, WORKER):

        def check(unit: str = unit) -> None:
            config = juju.exec(f"{IN_WORKLOAD}cat {WORKER_CONFIG}", unit=unit).stdout
            assert f"bucket: {BUCKET}" in config
            assert "DUMMY" not in config

        eventually(check)


def _resources(juju: jubilant.Juju, app: str, container: str) -> dict[str, dict[str, Any]]:
    pod = kube_client(model_name(juju)).get(Pod, f"{app}-0")
    assert pod.spec is not None
    (found,) = [c for c in pod.spec.containers if c.name == container]
    resources = found.resources
    assert resources is not None
    return {
        "limits": {k: parse_quantity(v) for k, v in (resources.limits or {}).items()},
        "requests": {k: parse_quantity(v) for k, v in (resources.requests or {}).items()},
    }


@pytest.mark.parametrize(("app", "container"), [(COORDINATOR, "nginx"), (WORKER, "workload")])
def test_resource_limits_reach_the_pods(juju: jubilant.Juju, app: str, container: str):
    juju.config(
        app,
        {"cpu_limit": "500m", "memory_limit": "256Mi", "cpu_request": "50m", "memory_request": ""},
    )
    # The patch rolls the pods: wait for the new ones, then for the charms to settle.
    eventually(lambda: _assert_sized(juju, app, container), timeout=10 * 60, interval=10)
    wait_settled(juju, COORDINATOR, WORKER, S3)
    _assert_sized(juju, app, container)


def _assert_sized(juju: jubilant.Juju, app: str, container: str) -> None:
    assert _resources(juju, app, container) == {
        "limits": {"cpu": parse_quantity("500m"), "memory": parse_quantity("256Mi")},
        "requests": {"cpu": parse_quantity("50m"), "memory": parse_quantity("256Mi")},
    }


def test_an_invalid_value_blocks_and_keeps_the_pods(juju: jubilant.Juju):
    juju.config(WORKER, {"memory_limit": "lots"})
    juju.wait(
        lambda status: (
            status.apps[WORKER].units[f"{WORKER}/0"].workload_status.message
            == "resources: limit memory: 'lots' is not a quantity"
        ),
        timeout=5 * 60,
    )
    _assert_sized(juju, WORKER, "workload")
    juju.config(WORKER, {"memory_limit": "256Mi"})
    wait_settled(juju, COORDINATOR, WORKER, S3)
