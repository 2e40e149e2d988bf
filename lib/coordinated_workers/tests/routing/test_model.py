# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The routing model: what it refuses when built, how it renders, and the mesh policies."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import pytest

from coordinated_workers._nginx import NginxConfigError, NginxInputs, RoleRoute, render
from coordinated_workers._routing import (
    ClientHeader,
    Extra,
    Location,
    Match,
    Protocol,
    Rewrite,
    RoutingError,
    Server,
    mesh_policies,
)
from service_mesh import AppPolicy, Endpoint
from tests.support.live_nginx import nginx_t, runtime_dir, write_config

if TYPE_CHECKING:
    import pathlib

ROUTES = (RoleRoute("/read", "read", 8080), RoleRoute("/write", "write", 8080))


def _inputs(**overrides: Any) -> NginxInputs:
    fields: dict[str, Any] = {
        "model": "test",
        "api_port": 8080,
        "routes": (),
        "workers_by_role": {"read": ["reader"], "write": ["writer"]},
        "resolver": "10.152.183.10",
        "worker_apps": ["reader", "writer"],
    }
    fields.update(overrides)
    return NginxInputs(**fields)


def _location_block(text: str, head: str) -> list[str]:
    lines = text.splitlines()
    start = lines.index(f"        location {head} {{")
    end = lines.index("        }", start)
    return [line.strip() for line in lines[start + 1 : end]]


# --- RoleRoute on the new model -------------------------------------------------------------


def test_role_routes_render_as_their_locations_on_the_api_server():
    with_routes = render(_inputs(routes=ROUTES)).text
    locations = tuple(route.to_location() for route in ROUTES)
    declared = Server(8080, locations, health_check=True)
    assert render(_inputs(servers=[declared])).text == with_routes


def test_role_route_is_a_prefix_location_that_strips_its_prefix():
    assert RoleRoute("/read", "read", 8080).to_location() == Location(
        "/read/", "read", 8080, rewrite=Rewrite("^/read/(.*)$", "/$1")
    )
    assert RoleRoute("/", "read", 8080).to_location().rewrite is None


def test_routes_join_a_declared_api_server_after_its_own_locations():
    own = Location("/ready", "read", 8080, Match.EXACT)
    text = render(_inputs(routes=ROUTES, servers=[Server(8080, (own,))])).text
    heads = [line.strip() for line in text.splitlines() if line.startswith("        location")]
    assert heads[:3] == ["location = /ready {", "location /read/ {", "location /write/ {"]
    assert "location = / {" not in heads  # the declared server has no health check


# --- rendering ------------------------------------------------------------------------------


def test_match_kinds_render_as_nginx_modifiers():
    server = Server(
        9000,
        (
            Location("/a", "read", 1),
            Location("/b", "read", 1, Match.EXACT),
            Location("/c", "read", 1, Match.PREFIX_NO_REGEX),
            Location("^/d/[0-9]+$", "read", 1, Match.REGEX),
        ),
    )
    text = render(_inputs(servers=[server])).text
    for head in ("/a", "= /b", "^~ /c", "~ '^/d/[0-9]+$'"):
        assert f"        location {head} {{" in text


def test_a_path_is_preserved_unless_a_rewrite_is_asked_for():
    server = Server(
        9000,
        (Location("/keep", "read", 1), Location("/old", "read", 1, rewrite=Rewrite.to("/new"))),
    )
    text = render(_inputs(servers=[server])).text
    assert not any(line.startswith("rewrite") for line in _location_block(text, "/keep"))
    assert "rewrite ^ /new break;" in _location_block(text, "/old")


