# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""nginx listens on ``[::]`` only where the pod has IPv6: the probe, and both renderings.

nginx does not start when a ``listen [::]:<port>`` socket cannot be made (a node booted with
``ipv6.disable=1``), so the coordinator asks the pod before rendering.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from ops import testing

from coordinated_workers._ipv6 import IF_INET6, pod_has_ipv6
from coordinated_workers._nginx import NginxInputs, RoleRoute, render_config
from coordinated_workers.testing import worker_relation
from service_mesh.testing import FakeKubernetes
from tests.support.coordinators import (
    COORDINATOR_CONTAINERS,
    coordinator_charm,
    coordinator_state,
    kubernetes_with,
    minimal_coordinator_config,
)

if TYPE_CHECKING:
    import pathlib

LOOPBACK_ONLY = "00000000000000000000000000000001 01 80 10 80       lo\n"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (LOOPBACK_ONLY, True),
        ("fd000000000000000000000000000002 04 40 00 82     eth0\n" + LOOPBACK_ONLY, True),
        ("", False),  # IPv6 disabled on every interface
        ("\n", False),
    ],
)
def test_probe_reads_the_address_list(tmp_path: pathlib.Path, content: str, expected: bool):
    addresses = tmp_path / "if_inet6"
    addresses.write_text(content)
    assert pod_has_ipv6(str(addresses)) is expected


def test_probe_without_ipv6_in_the_kernel(tmp_path: pathlib.Path):
    # A kernel booted without IPv6 has no /proc/net/if_inet6 at all.
    assert pod_has_ipv6(str(tmp_path / "if_inet6")) is False
    assert pod_has_ipv6(str(tmp_path)) is False  # unreadable as a file


def test_probe_agrees_with_this_machine():
    """Where the probe says yes, an IPv6 wildcard socket really binds (what nginx needs)."""
    if not pod_has_ipv6():
        print(f"{IF_INET6} lists no IPv6 address here: nothing to bind-check")
        return
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
        sock.bind(("::", 0))


def _inputs(*, ipv6: bool) -> NginxInputs:
    return NginxInputs(
        model="test",
        api_port=8080,
        routes=[RoleRoute("/read", "read", 8080)],
        workers_by_role={"read": ["worker"]},
        resolver="10.152.183.10",
        proxy_port=8081,
        worker_apps=["worker"],
        ipv6=ipv6,
    )


def _listens(text: str) -> list[str]:
    return sorted(line.strip() for line in text.splitlines() if line.strip().startswith("listen"))


def test_rendering_with_ipv6():
    assert _listens(render_config(_inputs(ipv6=True))) == [
        "listen 127.0.0.1:8082;",
        "listen 8080;",
        "listen 8081;",
        "listen [::]:8080;",
        "listen [::]:8081;",
    ]


def test_rendering_without_ipv6():
    assert _listens(render_config(_inputs(ipv6=False))) == [
        "listen 127.0.0.1:8082;",
        "listen 8080;",
        "listen 8081;",
    ]


# --- the coordinator asks the pod --------------------------------------------------------------

MODEL = "v6"
APP = "mini"
META = {
    "name": APP,
    "containers": COORDINATOR_CONTAINERS,
    "provides": {"cluster": {"interface": "cluster"}},
}


@pytest.fixture
def kube() -> Iterator[FakeKubernetes]:
    with kubernetes_with(APP, MODEL) as fake:
        yield fake


@pytest.mark.parametrize("configured", [True, False])
def test_coordinator_listens_on_ipv6_only_where_the_pod_has_it(kube, configured: bool):
    charm = coordinator_charm(minimal_coordinator_config(workload_config="", ipv6=configured))
    ctx = testing.Context(charm, meta=META, app_name=APP)
    state = coordinator_state(worker_relation("w", ["work"], model=MODEL), model=MODEL)
    out = ctx.run(ctx.on.config_changed(), state)
    conf = (out.get_container("nginx").get_filesystem(ctx) / "etc/nginx/nginx.conf").read_text()
    assert ("listen [::]:8080;" in conf) is (configured and pod_has_ipv6())
    assert "listen 8080;" in conf
