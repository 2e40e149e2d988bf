# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""``prometheus_remote_write`` v0, requirer side: where workers may push metrics.

Wire format (charm-relation-interfaces ``interfaces/prometheus_remote_write/v0``): each
provider unit able to receive writes puts ``remote_write`` in its unit databag, a JSON object
``{"url": "http://prometheus-0.prometheus-endpoints.cos.svc.cluster.local:9090/api/v1/write"}``.
The requirer is expected to push to every URL.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from coordinated_workers.telemetry import _databag

if TYPE_CHECKING:
    from collections.abc import Mapping

    import ops

logger = logging.getLogger(__name__)

REMOTE_WRITE_KEY = "remote_write"
"""Unit databag key holding ``{"url": ...}``."""


def remote_write_url(unit_bag: Mapping[str, str]) -> str | None:
    """The URL a provider unit published, or None if it has not published one yet.

    Raises:
        DatabagError: the ``remote_write`` value is malformed.
    """
    return _databag.url_field(unit_bag, REMOTE_WRITE_KEY)


class RemoteWriteRequirer:
    """Reads the remote-write URLs related on a ``prometheus_remote_write`` requirer endpoint."""

    def __init__(self, charm: ops.CharmBase, endpoint: str = "send-remote-write") -> None:
        self._charm = charm
        self._endpoint = endpoint

    def urls(self) -> _databag.Reading[list[str]]:
        """Every usable URL, sorted and without duplicates (units behind one ingress share one).

        A unit with malformed data is skipped and reported in `Reading.problems`.
        """
        by_unit = _databag.unit_urls(
            self._charm, self._endpoint, REMOTE_WRITE_KEY, "remote-write URL"
        )
        return _databag.Reading(sorted(set(by_unit.value.values())), by_unit.problems)
