# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Issue 11 on the worker: whatever the coordinator's bag holds, status and logs stay sendable.

``status-set`` and ``juju-log`` take their text as an argument: a lone surrogate cannot be
encoded and a value of hundreds of kilobytes is refused by the kernel, and either fails the
hook. The worker must show such data escaped and capped.
"""

from __future__ import annotations

import ops
from test_worker import published
from worker_scenario import state

from coordinated_workers.testing import coordinator_relation
from service_mesh import STATUS_LIMIT


def _assert_hook_tools_can_take_it(ctx, out) -> None:
    for record in ctx.juju_log:
        record.message.encode("utf-8")
    message = out.unit_status.message
    assert message.isprintable()
    assert len(message) <= STATUS_LIMIT


def test_an_oversized_tracing_receiver_gives_a_status_of_bounded_size(ctx, kube):
    hostile = published(charm_tracing_receivers={"otlp_http": "x" * 200_000})

    out = ctx.run(ctx.on.config_changed(), state(coordinator_relation(hostile)))

    _assert_hook_tools_can_take_it(ctx, out)
    assert isinstance(out.unit_status, ops.BlockedStatus)
    assert out.unit_status.message.startswith(
        "cluster: coordinator data from coordinator-k8s ignored: charm_tracing_receivers:"
    )


def test_a_lone_surrogate_in_a_tracing_receiver_is_refused_and_named(ctx, kube):
    hostile = published(charm_tracing_receivers={"otlp_http": "\ud800" * 1000})

    out = ctx.run(ctx.on.config_changed(), state(coordinator_relation(hostile)))

    _assert_hook_tools_can_take_it(ctx, out)
    assert "holds text that is not valid Unicode" in out.unit_status.message
