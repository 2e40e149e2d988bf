# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""nginx's version in `juju status`, asked only when the container (re)starts (issue 16)."""

from __future__ import annotations

import dataclasses

import ops
from coordinator_scenario import containers, state
from ops import testing

from coordinated_workers.testing import worker_relation


def _with_nginx_v(stderr: str = "nginx version: nginx/1.27.5\n") -> list[testing.Container]:
    nginx, exporter = containers()
    execs = {*nginx.execs, testing.Exec(["nginx", "-v"], stderr=stderr)}
    return [dataclasses.replace(nginx, execs=execs), exporter]


def _nginx_v_runs(ctx: testing.Context) -> int:
    return sum(1 for args in ctx.exec_history.get("nginx", []) if args.command == ["nginx", "-v"])


def test_pebble_ready_reports_the_nginx_version(ctx, kube):
    start = state(worker_relation("w", ["all"]), containers=_with_nginx_v())
    out = ctx.run(ctx.on.pebble_ready(start.get_container("nginx")), start)
    assert out.workload_version == "1.27.5"
    assert _nginx_v_runs(ctx) == 1


def test_other_hooks_do_not_ask(ctx, kube):
    start = state(worker_relation("w", ["all"]), containers=_with_nginx_v())
    out = ctx.run(ctx.on.config_changed(), start)
    ctx.run(ctx.on.update_status(), out)
    assert _nginx_v_runs(ctx) == 0
    assert out.workload_version == ""


def test_a_new_image_is_seen_on_upgrade(ctx, kube):
    start = state(worker_relation("w", ["all"]), containers=_with_nginx_v())
    first = ctx.run(ctx.on.start(), start)
    assert first.workload_version == "1.27.5"
    upgraded = dataclasses.replace(first, containers=_with_nginx_v("nginx version: nginx/1.29.0"))
    assert ctx.run(ctx.on.upgrade_charm(), upgraded).workload_version == "1.29.0"


def test_nginx_that_will_not_say_is_no_crash(ctx, kube):
    start = state(worker_relation("w", ["all"]))  # no mock for nginx -v: it exits 127
    out = ctx.run(ctx.on.pebble_ready(start.get_container("nginx")), start)
    assert not isinstance(out.unit_status, ops.ErrorStatus)
    assert out.workload_version == ""
