# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Issue 11: remote data that crashed every hook or froze nginx, through the whole charm.

Each test starts from what a hostile or broken remote app can publish and checks the property
that rules out the kind: nothing remote reaches nginx.conf outside a strict grammar, nginx only
ever gets a config `nginx -t` accepted, and every log record and status can be handed to a hook
tool (no surrogate, no unbounded length).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

import ops
from coordinator_scenario import MODEL, containers, state
from ops import testing
from test_coordinator import mesh_relation, workers

from coordinated_workers.testing import read_provider_data, worker_relation
from service_mesh import STATUS_LIMIT

CONFIG = "etc/nginx/nginx.conf"
CHECK = ["nginx", "-t", "-c", "/etc/nginx/nginx.conf.candidate"]


def _loki(url: str, unit: int = 0) -> testing.Relation:
    return testing.Relation(
        "logging",
        interface="loki_push_api",
        remote_app_name="loki",
        remote_units_data={unit: {"endpoint": json.dumps({"url": url})}},
    )


def _remote_write(*urls: str) -> testing.Relation:
    return testing.Relation(
        "send-remote-write",
        interface="prometheus_remote_write",
        remote_app_name="prometheus",
        remote_units_data={
            n: {"remote_write": json.dumps({"url": url})} for n, url in enumerate(urls)
        },
    )


def _config(ctx: testing.Context, out: testing.State) -> str:
    return (out.get_container("nginx").get_filesystem(ctx) / CONFIG).read_text()


def _assert_hook_tools_can_take_it(ctx: testing.Context, out: testing.State) -> None:
    """What `juju-log` and `status-set` need: encodable text, and a status of bounded size."""
    for record in ctx.juju_log:
        record.message.encode("utf-8")
    message = out.unit_status.message
    message.encode("utf-8")
    assert message.isprintable()
    assert len(message) <= STATUS_LIMIT


def test_a_zone_id_in_a_loki_url_never_reaches_nginx_and_is_named_in_the_status(ctx, kube):
    hostile = _loki("http://[fe80::1%25$evil]:3100/loki/api/v1/push")

    out = ctx.run(ctx.on.config_changed(), state(*workers(), hostile))

    config = _config(ctx, out)
    assert "$evil" not in config
    assert f"worker-read-endpoints.{MODEL}.svc.cluster.local" in config
    assert isinstance(out.unit_status, ops.BlockedStatus)
    assert "not proxying loki loki/0" in out.unit_status.message
    cluster = next(r for r in out.relations if r.endpoint == "cluster")
    assert read_provider_data(cluster).loki_endpoints is None


def test_a_hostile_target_never_keeps_a_new_worker_app_out_of_nginx(ctx, kube):
    hostile = _loki("http://[fe80::1%25$evil]:3100/loki/api/v1/push")
    first = ctx.run(ctx.on.config_changed(), state(*workers(), hostile))
    newcomer = worker_relation("worker-more", ["read"], model=MODEL)

    out = ctx.run(
        ctx.on.relation_changed(newcomer),
        dataclasses.replace(first, relations={*first.relations, newcomer}),
    )

    assert f"worker-more-endpoints.{MODEL}.svc.cluster.local" in _config(ctx, out)


def test_colliding_remote_write_labels_give_distinct_locations(ctx, kube):
    first = "http://prom.a.svc:9090/api/v1/write"
    suffix = hashlib.sha256(first.encode()).hexdigest()[:8]
    urls = [first, "http://prom.b.svc:9090/api/v1/write", f"http://prom-{suffix}.c.svc:9090/x"]

    out = ctx.run(ctx.on.config_changed(), state(*workers(), _remote_write(*urls)))

    locations = [
        line.strip() for line in _config(ctx, out).splitlines() if "/proxy/remote-write/" in line
    ]
    locations = [line for line in locations if line.startswith("location")]
    assert len(locations) == 3
    assert len(set(locations)) == 3
    assert out.unit_status == ops.ActiveStatus()


def _refusing_nginx() -> testing.Container:
    nginx = containers()[0]
    refusing = testing.Exec(CHECK, return_code=1, stderr='[emerg] unknown "evil" variable')
    return dataclasses.replace(nginx, execs={refusing, *nginx.execs})


def test_a_config_nginx_refuses_leaves_the_running_one_in_place(ctx, kube, tmp_path):
    mount = {"conf": testing.Mount(location="/etc/nginx", source=tmp_path)}
    nginx, exporter = containers()
    healthy = ctx.run(
        ctx.on.config_changed(),
        state(*workers(), containers=[dataclasses.replace(nginx, mounts=mount), exporter]),
    )
    good = (tmp_path / "nginx.conf").read_text()
    running = healthy.get_container("nginx")
    refusing = dataclasses.replace(
        _refusing_nginx(),
        mounts=mount,
        layers=running.layers,
        service_statuses=running.service_statuses,
    )
    newcomer = worker_relation("worker-more", ["read"], model=MODEL)

    out = ctx.run(
        ctx.on.relation_changed(newcomer),
        dataclasses.replace(
            healthy,
            relations={*healthy.relations, newcomer},
            containers={refusing, *(c for c in healthy.containers if c.name != "nginx")},
        ),
    )

    assert (tmp_path / "nginx.conf").read_text() == good  # the last good config stays
    assert ["nginx", "-s", "reload"] not in [list(e.command) for e in ctx.exec_history["nginx"]]
    assert isinstance(out.unit_status, ops.BlockedStatus)
    assert "nginx -t refused the new config" in out.unit_status.message
    _assert_hook_tools_can_take_it(ctx, out)


def test_a_fresh_container_does_not_start_nginx_on_a_config_it_refuses(ctx, kube):
    exporter = containers()[1]

    out = ctx.run(
        ctx.on.config_changed(), state(*workers(), containers=[_refusing_nginx(), exporter])
    )

    nginx = out.get_container("nginx")
    assert nginx.service_statuses.get("nginx") != ops.pebble.ServiceStatus.ACTIVE
    assert not (nginx.get_filesystem(ctx) / CONFIG).exists()
    assert isinstance(out.unit_status, ops.BlockedStatus)


def test_a_lone_surrogate_in_a_worker_role_is_refused_and_named(ctx, kube):
    read, write = workers()
    # Pure ASCII on the wire; json.loads makes a lone surrogate of it.
    hostile = dataclasses.replace(read, remote_app_data={"role": '"read,\\ud800"'})

    out = ctx.run(ctx.on.config_changed(), state(hostile, write))

    _assert_hook_tools_can_take_it(ctx, out)
    logged = [r.message for r in ctx.juju_log if "worker-read" in r.message]
    assert any("role: holds text that is not valid Unicode" in message for message in logged)


def test_an_oversized_mesh_label_key_gives_a_status_of_bounded_size(ctx, kube):
    beacon = mesh_relation()
    hostile = dataclasses.replace(
        beacon,
        remote_app_data={"labels": json.dumps({"k" * 200_000: 1}), "mesh_type": '"istio"'},
    )

    out = ctx.run(ctx.on.config_changed(), state(*workers(), hostile))

    _assert_hook_tools_can_take_it(ctx, out)
    assert isinstance(out.unit_status, ops.BlockedStatus)
    assert out.unit_status.message.startswith("service-mesh: ignored mesh data")
    assert all(len(r.message) <= 4 * STATUS_LIMIT for r in ctx.juju_log)