def test_location_settings_render_in_order_after_the_proxy():
    location = Location(
        "/push",
        "write",
        3100,
        headers={"X-Scope-OrgID": ClientHeader("X-Scope-OrgID", "anonymous"), "X-A": "b"},
        client_max_body_size="16m",
        read_timeout="600s",
        send_timeout="30s",
        buffering=False,
        extra=(Extra("proxy_next_upstream", ("error", "timeout")),),
    )
    text = render(_inputs(servers=[Server(3100, (location,))])).text
    assert _location_block(text, "/push") == [
        "set $backend http://writer-endpoints.test.svc.cluster.local:3100;",
        "proxy_pass $backend;",
        "proxy_http_version 1.1;",
        "proxy_set_header Connection '';",
        "proxy_set_header X-A b;",
        "proxy_set_header X-Scope-OrgID $http_x_scope_orgid_or_2f183a4e;",
        "client_max_body_size 16m;",
        "proxy_read_timeout 600s;",
        "proxy_send_timeout 30s;",
        "proxy_buffering off;",
        "proxy_request_buffering off;",
        "proxy_next_upstream error timeout;",
    ]
    assert (
        "    map $http_x_scope_orgid $http_x_scope_orgid_or_2f183a4e {\n"
        "        '' anonymous;\n"
        "        default $http_x_scope_orgid;\n"
        "    }\n"
    ) in text


def test_server_headers_reach_every_location_and_a_location_header_wins():
    server = Server(
        3100,
        (
            Location("/a", "read", 1),
            Location("/b", "read", 1, headers={"x-team": "b", "Connection": "upgrade"}),
        ),
        headers={"X-Team": "a", "X-Env": "prod", "connection": "close"},
    )
    text = render(_inputs(servers=[server])).text
    assert [line for line in _location_block(text, "/a") if "header" in line] == [
        "proxy_set_header connection close;",
        "proxy_set_header X-Env prod;",
        "proxy_set_header X-Team a;",
    ]
    assert [line for line in _location_block(text, "/b") if "header" in line] == [
        "proxy_set_header Connection upgrade;",
        "proxy_set_header X-Env prod;",
        "proxy_set_header x-team b;",
    ]


def test_grpc_server_listens_http2_and_uses_grpc_pass_and_grpc_settings():
    location = Location("/", "read", 9095, headers={"X-Scope-OrgID": "t"}, read_timeout="1h")
    text = render(_inputs(servers=[Server(9095, (location,), protocol=Protocol.GRPC)])).text
    assert "        listen 9095 http2;\n        listen [::]:9095 http2;\n" in text
    assert _location_block(text, "/") == [
        "set $backend grpc://reader-endpoints.test.svc.cluster.local:9095;",
        "grpc_pass $backend;",
        "grpc_set_header X-Scope-OrgID t;",
        "grpc_read_timeout 1h;",
    ]


def test_several_roles_pool_their_apps_and_nobody_gives_a_503_naming_them():
    pooled = Location("/ring", ("write", "read"), 3100, Match.EXACT)
    nobody = Location("/x", ("backend", "ruler"), 3100)
    text = render(_inputs(servers=[Server(3100, (pooled, nobody))])).text
    assert "    split_clients $request_id $roles_read_write_host {" in text
    assert "set $backend http://$roles_read_write_host:3100;" in _location_block(text, "= /ring")
    assert "return 503 'no worker app serves roles backend, ruler\\n';" in _location_block(
        text, "/x"
    )


def test_the_telemetry_proxy_joins_a_declared_server_on_its_port():
    server = Server(3100, (Location("/loki/api/v1/push", "write", 3100, Match.EXACT),))
    text = render(_inputs(servers=[server], proxy_port=3100)).text
    assert text.count("    server {") == 3  # 8080 (health), 3100 (API and proxy), status
    assert "        location = /loki/api/v1/push {" in text
    assert "location ~ '^/proxy/worker/" in text


