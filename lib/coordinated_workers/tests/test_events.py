"""A reconcile runs on the hook Juju dispatched, and only that event is observed."""

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


def _seen(event: Any, state: testing.State) -> list[str]:
    ctx = testing.Context(_Sample, meta=META)
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


def _observed(monkeypatch: pytest.MonkeyPatch, dispatch_path: str | None) -> list[str]:
    """The events observe_reconcile_events subscribes to, for a given JUJU_DISPATCH_PATH."""
    observed: list[str] = []
    observe = ops.Framework.observe

    def counting(framework: ops.Framework, bound: Any, handler: Any) -> None:
        if getattr(handler, "__name__", "") == "_on_event":
            observed.append(bound.event_kind)
        observe(framework, bound, handler)

    monkeypatch.setattr(ops.Framework, "observe", counting)
    monkeypatch.setattr(_Rerouted, "dispatch_path", dispatch_path)
    ctx = testing.Context(_Rerouted, meta=META)
    ctx.run(ctx.on.update_status(), testing.State())
    return observed


def test_only_the_dispatched_event_is_observed(monkeypatch: pytest.MonkeyPatch):
    assert _observed(monkeypatch, "hooks/cluster-relation-changed") == ["cluster_relation_changed"]
    assert _observed(monkeypatch, "hooks/workload-pebble-ready") == ["workload_pebble_ready"]


def test_an_excluded_dispatched_event_is_not_observed(monkeypatch: pytest.MonkeyPatch):
    assert _observed(monkeypatch, "hooks/remove") == []


@pytest.mark.parametrize("dispatch_path", [None, "", "actions/backup", "hooks/no-such-event"])
def test_without_a_known_hook_every_eligible_event_is_observed(
    monkeypatch: pytest.MonkeyPatch, dispatch_path: str | None
):
    observed = _observed(monkeypatch, dispatch_path)

    assert {"config_changed", "cluster_relation_changed", "workload_pebble_ready"} <= set(observed)
    assert not {"remove", "stop", "collect_unit_status"} & set(observed)
