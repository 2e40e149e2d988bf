# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""nginx locations for `coordinated_workers._routing` servers: the worker side of nginx.conf.

Each location proxies through ``$backend`` to the headless Service of the app serving its
roles, so nginx resolves the name per request and unit scaling changes nothing; several apps
are spread by a ``split_clients``, none answers 503. Kept apart from `coordinated_workers._nginx`
(which assembles the whole file) so each module stays short.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING

from service_mesh import safe_text

from ._cluster import service_host
from ._nginx_text import Directive as _Directive
from ._nginx_text import directive as _d
from ._routing import ClientHeader, Location, Match, Protocol, Rewrite, Server
from ._telemetry_proxy import JUJU_APP_NAME

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping, Sequence

logger = logging.getLogger("coordinated_workers._nginx")


@dataclasses.dataclass(frozen=True)
class Pools:
    """Where the workers are: the model (for Service names) and the apps serving each role."""

    model: str
    workers_by_role: Mapping[str, Sequence[str]]
    """Role -> worker app names serving it (meta roles already expanded)."""


def valid_apps(apps: Iterable[str]) -> list[str]:
    valid: set[str] = set()
    for app in apps:
        if JUJU_APP_NAME.match(app):
            valid.add(app)
        else:
            logger.warning("ignoring invalid worker app name %r", safe_text(app, 60))
    return sorted(valid)


def _role_variable(role: str) -> str:
    return "$role_" + role.replace("-", "_") + "_host"


def pool_variable(roles: tuple[str, ...]) -> str:
    """The ``split_clients`` variable of the apps serving any of `roles`."""
    if len(roles) == 1:
        return _role_variable(roles[0])
    return "$roles_" + "_".join(role.replace("-", "_") for role in roles) + "_host"


def _apps_serving(pools: Pools, roles: tuple[str, ...]) -> list[str]:
    return valid_apps(app for role in roles for app in pools.workers_by_role.get(role, ()))


def all_locations(servers: Iterable[Server]) -> Iterator[Location]:
    for server in servers:
        yield from server.locations


def role_selectors(pools: Pools, servers: Sequence[Server]) -> list[_Directive]:
    """One ``split_clients`` per role (or set of roles) served by several apps.

    Hashing ``$request_id`` (random per request) spreads requests across the apps at random,
    each with an equal share (the last app gets the rounding remainder). Within an app, nginx
    round-robins over the addresses its headless Service resolves to.
    """
    role_sets = {location.role_names for location in all_locations(servers)}
    selectors: list[_Directive] = []
    for roles in sorted(role_sets, key=lambda roles: (len(roles) > 1, roles)):
        apps = _apps_serving(pools, roles)
        if len(apps) < 2:
            continue
        share = f"{(10000 // len(apps)) / 100:.2f}%"
        block = [_d(share, service_host(app, pools.model)) for app in apps[:-1]]
        block.append(_d("*", service_host(apps[-1], pools.model)))
        selectors.append(_d("split_clients", "$request_id", pool_variable(roles), block=block))
    return selectors


def header_maps(servers: Sequence[Server]) -> list[_Directive]:
    """One ``map`` per `ClientHeader`: the client's value, or the default when it is empty."""
    headers: dict[str, ClientHeader] = {}
    for server in servers:
        values = [*server.headers.values()]
        for location in server.locations:
            values += location.headers.values()
        headers.update((v.variable, v) for v in values if isinstance(v, ClientHeader))
    return [
        _d(
            "map",
            f"${header.source}",
            f"${header.variable}",
            block=[_d("", header.default), _d("default", f"${header.source}")],
        )
        for _, header in sorted(headers.items())
    ]


def server_locations(pools: Pools, server: Server) -> list[_Directive]:
    locations: list[_Directive] = []
    if server.health_check:
        locations.append(
            _d(
                "location",
                "=",
                "/",
                block=[_d("default_type", "text/plain"), _d("return", "200", "OK\n")],
            )
        )
    locations += [_location(pools, server, location) for location in server.locations]
    return locations


