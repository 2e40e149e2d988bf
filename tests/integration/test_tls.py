# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""TLS on a real controller (issue 14): self-signed-certificates related to the coordinator.

The coordinator must then serve its API and the worker telemetry proxy over https, to a client
that trusts only the CA the workers were given; every worker gets the certificate (its key only
through a granted secret). Removing the relation takes the cluster back to plain HTTP.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

import jubilant
import pytest
from helpers import (
    COORDINATOR,
    PackedCharm,
    app_host,
    deploy,
    eventually,
    http_get,
    model_name,
    units,
    wait_settled,
    worker_roles,
)

WORKER = "worker-read"
CERTIFICATES = "self-signed-certificates"
API_PORT, PROXY_PORT, PROXY_TLS_PORT = 8080, 8081, 8443

# GET a URL trusting only the CA given (PEM text), from inside a unit's charm container.
_TLS_PROBE = """
import ssl, sys, urllib.error, urllib.request
url, ca = sys.argv[1], sys.argv[2]
context = ssl.create_default_context(cadata=ca) if ca else ssl.create_default_context()
try:
    with urllib.request.urlopen(url, timeout=10, context=context) as response:
        print(response.status)
        print(response.read().decode(errors="replace"))
except urllib.error.HTTPError as error:
    print(error.code)
    print(error.read().decode(errors="replace"))
except Exception as error:
    print(0)
    print(repr(error))
"""


def https_get(juju: jubilant.Juju, unit: str, url: str, ca: str) -> tuple[int, str]:
    """GET `url` from `unit`'s pod trusting only `ca` ("" for the pod's own trust store)."""
    command = f"python3 -c {shlex.quote(_TLS_PROBE)} {shlex.quote(url)} {shlex.quote(ca)}"
    status, _, body = juju.exec(command, unit=unit, wait=60).stdout.partition("\n")
    return int(status), body


def _coordinator_bag(juju: jubilant.Juju, worker_unit: str) -> dict[str, Any]:
    """The coordinator's cluster app bag as the worker unit sees it, values decoded."""
    shown = json.loads(juju.cli("show-unit", worker_unit, "--format", "json"))
    for relation in shown[worker_unit]["relation-info"]:
        if relation["endpoint"] == "cluster":
            return {k: json.loads(v) for k, v in relation["application-data"].items()}
    raise AssertionError(f"{worker_unit} has no cluster relation")


@pytest.mark.juju_setup
def test_deploy(juju: jubilant.Juju, coordinator_charm: PackedCharm, worker_charm: PackedCharm):
    deploy(juju, coordinator_charm, COORDINATOR)
    deploy(juju, worker_charm, WORKER, config=worker_roles("read", "write"))
    juju.deploy(CERTIFICATES, CERTIFICATES, channel="1/stable")
    juju.integrate(f"{COORDINATOR}:cluster", f"{WORKER}:cluster")
    juju.integrate(f"{COORDINATOR}:certificates", f"{CERTIFICATES}:certificates")
    wait_settled(juju, COORDINATOR, WORKER, CERTIFICATES)


def _ca(juju: jubilant.Juju) -> str:
    bag = _coordinator_bag(juju, units(juju, WORKER)[0])
    assert bag.get("ca_cert", "").startswith("-----BEGIN CERTIFICATE-----"), sorted(bag)
    return bag["ca_cert"]


def test_workers_get_the_certificate_and_the_key_only_through_a_secret(juju: jubilant.Juju):
    for unit in units(juju, WORKER):

        def check(unit: str = unit) -> None:
            bag = _coordinator_bag(juju, unit)
            assert bag["server_cert"].startswith("-----BEGIN CERTIFICATE-----")
            assert "PRIVATE KEY" not in json.dumps(bag), "the key is in the databag"
            secret_id = bag["privkey_secret_id"]
            task = juju.exec(f"secret-get {shlex.quote(secret_id)} --format json", unit=unit)
            assert "PRIVATE KEY" in json.loads(task.stdout)["private-key"]

        eventually(check)


def test_the_api_and_the_proxy_answer_https_to_a_client_trusting_the_ca(juju: jubilant.Juju):
    ca = _ca(juju)
    host = app_host(COORDINATOR, model_name(juju))
    via = units(juju, WORKER)[0]

    def check() -> None:
        status, body = https_get(juju, via, f"https://{host}:{API_PORT}/", ca)
        assert (status, body.strip()) == (200, "OK"), body[:300]
        url = f"https://{host}:{PROXY_TLS_PORT}/proxy/worker/{WORKER}-0/metrics"
        status, body = https_get(juju, via, url, ca)
        assert status == 200 and "http_requests_total" in body, body[:300]

    eventually(check)
    # The pod's own trust store does not know the self-signed CA: the handshake fails.
    status, body = https_get(juju, via, f"https://{host}:{API_PORT}/", "")
    assert status == 0 and "CERTIFICATE_VERIFY_FAILED" in body, body[:300]


def test_removing_the_certificates_goes_back_to_plain_http(juju: jubilant.Juju):
    juju.remove_relation(f"{COORDINATOR}:certificates", f"{CERTIFICATES}:certificates")
    wait_settled(juju, COORDINATOR, WORKER, CERTIFICATES)
    host = app_host(COORDINATOR, model_name(juju))
    via = units(juju, WORKER)[0]

    def check() -> None:
        assert http_get(juju, via, f"http://{host}:{API_PORT}/") == (200, "OK\n")
        url = f"http://{host}:{PROXY_PORT}/proxy/worker/{WORKER}-0/metrics"
        status, body = http_get(juju, via, url)
        assert status == 200 and "http_requests_total" in body, body[:300]
        bag = _coordinator_bag(juju, via)
        assert not {"ca_cert", "server_cert", "privkey_secret_id"} & set(bag)

    eventually(check)
