# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Observing only the hook Juju is running: each hook is a fresh process with one event."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    import ops


def dispatched_event_name() -> str | None:
    """The ops event name of the hook Juju is running (``JUJU_DISPATCH_PATH``), as ops derives it.

    None when unknown: no dispatch path (an old Juju, a test harness) or an action.
    """
    path = os.environ.get("JUJU_DISPATCH_PATH", "")
    if not path.startswith("hooks/"):
        return None
    return path.removeprefix("hooks/").replace("-", "_")


def observe_if_dispatched(
    framework: ops.Framework, event: ops.BoundEvent, handler: Callable[[Any], None]
) -> None:
    """``framework.observe``, skipped when Juju is running another hook.

    ``framework.observe`` inspects the handler's signature on every call, which adds up in a
    hook that sets up a dozen observers and then sees one event.
    """
    dispatched = dispatched_event_name()
    if dispatched is None or event.event_kind == dispatched:
        framework.observe(event, handler)