def _location(pools: Pools, server: Server, location: Location) -> _Directive:
    match = [location.match.value] if location.match is not Match.PREFIX else []
    apps = _apps_serving(pools, location.role_names)
    if not apps:
        roles = location.role_names
        missing = f"role {roles[0]}" if len(roles) == 1 else "roles " + ", ".join(roles)
        body = [
            _d("default_type", "text/plain"),
            _d("return", "503", f"no worker app serves {missing}\n"),
        ]
        return _d("location", *match, location.path, block=body)
    host = (
        service_host(apps[0], pools.model)
        if len(apps) == 1
        else pool_variable(location.role_names)
    )
    headers = _merged_headers(server.headers, location.headers)
    if server.protocol is Protocol.GRPC:
        body = _grpc_block(f"grpc://{host}:{location.worker_port}", headers)
    else:
        rewrites = [] if location.rewrite is None else [_rewrite(location.rewrite)]
        body = proxy_block(f"http://{host}:{location.worker_port}", rewrites)
        body = _with_headers(body, headers)
    prefix = "grpc" if server.protocol is Protocol.GRPC else "proxy"
    if location.client_max_body_size is not None:
        body.append(_d("client_max_body_size", location.client_max_body_size))
    if location.read_timeout is not None:
        body.append(_d(f"{prefix}_read_timeout", location.read_timeout))
    if location.send_timeout is not None:
        body.append(_d(f"{prefix}_send_timeout", location.send_timeout))
    if location.buffering is not None:
        switch = "on" if location.buffering else "off"
        body += [_d("proxy_buffering", switch), _d("proxy_request_buffering", switch)]
    body += [_d(extra.name, *extra.args) for extra in location.extra]
    return _d("location", *match, location.path, block=body)


def _merged_headers(
    server: Mapping[str, str | ClientHeader], location: Mapping[str, str | ClientHeader]
) -> dict[str, str | ClientHeader]:
    """The server's headers overridden by the location's, names compared case-insensitively."""
    merged: dict[str, tuple[str, str | ClientHeader]] = {}
    for name, value in [*server.items(), *location.items()]:
        merged[name.lower()] = (name, value)
    return dict(sorted(merged.values(), key=lambda item: item[0]))


def _header_value(value: str | ClientHeader) -> str:
    return f"${value.variable}" if isinstance(value, ClientHeader) else value


def _with_headers(
    body: list[_Directive], headers: Mapping[str, str | ClientHeader]
) -> list[_Directive]:
    """`body` with `headers` set towards the worker; a ``Connection`` header replaces ours."""
    connection = next(((k, v) for k, v in headers.items() if k.lower() == "connection"), None)
    if connection is not None:
        name, value = connection
        body = [
            _d("proxy_set_header", name, _header_value(value))
            if node.get("directive") == "proxy_set_header"
            and node.get("args", [""])[0] == "Connection"
            else node
            for node in body
        ]
    body += [
        _d("proxy_set_header", name, _header_value(value))
        for name, value in headers.items()
        if name.lower() != "connection"
    ]
    return body


def _grpc_block(backend: str, headers: Mapping[str, str | ClientHeader]) -> list[_Directive]:
    """GRPC to `backend` through ``$backend``, resolved per request like ``proxy_pass``."""
    block = [_d("set", "$backend", backend), _d("grpc_pass", "$backend")]
    block += [_d("grpc_set_header", k, _header_value(v)) for k, v in headers.items()]
    return block


def _rewrite(rewrite: Rewrite) -> _Directive:
    return _d("rewrite", rewrite.pattern, rewrite.replacement, "break")


def proxy_block(backend: str, rewrites: list[_Directive]) -> list[_Directive]:
    """Proxy to `backend` (an origin, no path) through ``$backend``.

    ``set`` must precede ``rewrite ... break``: ``break`` stops the rewrite module, and ``set``
    belongs to it. HTTP/1.1 with an empty Connection header keeps upstream connections alive
    and is what service-mesh proxies expect.
    """
    block = [
        _d("set", "$backend", backend),
        *rewrites,
        _d("proxy_pass", "$backend"),
        _d("proxy_http_version", "1.1"),
        _d("proxy_set_header", "Connection", ""),
    ]
    if backend.startswith("https://"):
        block.append(_d("proxy_ssl_server_name", "on"))
    return block


def listen(port: int, ipv6: bool, *, http2: bool = False, ssl: bool = False) -> list[_Directive]:
    """``listen`` lines; ``http2`` as a listen parameter works on nginx 1.22 to 1.27 alike.

    (nginx >= 1.25.1 also has an ``http2 on`` directive and warns that the parameter is
    deprecated; the parameter is kept so Debian's 1.22 still runs the same file.)
    """
    extra = (["ssl"] if ssl else []) + (["http2"] if http2 else [])
    listen = [_d("listen", str(port), *extra)]
    if ipv6:
        listen.append(_d("listen", f"[::]:{port}", *extra))
    return listen
