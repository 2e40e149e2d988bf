"""Which Juju events trigger a reconcile."""

from __future__ import annotations

from typing import TYPE_CHECKING

import ops

if TYPE_CHECKING:
    from collections.abc import Callable

# Events with their own meaning: collect-status reports, remove/stop tear down, a failing
# Pebble check must not restart a workload that is still recovering (upstream
# cos-coordinated-workers#159), secret removal/expiry concern only the secret's owner.
_EXCLUDED: tuple[type[ops.EventBase], ...] = (
    ops.CollectStatusEvent,
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
) -> None:
    """Observe every hook event of `charm` that can change desired state with `handler`."""
    for bound in charm.on.events().values():
        event_type = bound.event_type
        if issubclass(event_type, ops.HookEvent) and not issubclass(event_type, _EXCLUDED):
            charm.framework.observe(bound, handler)
