# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The Grafana datasource exchange through a whole coordinator hook (ops.testing)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import ops
import pytest
from ops import testing

from coordinated_workers import GrafanaDatasource
from coordinated_workers._coordinator import Coordinator
from coordinated_workers.testing import worker_relation
from service_mesh.testing import FakeKubernetes
from tests.support.coordinators import (
    coordinator_charm,
    kubernetes_with,
    minimal_coordinator_config,
)

OURS = [
    GrafanaDatasource("tempo", "t-2", "grafana-a"),
    GrafanaDatasource("tempo", "t-1", "grafana-b"),
]
META = {
    "name": "coordinator",
    "containers": {"nginx": {}, "nginx-prometheus-exporter": {}},
    "provides": {
        "cluster": {"interface": "cluster"},
        "send-datasource": {"interface": "grafana_datasource_exchange"},
    },
    "requires": {"receive-datasource": {"interface": "grafana_datasource_exchange"}},
}


ExchangeCoordinator = coordinator_charm(
    minimal_coordinator_config(role="a", datasources=lambda: OURS)
)


@pytest.fixture
def kube() -> Iterator[FakeKubernetes]:
    with kubernetes_with("coordinator", model="obs") as fake:
        yield fake


def _bag(*datasources: tuple[str, str, str]) -> dict[str, str]:
    entries = [{"type": t, "uid": u, "grafana_uid": g} for t, u, g in datasources]
    return {"datasources": json.dumps(entries)}


LOKI = _bag(("loki", "l-1", "grafana-a"))
MIMIR = _bag(("prometheus", "p-1", "grafana-b"), ("loki", "l-9", "grafana-z"))


def _state(*relations: testing.Relation, leader: bool = True, stored=()) -> testing.State:
    nginx = testing.Container(
        "nginx",
        can_connect=True,
        execs={testing.Exec(["nginx", "-t"]), testing.Exec(["nginx", "-s", "reload"])},
    )
    return testing.State(
        leader=leader,
        model=testing.Model(name="obs"),
        relations=[worker_relation("w", ["a"], model="obs"), *relations],
        containers=[nginx, testing.Container("nginx-prometheus-exporter", can_connect=True)],
        stored_states=list(stored),
    )


def _send(bag: dict[str, str] | None = None, **kw) -> testing.Relation:
    return testing.Relation(
        "send-datasource", remote_app_name="loki", remote_app_data=bag or {}, **kw
    )


def _receive(bag: dict[str, str] | None = None, **kw) -> testing.Relation:
    return testing.Relation(
        "receive-datasource", remote_app_name="mimir", remote_app_data=bag or {}, **kw
    )


def _ctx() -> testing.Context:
    return testing.Context(ExchangeCoordinator, meta=META, app_name="coordinator")


def test_the_leader_publishes_on_both_endpoints_sorted_by_uid(kube):
    ctx = _ctx()
    send, receive = _send(), _receive()
    out = ctx.run(ctx.on.config_changed(), _state(send, receive))
    expected = (
        '[{"type":"tempo","uid":"t-1","grafana_uid":"grafana-b"},'
        '{"type":"tempo","uid":"t-2","grafana_uid":"grafana-a"}]'
    )
    for relation in (send, receive):
        assert out.get_relation(relation.id).local_app_data == {"datasources": expected}


def test_a_steady_hook_writes_nothing(kube):
    ctx = _ctx()
    first = ctx.run(ctx.on.config_changed(), _state(_send(LOKI), _receive(MIMIR)))
    written: list[tuple[tuple[object, ...], dict[str, str]]] = []
    with ctx(ctx.on.update_status(), first) as manager:
        # Juju's edge: every bag write goes through the backend's relation-set.
        backend = manager.charm.model._backend
        real = backend.update_relation_data

        def recording(*args, **kwargs):
            written.append((args, kwargs))
            return real(*args, **kwargs)

        backend.update_relation_data = recording
        manager.run()
    assert written == []  # no bag at all, the cluster's included
    # the same spy sees the leader's first write
    with ctx(ctx.on.config_changed(), _state(_send(), _receive())) as manager:
        backend = manager.charm.model._backend
        real_first = backend.update_relation_data

        def recording_first(*args, **kwargs):
            written.append((args, kwargs))
            return real_first(*args, **kwargs)

        backend.update_relation_data = recording_first
        manager.run()
    exchange_writes = [
        kwargs["relation_name"] for _, kwargs in written if "datasource" in kwargs["relation_name"]
    ]
    assert sorted(exchange_writes) == ["receive-datasource", "send-datasource"]


