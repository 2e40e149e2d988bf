# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Running one library object inside a hook, for tests that need no charm around it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import ops
from ops import testing

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

T = TypeVar("T")


def run_in_hook(
    meta: Mapping[str, Any], state: testing.State, action: Callable[[ops.CharmBase], T]
) -> tuple[testing.State, T]:
    """Call `action` on a bare charm with `meta` inside an update-status hook.

    Returns the output state and what `action` returned, so a test sees both what a
    requirer read and what it wrote, with databags as Juju shows them.
    """
    results: list[T] = []

    class _Charm(ops.CharmBase):
        def __init__(self, framework: ops.Framework):
            super().__init__(framework)
            framework.observe(self.on.update_status, self._on_update_status)

        def _on_update_status(self, _: ops.EventBase) -> None:
            results.append(action(self))

    ctx = testing.Context(_Charm, meta=dict(meta))
    out = ctx.run(ctx.on.update_status(), state)
    return out, results[0]
