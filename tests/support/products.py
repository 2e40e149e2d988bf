# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The routing tables of Tempo, Loki and Mimir, written with `coordinated_workers._routing`.

These are test data, not shipped charms: they prove the model can express each product's real
coordinator routing (ports, paths, match kinds, roles, rewrites, headers), so the tests can
render them, check them with ``nginx -t``, run them in a live nginx and keep golden copies.

Each product is a function of ``listen`` and ``worker``, which map every documented server
port and worker port to the one actually used: the identity for the golden files and the
benchmarks, free loopback ports for the live test. `Product.routes` lists, for every documented
path, the role that must answer it and the path that worker must receive.

Differences from the upstream charms, on purpose: ``X-Scope-OrgID`` (default ``anonymous``)
is set on every Loki and Mimir location, including those with headers of their own (upstream
loses it there through nginx's inheritance rule); Loki's ``/loki/api/v1/tail`` gets the
websocket headers its regex neighbour has (upstream's exact location shadows them); Loki's
``/api/v1/rules`` keeps the query string when rewritten (upstream drops it); regex locations
are anchored (``^/prometheus/``), which changes nothing for paths, all of which start with /.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from coordinated_workers._routing import (
    ClientHeader,
    Location,
    Match,
    Protocol,
    Rewrite,
    Server,
)

if TYPE_CHECKING:
    from collections.abc import Callable

TENANT = ClientHeader("X-Scope-OrgID", "anonymous")
WEBSOCKET = {"Upgrade": "$http_upgrade", "Connection": "upgrade"}


def same(port: int) -> int:
    return port


@dataclasses.dataclass(frozen=True)
class Route:
    """A documented request: on `port` (documented), `path` reaches `role` as `worker_path`."""

    port: int
    path: str
    role: str
    worker_path: str
    grpc: bool = False


@dataclasses.dataclass(frozen=True)
class Product:
    name: str
    api_port: int
    proxy_port: int
    roles: tuple[str, ...]
    """Concrete roles (each gets its own worker app in the tests)."""
    servers: tuple[Server, ...]
    routes: tuple[Route, ...]
    worker_ports: dict[str, tuple[int, ...]]
    """Role -> documented worker ports its app listens on (http and grpc)."""
    metrics_port: int
    """Documented worker port serving ``/metrics`` (reached through the telemetry proxy)."""
    grpc_ports: frozenset[int] = frozenset()
    """Documented worker ports that speak gRPC."""

    def app(self, role: str) -> str:
        return f"{self.name}-{role}"

    def workers_by_role(self, extra_apps: int = 0) -> dict[str, list[str]]:
        """One app per role, plus `extra_apps` apps serving every role (to scale the config)."""
        extras = [f"{self.name}-pool{i:03d}" for i in range(extra_apps)]
        return {role: [self.app(role), *extras] for role in self.roles}


def tempo(listen: Callable[[int], int] = same, worker: Callable[[int], int] = same) -> Product:
    """Tempo: one server per receiver or API port, each a single ``/`` location."""
    http = {3200: "query-frontend", 4318: "distributor", 9411: "distributor"}
    http[14268] = "distributor"
    grpc = {9096: "query-frontend", 4317: "distributor", 14250: "distributor"}
    receivers = {4317, 4318, 9411, 14268, 14250}

    def server(documented: int, role: str, protocol: Protocol) -> Server:
        relations = ("tracing",) if documented in receivers else ("grafana-source",)
        location = Location("/", role, worker(documented))
        return Server(listen(documented), (location,), protocol=protocol, relations=relations)

    servers = [server(p, role, Protocol.HTTP) for p, role in http.items()]
    servers += [server(p, role, Protocol.GRPC) for p, role in grpc.items()]
    routes = [Route(3200, "/api/search?tags=x", "query-frontend", "/api/search?tags=x")]
    routes += [Route(3200, "/api/traces/abc", "query-frontend", "/api/traces/abc")]
    routes += [Route(4318, "/v1/traces", "distributor", "/v1/traces")]
    routes += [Route(9411, "/api/v2/spans", "distributor", "/api/v2/spans")]
    routes += [
        Route(
            14268,
            "/api/traces?format=jaeger.thrift",
            "distributor",
            "/api/traces?format=jaeger.thrift",
        )
    ]
    routes += [
        Route(9096, "/tempopb.StreamingQuerier/Search", "query-frontend", "", grpc=True),
        Route(
            4317,
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            "distributor",
            "",
            grpc=True,
        ),
        Route(14250, "/jaeger.api_v2.CollectorService/PostSpans", "distributor", "", grpc=True),
    ]
    roles = ("compactor", "distributor", "ingester", "metrics-generator", "querier")
    worker_ports: dict[str, tuple[int, ...]] = dict.fromkeys((*roles, "query-frontend"), (3200,))
    worker_ports["distributor"] = (3200, 4317, 4318, 9411, 14250, 14268)
    worker_ports["query-frontend"] = (3200, 9096)
    return Product(
        name="tempo",
        api_port=listen(3200),
        proxy_port=listen(3300),
        roles=(*roles, "query-frontend"),
        servers=tuple(servers),
        routes=tuple(_fill(routes)),
        worker_ports=worker_ports,
        metrics_port=3200,
        grpc_ports=frozenset(grpc),
    )


def loki(listen: Callable[[int], int] = same, worker: Callable[[int], int] = same) -> Product:
    """Loki: one HTTP server on 3100 (API, health check and telemetry proxy)."""
    p, w = listen(3100), worker(3100)
    any_worker = ("backend", "read", "write")
    locations = (
        Location("/loki/api/v1/push", "write", w, Match.EXACT, relations=("logging",)),
        Location("/loki/api/v1/rules", "backend", w, Match.PREFIX_NO_REGEX),
        Location("^/prometheus/", "backend", w, Match.REGEX),
        Location("/api/v1/rules", "backend", w, Match.EXACT, Rewrite.to("/loki/api/v1/rules")),
        Location("/loki/api/v1/tail", "read", w, Match.EXACT, headers=WEBSOCKET),
        Location("^/loki/api/", "read", w, Match.REGEX, headers=WEBSOCKET, read_timeout="600s"),
        Location("/loki/api/v1/format_query", any_worker, w, Match.EXACT),
        Location("/loki/api/v1/status/buildinfo", any_worker, w, Match.EXACT),
        Location("/ring", any_worker, w, Match.EXACT),
    )
    server = Server(
        p,
        locations,
        health_check=True,
        headers={"X-Scope-OrgID": TENANT},
        relations=("grafana-source",),
    )
    routes = [
        Route(3100, "/loki/api/v1/push", "write", "/loki/api/v1/push"),
        Route(3100, "/loki/api/v1/rules/ns/group", "backend", "/loki/api/v1/rules/ns/group"),
        Route(3100, "/prometheus/api/v1/rules", "backend", "/prometheus/api/v1/rules"),
        Route(3100, "/prometheus/api/v1/alerts", "backend", "/prometheus/api/v1/alerts"),
        Route(3100, "/api/v1/rules?x=1", "backend", "/loki/api/v1/rules?x=1"),
        Route(3100, "/loki/api/v1/tail?query=x", "read", "/loki/api/v1/tail?query=x"),
        Route(3100, "/loki/api/v1/query_range?q=up", "read", "/loki/api/v1/query_range?q=up"),
        Route(3100, "/loki/api/v1/labels", "read", "/loki/api/v1/labels"),
        Route(3100, "/loki/api/v1/format_query", "*", "/loki/api/v1/format_query"),
        Route(3100, "/loki/api/v1/status/buildinfo", "*", "/loki/api/v1/status/buildinfo"),
        Route(3100, "/ring", "*", "/ring"),
    ]
    return Product(
        name="loki",
        api_port=p,
        proxy_port=p,
        roles=any_worker,
        servers=(server,),
        routes=tuple(routes),
        worker_ports=dict.fromkeys(any_worker, (3100,)),
        metrics_port=3100,
    )


MIMIR_ROLES = (
    *("alertmanager", "compactor", "distributor", "flusher", "ingester", "overrides-exporter"),
    *("querier", "query-frontend", "query-scheduler", "ruler", "store-gateway"),
)


def mimir(listen: Callable[[int], int] = same, worker: Callable[[int], int] = same) -> Product:
    """Mimir: one HTTP server on 8080 (API, health check and telemetry proxy)."""
    p, w = listen(8080), worker(8080)
    write = ("receive-remote-write",)
    table: list[tuple[str, str, Match, tuple[str, ...]]] = [
        ("/distributor", "distributor", Match.PREFIX, ()),
        ("/api/v1/push", "distributor", Match.PREFIX, write),
        ("/otlp/v1/metrics", "distributor", Match.PREFIX, write),
        ("/prometheus/config/v1/rules", "ruler", Match.PREFIX, ()),
        ("/prometheus/api/v1/rules", "ruler", Match.PREFIX, ()),
        ("/prometheus/api/v1/alerts", "ruler", Match.PREFIX, ()),
        ("/ruler/ring", "ruler", Match.EXACT, ()),
        ("/alertmanager", "alertmanager", Match.PREFIX, ()),
        ("/multitenant_alertmanager/status", "alertmanager", Match.PREFIX, ()),
        ("/api/v1/alerts", "alertmanager", Match.PREFIX, ()),
        ("/prometheus", "query-frontend", Match.PREFIX, ()),
        ("/api/v1/status/buildinfo", "query-frontend", Match.EXACT, ()),
        ("/api/v1/upload/block/", "compactor", Match.EXACT, ()),
    ]
    locations = tuple(
        Location(path, role, w, match, relations=relations, client_max_body_size="0")
        if path in ("/api/v1/push", "/otlp/v1/metrics")
        else Location(path, role, w, match, relations=relations)
        for path, role, match, relations in table
    )
    server = Server(
        p,
        locations,
        health_check=True,
        headers={"X-Scope-OrgID": TENANT},
        relations=("grafana-source",),
    )
    routes = [
        Route(8080, "/distributor/ring", "distributor", "/distributor/ring"),
        Route(8080, "/api/v1/push", "distributor", "/api/v1/push"),
        Route(8080, "/otlp/v1/metrics", "distributor", "/otlp/v1/metrics"),
        Route(8080, "/prometheus/config/v1/rules/ns", "ruler", "/prometheus/config/v1/rules/ns"),
        Route(8080, "/prometheus/api/v1/rules", "ruler", "/prometheus/api/v1/rules"),
        Route(8080, "/prometheus/api/v1/alerts", "ruler", "/prometheus/api/v1/alerts"),
        Route(8080, "/ruler/ring", "ruler", "/ruler/ring"),
        Route(8080, "/alertmanager/api/v2/status", "alertmanager", "/alertmanager/api/v2/status"),
        Route(
            8080,
            "/multitenant_alertmanager/status",
            "alertmanager",
            "/multitenant_alertmanager/status",
        ),
        Route(8080, "/api/v1/alerts", "alertmanager", "/api/v1/alerts"),
        Route(
            8080,
            "/prometheus/api/v1/query?query=up",
            "query-frontend",
            "/prometheus/api/v1/query?query=up",
        ),
        Route(8080, "/api/v1/status/buildinfo", "query-frontend", "/api/v1/status/buildinfo"),
        Route(8080, "/api/v1/upload/block/", "compactor", "/api/v1/upload/block/"),
    ]
    return Product(
        name="mimir",
        api_port=p,
        proxy_port=p,
        roles=MIMIR_ROLES,
        servers=(server,),
        routes=tuple(routes),
        worker_ports=dict.fromkeys(MIMIR_ROLES, (8080,)),
        metrics_port=8080,
    )


PRODUCTS: dict[str, Callable[..., Product]] = {"tempo": tempo, "loki": loki, "mimir": mimir}


def _fill(routes: list[Route]) -> list[Route]:
    """gRPC routes reach the worker with the method path unchanged."""
    return [
        dataclasses.replace(route, worker_path=route.path) if route.grpc else route
        for route in routes
    ]