def test_other_units_publish_nothing(kube):
    ctx = _ctx()
    send = _send()
    out = ctx.run(ctx.on.config_changed(), _state(send, leader=False))
    assert out.get_relation(send.id).local_app_data == {}


def test_received_and_correlated(kube):
    ctx = _ctx()
    with ctx(ctx.on.update_status(), _state(_send(LOKI), _receive(MIMIR))) as manager:
        manager.run()
        exchange = manager.charm.coordinator.datasource_exchange
        assert exchange is not None
        reading = exchange.received()
        assert [d.uid for d in reading.value] == ["l-1", "l-9", "p-1"]
        assert reading.problems == ()
        own_grafanas = {d.grafana_uid for d in OURS}
        assert exchange.correlated("loki", own_grafanas) == GrafanaDatasource(
            "loki", "l-1", "grafana-a"
        )
        prometheus = exchange.correlated("prometheus", own_grafanas)
        assert prometheus is not None and prometheus.uid == "p-1"
        # mimir's loki (l-9) lives in a Grafana our datasources are not in
        assert exchange.correlated("loki", own_grafanas, apps=["mimir"]) is None
        from_loki = exchange.correlated("loki", own_grafanas, apps=["loki"])
        assert from_loki is not None and from_loki.uid == "l-1"
        assert exchange.correlated("tempo", own_grafanas) is None


@pytest.mark.parametrize(
    "hostile",
    [
        {"datasources": "not json"},
        {"datasources": '[{"type": "loki", "uid": 1, "grafana_uid": "g"}]'},
        {"datasources": "{}"},
        {"datasources": "[" * 5000 + "]" * 5000},
        {"other": "x"},
    ],
)
def test_a_hostile_bag_is_reported_and_the_last_good_datasources_kept(kube, hostile):
    ctx = _ctx()
    good = _send(LOKI)
    healthy = ctx.run(ctx.on.config_changed(), _state(good, _receive(MIMIR)))
    assert healthy.unit_status == testing.ActiveStatus()
    bad = _send(hostile, id=good.id)
    state = _state(bad, _receive(MIMIR), stored=healthy.stored_states)
    with ctx(ctx.on.relation_changed(bad), state) as manager:
        out = manager.run()
        exchange = manager.charm.coordinator.datasource_exchange
        assert exchange is not None
        assert [d.uid for d in exchange.received().value] == ["l-1", "l-9", "p-1"]
    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert out.unit_status.message.startswith(f"datasource exchange: send-datasource:{good.id}")
    assert any("ignoring datasources" in r.message for r in ctx.juju_log)


def test_a_bag_never_good_contributes_nothing(kube):
    ctx = _ctx()
    out = ctx.run(ctx.on.config_changed(), _state(_send({"datasources": "x"}), _receive(MIMIR)))
    assert isinstance(out.unit_status, testing.BlockedStatus)


def test_a_remote_that_has_not_published_yet_is_no_problem(kube):
    ctx = _ctx()
    out = ctx.run(ctx.on.config_changed(), _state(_send(), _receive()))
    assert out.unit_status == testing.ActiveStatus()


class PlainCoordinator(ops.CharmBase):
    def __init__(self, framework: ops.Framework) -> None:
        super().__init__(framework)
        self.coordinator = Coordinator(self, minimal_coordinator_config(role="a"))


def test_without_the_endpoints_there_is_no_exchange_and_its_module_is_not_loaded(kube):
    meta = {k: v for k, v in META.items() if k != "requires"}
    meta["provides"] = {"cluster": {"interface": "cluster"}}
    ctx = testing.Context(PlainCoordinator, meta=meta, app_name="coordinator")
    with ctx(ctx.on.config_changed(), _state()) as manager:
        manager.run()
        assert manager.charm.coordinator.datasource_exchange is None


def test_importing_the_coordinator_does_not_load_the_exchange():
    code = (
        "import sys, coordinated_workers._coordinator;"
        "print('coordinated_workers._datasource_exchange' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
