# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The coordinator's own containers forward their logs to Loki (issue 15).

Each hook that has Loki push URLs reads each container's plan once and adds a ``log-targets``
layer only when a target differs. Without Loki, a hook asks Pebble nothing unless this unit
set targets before (remembered in its stored state): those are then switched off, once.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import ops

from service_mesh import safe_text

from ._status import Problem, pebble_problem
from .telemetry.loki_push_api import forward_container_logs, topology_labels

if TYPE_CHECKING:
    from collections.abc import Mapping

logger = logging.getLogger(__name__)


class OwnLogForwarding(ops.Object):
    """Keeps Pebble ``log-targets`` of the charm's own containers pointing at Loki."""

    _state = ops.StoredState()

    def __init__(self, charm: ops.CharmBase) -> None:
        super().__init__(charm, "own-log-forwarding")
        self._state.set_default(forwarding=False)
        self._charm = charm

    def reconcile(
        self, containers: Mapping[str, bool], loki_urls: Mapping[str, str]
    ) -> list[Problem]:
        """Point each container's log targets at `loki_urls`; what went wrong.

        Args:
            containers: container name -> whether Pebble answered in this hook (others are
                left for a later hook).
            loki_urls: Loki unit -> push URL; empty switches forwarding off.
        """
        if not loki_urls and not self._state.forwarding:
            return []
        labels = topology_labels(self._charm)
        problems = [
            problem
            for name, reachable in containers.items()
            if reachable and (problem := self._forward(name, loki_urls, labels)) is not None
        ]
        # Off only once every container was switched off; after a failure, the next hook again.
        forwarding = bool(loki_urls) or bool(problems) or not all(containers.values())
        if forwarding != self._state.forwarding:
            self._state.forwarding = forwarding
        return problems

    def _forward(
        self, name: str, loki_urls: Mapping[str, str], labels: Mapping[str, str]
    ) -> Problem | None:
        try:
            forward_container_logs(
                self._charm.unit.get_container(name), loki_urls, labels, f"{name}-logging"
            )
        except ops.pebble.Error as e:
            logger.error("%s: log forwarding: %s", name, safe_text(str(e), 500))
            return pebble_problem(name, e)
        return None
