# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Observing only the hook Juju is running: each hook is a fresh process with one event."""

from __future__ import annotations

import os


def dispatched_event_name() -> str | None:
    """The ops event name of the hook Juju is running (``JUJU_DISPATCH_PATH``), as ops derives it.

    None when unknown: no dispatch path (an old Juju, a test harness) or an action.
    """
    path = os.environ.get("JUJU_DISPATCH_PATH", "")
    if not path.startswith("hooks/"):
        return None
    return path.removeprefix("hooks/").replace("-", "_")
