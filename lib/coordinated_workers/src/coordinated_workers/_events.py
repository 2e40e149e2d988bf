# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Which Juju events trigger a reconcile."""

from __future__ import annotations

from typing import TYPE_CHECKING

import ops

# The mesh consumer's rule too: one implementation of how ops names the dispatched hook.
from service_mesh import dispatched_event_name

if TYPE_CHECKING:
    from collections.abc import Callable

# Events with their own meaning: collect-status reports, remove/stop tear down, a failing
# Pebble check must not restart a workload that is still recovering,
# secret removal/expiry concern only the secret's owner.
_EXCLUDED: tuple[type[ops.EventBase], ...] = (
    ops.CollectStatusEvent,
    ops.CollectMetricsEvent,  # a restricted context: no leadership, no relation data
    ops.PebbleCheckFailedEvent,
    ops.RemoveEvent,
    ops.StopEvent,
    ops.SecretRemoveEvent,
    ops.SecretExpiredEvent,
    ops.SecretRotateEvent,
    ops.ActionEvent,
)


def observe_reconcile_events(
    charm: ops.CharmBase, handler: Callable[[ops.EventBase], None]
) -> str | None:
    """Observe, with `handler`, the hook events of `charm` that can change desired state.

    Each hook is a fresh process that handles one Juju event, and a reconcile computes
    everything from scratch whichever event started it. So when Juju names the event
    (``JUJU_DISPATCH_PATH``, e.g. ``hooks/cluster-relation-changed``), only that one is
    observed: ``framework.observe`` inspects the handler's signature on every call, so
    observing every event would cost each hook work in proportion to the charm's events.
    Without a dispatch path (an old Juju, a test harness) every eligible event is observed.

    Returns:
        The hook Juju named, or None for an action or without a dispatch path: then the
        caller observes its actions too (a hook never needs them).
    """
    dispatched = dispatched_event_name()
    named = getattr(charm.on, dispatched, None) if dispatched else None
    # Listing every event builds ~80 bound events: only done when Juju did not name one.
    candidates = [named] if isinstance(named, ops.BoundEvent) else charm.on.events().values()
    for bound in candidates:
        event_type = bound.event_type
        if issubclass(event_type, ops.HookEvent) and not issubclass(event_type, _EXCLUDED):
            charm.framework.observe(bound, handler)
    return dispatched
