# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""A reconcile runs on the hook Juju dispatched; events with their own meaning never reconcile."""

from __future__ import annotations

import os
from typing import Any

import ops
import pytest
from ops import testing

from coordinated_workers._events import observe_reconcile_events

META: dict[str, Any] = {
    "name": "sample",
    "containers": {"workload": {"resource": "image"}},
    "requires": {"cluster": {"interface": "cluster"}},
}


class _Sample(ops.CharmBase):
    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.seen: list[str] = []
        observe_reconcile_events(self, self._on_event)

    def _on_event(self, event: ops.EventBase) -> None:
        self.seen.append(type(event).__name__)


def _seen(event: Any, state: testing.State, ctx: testing.Context[Any] | None = None) -> list[str]:
    ctx = ctx or testing.Context(_Sample, meta=META)
    with ctx(event, state) as manager:
        manager.run()
        return manager.charm.seen


def test_each_dispatched_hook_reaches_the_handler_once():
    relation = testing.Relation("cluster")
    container = testing.Container("workload", can_connect=True)
    state = testing.State(relations=[relation], containers=[container])
    ctx = testing.Context(_Sample, meta=META)

    assert _seen(ctx.on.config_changed(), state) == ["ConfigChangedEvent"]
    assert _seen(ctx.on.relation_changed(relation), state) == ["RelationChangedEvent"]
    assert _seen(ctx.on.relation_departed(relation, remote_unit=1), state) == [
        "RelationDepartedEvent"
    ]
    assert _seen(ctx.on.pebble_ready(container), state) == ["PebbleReadyEvent"]
    assert _seen(ctx.on.update_status(), state) == ["UpdateStatusEvent"]


@pytest.mark.parametrize("event", ["remove", "stop", "collect_unit_status"])
def test_events_with_their_own_meaning_do_not_reconcile(event: str):
    ctx = testing.Context(_Sample, meta=META)

    assert _seen(getattr(ctx.on, event)(), testing.State()) == []


class _Rerouted(_Sample):
    """Builds as if Juju had set JUJU_DISPATCH_PATH to `dispatch_path` (None: not set)."""

    dispatch_path: str | None = None

    def __init__(self, framework: ops.Framework):
        os.environ.pop("JUJU_DISPATCH_PATH")  # ops.testing restores the environment after
        if self.dispatch_path is not None:
            os.environ["JUJU_DISPATCH_PATH"] = self.dispatch_path
        super().__init__(framework)


def _rerouted(dispatch_path: str | None) -> type[_Rerouted]:
    return type("_RoutedSample", (_Rerouted,), {"dispatch_path": dispatch_path})


@pytest.mark.parametrize("dispatch_path", [None, "", "actions/backup", "hooks/no-such-event"])
def test_without_a_known_hook_every_eligible_event_reaches_the_handler(dispatch_path: str | None):
    # Which events are observed per hook (only the dispatched one) is a benchmark figure
    # (benchmarks/observers.py); without a known hook the handler must still get every event.
    relation = testing.Relation("cluster")
    container = testing.Container("workload", can_connect=True)
    state = testing.State(relations=[relation], containers=[container])
    ctx = testing.Context(_rerouted(dispatch_path), meta=META)

    assert _seen(ctx.on.config_changed(), state, ctx) == ["ConfigChangedEvent"]
    assert _seen(ctx.on.relation_changed(relation), state, ctx) == ["RelationChangedEvent"]
    assert _seen(ctx.on.pebble_ready(container), state, ctx) == ["PebbleReadyEvent"]
    for event in (ctx.on.remove(), ctx.on.stop(), ctx.on.collect_unit_status()):
        assert _seen(event, state, ctx) == []
