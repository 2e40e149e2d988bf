# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The consumer's `problem` can go straight into a status: escaped and at most STATUS_LIMIT long.

Issue 11 defect 4: a beacon publishing ``labels = {"k" * 200000: 1}`` had the validation
summary copy the key into the problem (200,096 characters), and ``status-set`` failed every
hook with ``OSError: Argument list too long``.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import ops
import pytest
from ops import testing

from service_mesh import STATUS_LIMIT, ServiceMeshConsumer
from service_mesh._consumer import decode_provider_data

META: dict[str, Any] = {
    "name": "app",
    "requires": {
        "service-mesh": {"interface": "service_mesh", "limit": 1},
        "require-cmr-mesh": {"interface": "cross_model_mesh"},
    },
    "provides": {"provide-cmr-mesh": {"interface": "cross_model_mesh"}},
}


class _App(ops.CharmBase):
    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.mesh = ServiceMeshConsumer(self, auto_join=False)
        framework.observe(self.on.collect_unit_status, self._on_collect_status)

    def _on_collect_status(self, event: ops.CollectStatusEvent) -> None:
        problem = self.mesh.problem
        event.add_status(ops.BlockedStatus(problem) if problem else ops.ActiveStatus())


@pytest.mark.parametrize(
    "labels",
    [
        {"k" * 200_000: 1},
        {"\ud800" * 50_000: 1},
        {"k" * 200_000: "x"},
        {"\ud800\n": "x" * 70},
    ],
)
def test_a_hostile_label_gives_a_problem_a_status_can_take(
    labels: dict[str, Any], caplog: pytest.LogCaptureFixture
):
    beacon = testing.Relation(
        "service-mesh",
        remote_app_name="beacon",
        remote_app_data={"labels": json.dumps(labels), "mesh_type": '"istio"'},
    )
    ctx = testing.Context(_App, meta=META, app_name="app")

    with caplog.at_level(logging.DEBUG):
        out = ctx.run(ctx.on.update_status(), testing.State(relations={beacon}))

    message = out.unit_status.message
    assert message.startswith("ignored mesh data from 'beacon'")
    assert message.isprintable()
    assert len(message) <= STATUS_LIMIT
    for record in ctx.juju_log:
        record.message.encode("utf-8")


def test_the_validation_summary_never_copies_a_whole_key():
    _, problem = decode_provider_data({"labels": json.dumps({"k" * 200_000: 1})}, "beacon")
    assert problem is not None
    assert len(problem) < 300
    assert "more characters" in problem


def test_a_cut_problem_is_logged_in_full_at_debug(caplog: pytest.LogCaptureFixture):
    from service_mesh._consumer import _status_sized

    problem = "ignored mesh data: " + "\x07" * 1000
    with caplog.at_level(logging.DEBUG, logger="service_mesh._consumer"):
        shown = _status_sized(problem)

    assert len(shown) <= STATUS_LIMIT
    assert shown.isprintable()
    assert [r.getMessage() for r in caplog.records] == [
        "mesh problem in full: ignored mesh data: " + "\\x07" * 1000
    ]
    assert _status_sized("short") == "short"