def test_kitchen_sink_passes_nginx_t(nginx_binary: str, tmp_path: pathlib.Path):
    tenant = ClientHeader("X-Scope-OrgID", "anonymous")
    servers = [
        Server(
            3100,
            (
                Location(
                    "/loki/api/v1/push", "write", 3100, Match.EXACT, client_max_body_size="0"
                ),
                Location("/loki/api/v1/rules", "read", 3100, Match.PREFIX_NO_REGEX),
                Location("^/loki/api/", "read", 3100, Match.REGEX, buffering=False),
                Location("/api/v1/rules", "read", 3100, Match.EXACT, Rewrite.to("/x/rules")),
                Location("/ring", ("read", "write"), 3100, Match.EXACT),
                Location(
                    "/nobody", "backend", 3100, extra=(Extra("add_header", ("X-By", "$host")),)
                ),
                Location(
                    "/strip/",
                    "read",
                    3100,
                    rewrite=Rewrite.strip_prefix("/strip/"),
                    headers={"Upgrade": "$http_upgrade", "Connection": "upgrade"},
                ),
            ),
            health_check=True,
            headers={"X-Scope-OrgID": tenant},
        ),
        Server(
            9095,
            (Location("/", "write", 9095, headers={"X-Scope-OrgID": tenant}, send_timeout="5s"),),
            protocol=Protocol.GRPC,
        ),
    ]
    by_role = {"read": ["r1", "r2"], "write": ["w1"]}
    text = render(
        _inputs(
            servers=servers,
            routes=ROUTES,
            workers_by_role=by_role,
            proxy_port=3100,
            runtime_dir=runtime_dir(tmp_path),
        )
    ).text
    result = nginx_t(nginx_binary, write_config(tmp_path, text))
    assert result.returncode == 0, result.stderr + text


# --- refused when built ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Location("read", "read", 1), "invalid location path"),
        (lambda: Location("/a b", "read", 1), "invalid location path"),
        (lambda: Location("/a", "Read", 1), "invalid roles"),
        (lambda: Location("/a", (), 1), "invalid roles"),
        (lambda: Location("/a", "read", 0), "is not a port"),
        (lambda: Location("/a", "read", 65536), "is not a port"),
        (lambda: Location("/a", "read", 1, Match.REGEX), "must start with '^'"),
        (lambda: Location("^/a$|^/b", "read", 1, Match.REGEX), "only as the final anchor"),
        (lambda: Location("^/a{2}", "read", 1, Match.REGEX), "no spaces, quotes, braces"),
        (lambda: Location("^/a(", "read", 1, Match.REGEX), "missing"),
        (lambda: Location("^/a", "read", 1, Match.REGEX, relations=("x",)), "Istio paths"),
        (lambda: Location("/a", "read", 1, headers={"Bad Name": "x"}), "invalid header name"),
        (lambda: Location("/a", "read", 1, headers={"X": "$evil"}), "$evil is not allowed"),
        (lambda: Location("/a", "read", 1, headers={"X": "${evil}"}), "$evil is not allowed"),
        (lambda: Location("/a", "read", 1, headers={"X": "a\nb"}), "control characters"),
        (lambda: Location("/a", "read", 1, client_max_body_size="1 m"), "invalid body size"),
        (lambda: Location("/a", "read", 1, read_timeout="soon"), "invalid timeout"),
        (lambda: Extra("proxy_pass", ("http://evil",)), "not allowed as an extra"),
        (lambda: Extra("set", ("$x", "1")), "not allowed as an extra"),
        (
            lambda: Extra(
                "Bad",
            ),
            "not allowed as an extra",
        ),
        (lambda: Extra("add_header", ("X", "$document_root")), "is not allowed"),
        (lambda: Rewrite("/a", "/b"), "must start with '^'"),
        (lambda: Rewrite("^/a", "b"), "invalid rewrite replacement"),
        (lambda: Rewrite("^/a", "/$host"), "may only use $1-$9"),
        (lambda: Rewrite.to("/a b"), "invalid rewrite target"),
        (lambda: ClientHeader("X Y", "a"), "invalid header name"),
        (lambda: ClientHeader("X", "$a"), "invalid default"),
        (lambda: Server(0), "is not a port"),
        (lambda: Server(1, headers={"X": "$evil"}), "$evil is not allowed"),
        (
            lambda: Server(1, (Location("/", "a", 1, Match.EXACT),), health_check=True),
            "duplicate locations",
        ),
        (
            lambda: Server(1, (Location("/a", "a", 1), Location("/a", "b", 2))),
            "duplicate locations",
        ),
        (lambda: Server(1, protocol=Protocol.GRPC, health_check=True), "no HTTP health check"),
        (
            lambda: Server(1, (Location("/", "a", 1, rewrite=Rewrite.to("/b")),), Protocol.GRPC),
            "no rewrite or buffering",
        ),
        (
            lambda: Server(1, (Location("/", "a", 1, relations=("x",)),), Protocol.GRPC),
            "mesh access is per port",
        ),
    ],
)
def test_mistakes_are_refused_when_built(build: Any, message: str):
    with pytest.raises(RoutingError, match=None) as refused:
        build()
    assert message in str(refused.value)


