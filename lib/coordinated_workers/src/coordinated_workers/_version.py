# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The workload's version in ``juju status``, asked for only when it can have changed.

Asking costs a process in the workload container (``nginx -v``, ``<binary> -version``), so it
is not done on every hook: only on ``start`` (a new pod, maybe a new image), ``upgrade-charm``
(a refresh, maybe with a new image) and the container's ``pebble-ready`` (the container has
(re)started). The version is set with ``application-version-set`` only when it differs from the
one this unit last set (stored state), so an unchanged version costs no hook tool either.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

import ops

from service_mesh import dispatched_event_name, safe_text

if TYPE_CHECKING:
    from collections.abc import Callable

logger = logging.getLogger(__name__)

_NGINX_VERSION = re.compile(r"nginx/([0-9A-Za-z.+~-]{1,64})")
_MAX_VERSION = 64  # what `juju status` shows usefully; a longer text is a probe's bug


def nginx_version(container: ops.Container) -> str | None:
    """What ``nginx -v`` prints (on stderr: ``nginx version: nginx/1.27.5``), or None.

    Raises:
        ops.pebble.Error: the exec failed (Pebble unreachable, nginx missing or failing).
    """
    process = container.exec(["nginx", "-v"], timeout=10)
    stdout, stderr = process.wait_output()
    match = _NGINX_VERSION.search(f"{stderr or ''}{stdout}")
    return match.group(1) if match else None


class VersionReporter(ops.Object):
    """Sets the unit's workload version from ``probe(container)`` on the events above."""

    _reported = ops.StoredState()

    def __init__(
        self,
        charm: ops.CharmBase,
        container: str,
        probe: Callable[[ops.Container], str | None],
    ) -> None:
        super().__init__(charm, f"version-{container}")
        self._charm = charm
        self._container = container
        self._probe = probe
        triggers = {
            "start": charm.on.start,
            "upgrade_charm": charm.on.upgrade_charm,
            f"{container.replace('-', '_')}_pebble_ready": charm.on[container].pebble_ready,
        }
        dispatched = dispatched_event_name()
        for name, bound in triggers.items():
            if dispatched is None or dispatched == name:  # observe only what can fire now
                charm.framework.observe(bound, self._on_trigger)

    def _on_trigger(self, _event: ops.EventBase) -> None:
        self.refresh()

    def refresh(self) -> str | None:
        """Ask the workload now; set the version if it changed. Never raises.

        Returns:
            The version found, or None if the probe found none or failed (logged).
        """
        try:
            version = self._probe(self._charm.unit.get_container(self._container))
        except (ops.pebble.Error, OSError, ValueError) as e:
            logger.info("workload version of %s unknown: %s", self._container, e)
            return None
        if not version:
            return None
        version = safe_text(version.strip(), _MAX_VERSION)
        # Stored state is loaded (and saved at commit) only in the hooks that probe.
        self._reported.set_default(version="")
        if version != self._reported.version:
            self._charm.unit.set_workload_version(version)
            self._reported.version = version
        return version
