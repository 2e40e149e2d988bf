# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Whether a Pebble plan already holds a layer: the one comparison every workload step makes.

Adding a layer that is already in the plan would restart nothing, but it costs a Pebble call
and makes ``replan`` restart the services; comparing first keeps steady-state hooks silent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Mapping

    import ops


def plan_contains(plan: ops.pebble.Plan, layer: ops.pebble.Layer) -> bool:
    """Whether every service, check and log target of ``layer`` is already in ``plan`` as is."""
    for name, service in layer.services.items():
        current = plan.services.get(name)
        if current is None or _comparable(current) != _comparable(service):
            return False
    for name, check in layer.checks.items():
        current_check = plan.checks.get(name)
        if current_check is None or _comparable(current_check) != _comparable(check):
            return False
    for name, target in layer.log_targets.items():
        current_target = plan.log_targets.get(name)
        if current_target is None or _comparable(current_target) != _comparable(target):
            return False
    return True


class _Dumpable(Protocol):
    """What a plan's services, checks and log targets have in common."""

    def to_dict(self) -> Mapping[str, object]: ...


def _comparable(item: _Dumpable) -> dict[str, object]:
    # The combined plan may or may not echo `override`; it says nothing about the item.
    return {key: value for key, value in item.to_dict().items() if key != "override"}