@pytest.mark.parametrize(
    "build",
    [
        lambda: Location("/x\n", "a", 1),
        lambda: Location("/x", "a\n", 1),
        lambda: Location("/x", "a", 1, client_max_body_size="1m\n"),
        lambda: Location("/x", "a", 1, read_timeout="5s\n"),
        lambda: Location("/x", "a", 1, rewrite=Rewrite.to("/y\n")),
        lambda: Extra("gzip\n"),
        lambda: ClientHeader("X-Scope-OrgID\n", "anonymous"),
        lambda: Server(1, headers={"X\n": "y"}),
    ],
)
def test_a_trailing_newline_is_refused_whole_names_are_matched(build: Any):
    """A ``$``-anchored ``re.match`` accepts ``"x\\n"``; nginx would get a broken line."""
    with pytest.raises(RoutingError):
        build()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"servers": [Server(9000), Server(9000)]}, "two servers on port 9000"),
        (
            {"routes": ROUTES, "servers": [Server(8080, (Location("/read/", "read", 1),))]},
            "duplicate locations",
        ),
        ({"routes": ROUTES, "servers": [Server(8080, protocol=Protocol.GRPC)]}, "HTTP server"),
        ({"proxy_port": 9000, "servers": [Server(9000, protocol=Protocol.GRPC)]}, "gRPC server"),
        ({"servers": [Server(8082)]}, "status port 8082 clashes"),
        (
            {"servers": [Server(9000, (Location("/a", "a-b", 1), Location("/b", "a_b", 1)))]},
            "share a variable",
        ),
    ],
)
def test_inconsistent_servers_are_refused(overrides: dict[str, Any], message: str):
    with pytest.raises(ValueError, match=None) as refused:
        _inputs(**overrides)
    assert message in str(refused.value)


def test_the_final_check_still_guards_the_tree():
    """A location smuggled past the model (built, then altered) is caught before pushing."""
    location = Location("/a", "read", 1, headers={"X": "$host"})
    object.__setattr__(location, "headers", {"X": "$evil"})
    with pytest.raises(NginxConfigError, match="evil"):
        render(_inputs(servers=[Server(9000, (location,))]))


# --- mesh policies --------------------------------------------------------------------------


def test_mesh_policies_follow_servers_and_locations():
    servers = [
        Server(
            8080,
            (
                Location("/api/v1/push", "write", 8080, relations=("receive-remote-write",)),
                Location("/otlp/v1/metrics", "write", 8080, relations=("receive-remote-write",)),
                Location("/ring", "write", 8080, Match.EXACT, relations=("grafana", "admin")),
            ),
            relations=("grafana",),
        ),
        Server(9095, (Location("/", "write", 9095),), Protocol.GRPC, relations=("grafana",)),
        Server(3100, (Location("/x", "write", 1),)),
    ]
    assert mesh_policies(servers) == [
        AppPolicy(relation="admin", endpoints=[Endpoint(ports=[8080], paths=["/ring"])]),
        AppPolicy(relation="grafana", endpoints=[Endpoint(ports=[8080]), Endpoint(ports=[9095])]),
        AppPolicy(
            relation="receive-remote-write",
            endpoints=[Endpoint(ports=[8080], paths=["/api/v1/push*", "/otlp/v1/metrics*"])],
        ),
    ]
    assert mesh_policies([Server(3100, (Location("/x", "write", 1),))]) == []


def test_role_route_locations_compare_equal_after_normalising():
    a = Location("/a", ("write", "read", "read"), 1, headers={"B": "1", "A": "2"})
    b = Location("/a", ("read", "write"), 1, headers={"A": "2", "B": "1"})
    assert a == b
    assert a.role_names == ("read", "write")
    assert dataclasses.replace(a, path="/b").key == "/b"
