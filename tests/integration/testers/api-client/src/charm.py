#!/usr/bin/env python3
# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Test-only charm: an application related (or not) to the coordinator's `api` endpoint.

It runs no workload. The integration tests make HTTP requests from its charm container with
`juju exec`, to check which callers the service mesh lets through to the coordinator's API.
"""

import ops


class ApiClientCharm(ops.CharmBase):
    """Stays active; its only role is to exist as a distinct, meshable application."""

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        framework.observe(self.on.collect_unit_status, self._on_collect_unit_status)

    def _on_collect_unit_status(self, event: ops.CollectStatusEvent) -> None:
        related = bool(self.model.relations["api"])
        event.add_status(ops.ActiveStatus("related to api" if related else "not related to api"))


if __name__ == "__main__":  # pragma: nocover
    ops.main(ApiClientCharm)
