# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""When a hook may skip Kubernetes: nothing to apply has changed since the last full apply.

Each unit remembers (in its stored state) a fingerprint of the labels and policies it last
applied without error: their ``service_mesh.databag.canonical_json`` text, small enough to keep
as is. A hook whose desired state has the same fingerprint needs no Kubernetes
request at all, which is what most hooks are (relation chatter, config of unrelated options).
Some events always check the cluster anyway, so changes made behind our back (a policy deleted
by hand, labels dropped by a refresh) are repaired within one update-status interval.
"""

from __future__ import annotations

import ops

VERIFYING_EVENTS: tuple[type[ops.EventBase], ...] = (
    ops.UpdateStatusEvent,
    ops.UpgradeCharmEvent,
    ops.LeaderElectedEvent,
    ops.StartEvent,
)
"""Events that always compare with the cluster, whatever the fingerprint says."""


def verifies(event: ops.EventBase) -> bool:
    """Whether `event` must check the cluster even when nothing we apply has changed."""
    return isinstance(event, VERIFYING_EVENTS)
