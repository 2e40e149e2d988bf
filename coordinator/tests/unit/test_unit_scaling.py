# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Scaling a worker app by units reloads nothing; a worker app joining does (no wall clock)."""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING

import ops
from coordinator_scenario import MODEL, containers
from ops import testing

from coordinated_workers.testing import worker_relation

if TYPE_CHECKING:
    from pathlib import Path

    from service_mesh.testing import FakeKubernetes

RELOAD = ["nginx", "-s", "reload"]


def _mesh() -> testing.Relation:
    return testing.Relation(
        "service-mesh",
        interface="service_mesh",
        remote_app_name="istio-beacon-k8s",
        remote_app_data={
            "labels": json.dumps({"istio.io/dataplane-mode": "ambient"}),
            "mesh_type": json.dumps("istio"),
        },
        limit=1,
    )


def _state(tmp_path: Path, relations: list[testing.RelationBase]) -> testing.State:
    """nginx's /etc/nginx is a host directory, so nginx.conf survives from one run to the next
    (ops.testing wipes unmounted container files between runs)."""
    nginx, exporter = containers()
    mounted = dataclasses.replace(
        nginx, mounts={"conf": testing.Mount(location="/etc/nginx", source=tmp_path)}
    )
    return testing.State(
        leader=True,
        model=testing.Model(name=MODEL),
        containers=[mounted, exporter],
        relations=relations,
    )


def _reloads(ctx: testing.Context) -> int:
    return sum(1 for e in ctx.exec_history.get("nginx", []) if list(e.command) == RELOAD)


def _settled(ctx: testing.Context, kube: FakeKubernetes, tmp_path: Path) -> testing.State:
    reader = worker_relation("worker-read", ["read"], units=2, model=MODEL)
    writer = worker_relation("worker-write", ["write"], units=1, model=MODEL)
    out = ctx.run(ctx.on.config_changed(), _state(tmp_path, [reader, writer, _mesh()]))
    ctx.exec_history.clear()
    kube.clear_requests()
    return out


def _scale_reader(out: testing.State, units: int) -> tuple[testing.State, testing.Relation]:
    reader = next(
        r
        for r in out.relations
        if isinstance(r, testing.Relation) and r.remote_app_name == "worker-read"
    )
    wanted = worker_relation("worker-read", ["read"], units=units, model=MODEL)
    scaled = dataclasses.replace(reader, remote_units_data=dict(wanted.remote_units_data))
    others = [r for r in out.relations if r.id != reader.id]
    return dataclasses.replace(out, relations=[*others, scaled]), scaled


def test_a_unit_joining_or_leaving_writes_and_reloads_nothing(ctx, kube, tmp_path):
    out = _settled(ctx, kube, tmp_path)
    grown, reader = _scale_reader(out, 3)
    ctx.run(ctx.on.relation_joined(reader, remote_unit=2), grown)
    shrunk, reader = _scale_reader(out, 1)
    ctx.run(ctx.on.relation_departed(reader, remote_unit=1, departing_unit=1), shrunk)
    assert _reloads(ctx) == 0
    assert [r for r in kube.clear_requests() if r["method"] != "GET"] == []


def test_a_worker_app_joining_reloads_nginx_and_adds_its_policies(ctx, kube, tmp_path):
    out = _settled(ctx, kube, tmp_path)
    extra = worker_relation("worker-extra", ["read"], units=1, model=MODEL)
    ctx.run(
        ctx.on.relation_joined(extra, remote_unit=0),
        dataclasses.replace(out, relations=[*out.relations, extra]),
    )
    assert _reloads(ctx) == 1
    patched = [r["path"] for r in kube.clear_requests() if r["method"] == "PATCH"]
    assert sum("authorizationpolicies" in path for path in patched) == 2


def test_a_config_pushed_but_never_reloaded_is_reloaded_by_the_next_hook(ctx, kube, tmp_path):
    # Pebble fails between the push and the reload (here the reload cannot be run: the
    # container has no `nginx -s reload` for this hook): the file already looks applied to the
    # next hook, so only the coordinator's record of the pending reload gets nginx to load it.
    out = _settled(ctx, kube, tmp_path)
    extra = worker_relation("worker-extra", ["read"], units=1, model=MODEL)
    grown = dataclasses.replace(out, relations=[*out.relations, extra])
    nginx = grown.get_container("nginx")
    without_reload = dataclasses.replace(nginx, execs={testing.Exec(["nginx", "-t"])})
    others = [c for c in grown.containers if c.name != "nginx"]

    out = ctx.run(
        ctx.on.relation_joined(extra, remote_unit=0),
        dataclasses.replace(grown, containers=[without_reload, *others]),
    )
    assert isinstance(out.unit_status, ops.WaitingStatus)
    assert out.unit_status.message.startswith("nginx: Pebble failed (")
    assert _reloads(ctx) == 0

    restored = dataclasses.replace(out.get_container("nginx"), execs=nginx.execs)
    others = [c for c in out.containers if c.name != "nginx"]
    out = ctx.run(ctx.on.update_status(), dataclasses.replace(out, containers=[restored, *others]))
    assert _reloads(ctx) == 1
    ctx.run(ctx.on.update_status(), out)
    assert _reloads(ctx) == 1, "once done, the reload is not repeated"
