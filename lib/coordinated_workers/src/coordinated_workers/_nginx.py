# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The coordinator's nginx: config built as data, Pebble layers, and a reconciler.

`render_config` is a pure function from `NginxInputs` to nginx.conf text. It builds a
crossplane directive tree and renders it exactly as ``crossplane.build`` would; there are no
templates, so every block is emitted exactly once and the output is sorted, hence
byte-for-byte stable.

What nginx serves is data: `RoleRoute` one-liners, and the servers and locations of
`coordinated_workers._routing` (ports, gRPC, match kinds, rewrites, headers), which
``_nginx_routes`` turns into locations; `effective_servers` merges the two.

Routing never names a pod. Each worker app is reached through its headless Service
(``<app>-endpoints.<model>.svc.cluster.local``), and every ``proxy_pass`` goes through a
variable, which makes nginx resolve the name per request with ``resolver ... valid=10s``.
So pod restarts and worker-unit scaling need no reload; only worker apps joining or leaving
change nginx.conf. This needs no ``server ... resolve`` (nginx >= 1.27.3): any nginx works,
including Debian's 1.22.

Remote data reaches the tree only through strict grammars, and `render` checks the final tree
once more (``_nginx_check``) before anything is pushed: a telemetry location holding a ``$`` its
template did not place, or repeating another location, is left out and reported in
`RenderedConfig.refused`, never failing the rest; anything else wrong raises `NginxConfigError`.

`NginxWorkload` and `ExporterWorkload` (from ``_nginx_pebble``, re-exported here) push that
text and their Pebble layers to containers, writing and reloading only on change.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import logging
import re
from typing import TYPE_CHECKING

from service_mesh import safe_text

from . import _nginx_routes as _routes
from ._cluster import service_host
from ._nginx_check import NginxConfigError, check_tree, dollar_count, location_key
from ._nginx_pebble import (
    EXPORTER_SERVICE,
    NGINX_CONFIG_PATH,
    NGINX_SERVICE,
    ExporterWorkload,
    NginxConfigRejectedError,
    NginxReloadError,
    NginxWorkload,
    exporter_layer,
    nginx_layer,
)
from ._nginx_text import Directive as _Directive
from ._nginx_text import build as _build
from ._nginx_text import directive as _d
from ._nginx_tls import CERT_FILE, CERTS_DIR, KEY_FILE
from ._routing import (
    Location,
    Protocol,
    Rewrite,
    Server,
    TlsSettings,
    variables_used,
)
from ._status import CoordinatedWorkersError
from ._telemetry_proxy import WORKER_METRICS_LOCATION, ProxyRoute, SkippedTarget

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from ._telemetry_proxy import ProxyPlan

__all__ = [
    "EXPORTER_SERVICE",
    "NGINX_CONFIG_PATH",
    "NGINX_SERVICE",
    "ExporterWorkload",
    "NginxConfigError",
    "NginxConfigRejectedError",
    "NginxInputs",
    "NginxReloadError",
    "NginxWorkload",
    "NoNameserverError",
    "RenderedConfig",
    "RoleRoute",
    "config_tree",
    "effective_servers",
    "exporter_layer",
    "nginx_layer",
    "render",
    "render_config",
    "resolver_from_resolv_conf",
    "service_host",
    "stub_status_url",
]

logger = logging.getLogger(__name__)

_ROLE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_PATH_PREFIX = re.compile(r"^/([A-Za-z0-9._~-]+/?)*$")
_MODEL = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
# Words `map` treats as parameters; a source value spelled like one needs a backslash.
_MAP_KEYWORDS = frozenset({"default", "hostnames", "include", "volatile"})
# Every variable the renderer writes, except the per-role ones (see `_variables`).
_VARIABLES = frozenset(
    {
        *("1", "2", "3", "4", "5", "6", "7", "8", "9"),
        *("backend", "loggable", "request_id", "status"),
        *("worker_app", "worker_unit", "worker_metrics_allowed"),
        *("remote_addr", "remote_user", "time_local", "request", "body_bytes_sent"),
        *("http_referer", "http_user_agent", "request_time", "upstream_addr"),
        *("host", "server_port", "request_uri"),  # the redirects of plain HTTP to https
    }
)
# Stands in for remote text in a telemetry location, to count the `$` its template places.
_INERT_ROUTE = {"location": "/x", "upstream": "http://x:1", "path": "/x"}


class NoNameserverError(CoordinatedWorkersError, ValueError):
    """resolv.conf names no nameserver, so nginx would have nothing to resolve workers with."""


@dataclasses.dataclass(frozen=True)
class RoleRoute:
    """Route requests under `path_prefix` to the workers serving `role`.

    The prefix is stripped: with ``path_prefix="/read"``, ``/read/x`` reaches a worker as ``/x``.
    """

    path_prefix: str
    role: str
    worker_port: int

    def __post_init__(self) -> None:
        if not _PATH_PREFIX.match(self.path_prefix):
            raise ValueError(f"invalid path prefix {self.path_prefix!r}")
        if not _ROLE.match(self.role):
            raise ValueError(f"invalid role name {self.role!r}")

    @property
    def location(self) -> str:
        """The nginx prefix location: the path prefix with exactly one trailing slash."""
        return self.path_prefix.rstrip("/") + "/"

    def to_location(self) -> Location:
        """This route in the general model: a prefix location that strips the prefix."""
        rewrite = None if self.location == "/" else Rewrite.strip_prefix(self.location)
        return Location(self.location, self.role, self.worker_port, rewrite=rewrite)


@dataclasses.dataclass(frozen=True)
class NginxInputs:
    """Everything nginx.conf depends on. Equal inputs render equal text."""

    model: str
    """Juju model, i.e. the Kubernetes namespace of the worker Services."""
    api_port: int
    """Port of the cluster API (role routes and the ``= /`` health location)."""
    routes: Sequence[RoleRoute]
    workers_by_role: Mapping[str, Sequence[str]]
    """Role -> worker app names serving it (meta roles already expanded by the caller)."""
    resolver: str
    """DNS server for runtime resolution; see `resolver_from_resolv_conf`."""
    status_port: int = 8082
    """Loopback-only ``stub_status`` port scraped by nginx-prometheus-exporter."""
    proxy_port: int | None = None
    """Worker telemetry proxy port; None disables the proxy."""
    proxy: ProxyPlan | None = None
    """Telemetry routes (loki, remote write, tracing) to serve on `proxy_port`."""
    worker_apps: Sequence[str] = ()
    """Every worker app, for the worker-metrics proxy allowlist."""
    worker_metrics_port: int = 8080
    """Port on which each worker unit serves ``/metrics``."""
    ipv6: bool = True
    """Also listen on ``[::]``. Turn off where the pod has no IPv6 stack."""
    runtime_dir: str = "/tmp"  # noqa: S108 (writable by any user nginx runs as)
    """Directory for the pid file and temp paths, writable whoever nginx runs as."""
    servers: Sequence[Server] = ()
    """More servers (`coordinated_workers._routing`); `routes` join the one on `api_port`."""
    tls: TlsSettings | None = None
    """Serve every public server over TLS (the certificate in `certs_dir`); None: plain."""
    certs_dir: str = CERTS_DIR
    """Where the certificate and key are (``_nginx_tls`` writes them there)."""
    proxy_http_port: int | None = None
    """With TLS, the proxy's plain-HTTP port, answered with redirects to `proxy_port` (if it
    differs from it and `TlsSettings.redirect_http`)."""

    def __post_init__(self) -> None:
        if not _MODEL.match(self.model):
            raise ValueError(f"invalid model name {self.model!r}")
        prefixes = [route.location for route in self.routes]
        if len(set(prefixes)) != len(prefixes):
            raise ValueError(f"duplicate route prefixes in {sorted(prefixes)}")
        if self.proxy is not None and self.proxy_port is None:
            raise ValueError("a proxy plan needs a proxy_port")
        servers = self.all_servers
        public = {self.proxy_port, *(server.port for server in servers)}
        public |= {self.redirect_port} if self.redirect_port is not None else set()
        if self.status_port in public:
            raise ValueError(f"status port {self.status_port} clashes with a public port")
        by_port = {server.port: server for server in servers}
        proxy_server = by_port.get(self.proxy_port) if self.proxy_port else None
        if proxy_server is not None and proxy_server.protocol is not Protocol.HTTP:
            raise ValueError(f"the telemetry proxy port {self.proxy_port} is a gRPC server")
        pools: dict[str, tuple[str, ...]] = {}
        for location in _routes.all_locations(servers):
            known = pools.setdefault(
                _routes.pool_variable(location.role_names), location.role_names
            )
            if known != location.role_names:
                raise ValueError(f"roles {known} and {location.role_names} share a variable")
        if self.redirect_port in by_port:
            raise ValueError(f"the proxy's http port {self.redirect_port} is a server's port")

    @property
    def redirect_port(self) -> int | None:
        """The proxy's plain-HTTP port that redirects to https, if there is one."""
        tls, port = self.tls, self.proxy_http_port
        if tls is None or not tls.redirect_http or port is None or port == self.proxy_port:
            return None
        return port

    @functools.cached_property
    def all_servers(self) -> tuple[Server, ...]:
        """`effective_servers` of these inputs, worked out once for all who need it."""
        return effective_servers(self)


def effective_servers(inputs: NginxInputs) -> tuple[Server, ...]:
    """The servers nginx serves (by port): `NginxInputs.servers`, with the role routes added.

    The routes are locations of the HTTP server on `NginxInputs.api_port` (sorted by prefix),
    which exists even without routes and answers the ``= /`` health check unless the charm
    declares that server itself.

    Raises:
        ValueError: two servers on one port, or a route repeating a location of that server.
    """
    by_port: dict[int, Server] = {}
    for server in inputs.servers:
        if server.port in by_port:
            raise ValueError(f"two servers on port {server.port}")
        by_port[server.port] = server
    api = by_port.get(inputs.api_port) or Server(inputs.api_port, health_check=True)
    if api.protocol is not Protocol.HTTP and inputs.routes:
        raise ValueError(f"role routes need an HTTP server on {inputs.api_port}")
    routes = sorted(inputs.routes, key=lambda route: route.location)
    by_port[inputs.api_port] = api.with_locations(route.to_location() for route in routes)
    return tuple(server for _, server in sorted(by_port.items()))


def resolver_from_resolv_conf(text: str) -> str:
    """First nameserver of a resolv.conf, as nginx's ``resolver`` expects it.

    IPv6 addresses are bracketed and lose any ``%zone``, which nginx cannot parse.

    Raises:
        NoNameserverError: no usable ``nameserver`` line.
    """
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 2 or fields[0] != "nameserver":
            continue
        address = fields[1].split("%", 1)[0]
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            continue
        return f"[{ip}]" if ip.version == 6 else str(ip)
    raise NoNameserverError("no nameserver in resolv.conf")


def stub_status_url(status_port: int = 8082) -> str:
    """URL of the stub_status page that `render_config` serves for the exporter."""
    return f"http://127.0.0.1:{status_port}/status"


@dataclasses.dataclass(frozen=True)
class RenderedConfig:
    """nginx.conf text, and the telemetry routes left out of it because they were unsafe."""

    text: str
    refused: tuple[SkippedTarget, ...] = ()
    """Each refused route, by location; the rest of the config is unaffected."""


def render(inputs: NginxInputs) -> RenderedConfig:
    """Render nginx.conf for `inputs` and check the final tree before anyone pushes it.

    Raises:
        NginxConfigError: the tree holds a ``$`` the renderer did not place or a duplicate
            location outside the telemetry routes (which are refused one by one instead).
    """
    tree, refused = _tree(inputs)
    check_tree(tree, _variables(inputs))
    return RenderedConfig(_build(tree) + "\n", refused)


def render_config(inputs: NginxInputs) -> str:
    """nginx.conf for `inputs`: `config_tree` written out as crossplane would, checked.

    Raises:
        NginxConfigError: see `render`.
    """
    return render(inputs).text


def config_tree(inputs: NginxInputs) -> list[_Directive]:
    """nginx.conf for `inputs` as a crossplane directive tree (unsafe telemetry routes left out).

    Worker app names that are not valid Juju app names are dropped (with a warning): they
    come from relation data and end up in hostnames and ``map`` keys.
    """
    return _tree(inputs)[0]


def _variables(inputs: NginxInputs) -> frozenset[str]:
    servers = inputs.all_servers
    pools = {
        _routes.pool_variable(location.role_names)[1:]
        for location in _routes.all_locations(servers)
    }
    return _VARIABLES | pools | variables_used(servers)


def _tree(inputs: NginxInputs) -> tuple[list[_Directive], tuple[SkippedTarget, ...]]:
    servers = inputs.all_servers
    pools = _routes.Pools(inputs.model, inputs.workers_by_role)
    http: list[_Directive] = [
        *_http_settings(inputs),
        *_routes.role_selectors(pools, servers),
        *_routes.header_maps(servers),
    ]
    blocks: dict[int, tuple[Server, list[_Directive]]] = {
        server.port: (server, _routes.server_locations(pools, server)) for server in servers
    }
    refused: list[SkippedTarget] = []
    if inputs.proxy_port is not None:
        http.append(_worker_metrics_allowlist(_routes.valid_apps(inputs.worker_apps)))
        _, locations = blocks.setdefault(inputs.proxy_port, (Server(inputs.proxy_port), []))
        locations.extend(_proxy_locations(inputs, locations, refused))
    tls = inputs.tls
    for port, (server, locations) in sorted(blocks.items()):
        grpc = server.protocol is Protocol.GRPC
        listen = _routes.listen(port, inputs.ipv6, http2=grpc, ssl=tls is not None)
        if tls is not None and tls.redirect_http:
            listen.append(_d("error_page", "497", "=308", _HTTPS_SAME_URL))
        http.append(_server(listen, locations))
    if tls is not None:
        http[:0] = _tls_settings(tls, inputs.certs_dir)
        redirect = inputs.redirect_port
        if redirect is not None and inputs.proxy_port is not None:
            target = f"https://$host:{inputs.proxy_port}$request_uri"
            http.append(
                _server(_routes.listen(redirect, inputs.ipv6), [_d("return", "308", target)])
            )
    http.append(_server([_d("listen", f"127.0.0.1:{inputs.status_port}")], [_status_location()]))
    tree = [
        _d("worker_processes", "5"),
        _d("worker_rlimit_nofile", "8192"),
        _d("error_log", "/dev/stderr", "error"),
        _d("pid", f"{inputs.runtime_dir}/nginx.pid"),
        _d("events", block=[_d("worker_connections", "4096")]),
        _d("http", block=http),
    ]
    return tree, tuple(refused)


_HTTPS_SAME_URL = "https://$host:$server_port$request_uri"
"""Where nginx's 497 (plain HTTP sent to a TLS port) redirects: the same URL over https."""


def _tls_settings(tls: TlsSettings, certs_dir: str) -> list[_Directive]:
    """The certificate and the TLS settings, once for every server of the http block."""
    return [
        _d("ssl_certificate", f"{certs_dir}/{CERT_FILE}"),
        _d("ssl_certificate_key", f"{certs_dir}/{KEY_FILE}"),
        _d("ssl_protocols", *tls.protocols),
        _d("ssl_ciphers", tls.ciphers),
        _d("ssl_prefer_server_ciphers", "on"),
        _d("ssl_session_cache", "shared:tls:1m"),
    ]


def _http_settings(inputs: NginxInputs) -> list[_Directive]:
    tmp = inputs.runtime_dir
    return [
        _d("client_body_temp_path", f"{tmp}/client_temp"),
        _d("proxy_temp_path", f"{tmp}/proxy_temp"),
        _d("fastcgi_temp_path", f"{tmp}/fastcgi_temp"),
        _d("uwsgi_temp_path", f"{tmp}/uwsgi_temp"),
        _d("scgi_temp_path", f"{tmp}/scgi_temp"),
        # No `include mime.types`: nginx only proxies and answers with plain text here.
        _d("default_type", "application/octet-stream"),
        _d("server_tokens", "off"),
        _d(
            "log_format",
            "main",
            '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
            '"$http_referer" "$http_user_agent" $request_time $upstream_addr',
        ),
        # Room for long app names in the worker-metrics allowlist; must precede every `map`.
        _d("map_hash_bucket_size", "128"),
        # Log only failures: successful pushes and scrapes would flood the container log.
        _d("map", "$status", "$loggable", block=[_d("~^[23]", "0"), _d("default", "1")]),
        _d("access_log", "/dev/stderr", "main", "if=$loggable"),
        _d("resolver", inputs.resolver, "valid=10s"),
        _d("resolver_timeout", "5s"),
        _d("proxy_connect_timeout", "5s"),
        _d("proxy_read_timeout", "300s"),
    ]


def _proxy_locations(
    inputs: NginxInputs, server: list[_Directive], refused: list[SkippedTarget]
) -> list[_Directive]:
    """The telemetry locations and the worker-metrics one, for the server already holding `server`.

    A telemetry location whose arguments hold a ``$`` its template does not place, or that
    repeats a location of the same server, is left out and added to `refused`.
    """
    routes = inputs.proxy.routes if inputs.proxy else ()
    taken = {location_key(location) for location in server}
    locations: list[_Directive] = []
    for route in sorted(routes, key=lambda r: r.location):
        location = _telemetry_location(route)
        inert = ProxyRoute(exact=route.exact, **_INERT_ROUTE)
        if dollar_count(location) != dollar_count(_telemetry_location(inert)):
            reason = "a '$' in its location, destination or path"
        elif location_key(location) in taken:
            reason = "another location has the same path"
        else:
            taken.add(location_key(location))
            locations.append(location)
            continue
        skip = SkippedTarget("nginx", safe_text(route.location, 80), reason)
        logger.warning("nginx: telemetry location %s refused: %s", skip.key, reason)
        refused.append(skip)
    locations.append(_worker_metrics_location(inputs))
    return locations


def _telemetry_location(route: ProxyRoute) -> _Directive:
    if route.exact:
        rewrite = _d("rewrite", "^", route.path, "break")
        return _d(
            "location", "=", route.location, block=_routes.proxy_block(route.upstream, [rewrite])
        )
    rewrite = _d("rewrite", f"^{route.location}(.*)$", f"{route.path}/$1", "break")
    return _d("location", route.location, block=_routes.proxy_block(route.upstream, [rewrite]))


def _worker_metrics_allowlist(apps: list[str]) -> _Directive:
    """Map ``$worker_app`` to 1 for known worker apps, so the proxy cannot reach anything else."""
    entries = [_d("default", "0")]
    entries += [_d("\\" + app if app in _MAP_KEYWORDS else app, "1") for app in apps]
    return _d("map", "$worker_app", "$worker_metrics_allowed", block=entries)


def _worker_metrics_location(inputs: NginxInputs) -> _Directive:
    """One regex location proxying ``/proxy/worker/<app>-<n>/metrics`` to that unit's pod.

    The pod is addressed by its stable DNS name under the app's headless Service, resolved per
    request, so worker units can come and go without touching nginx.conf.
    """
    pod = f"$worker_app-$worker_unit.$worker_app-endpoints.{inputs.model}.svc.cluster.local"
    guard = _d("if", "$worker_metrics_allowed", "=", "0", block=[_d("return", "404")])
    rewrite = _d("rewrite", "^", "/metrics", "break")
    backend = f"http://{pod}:{inputs.worker_metrics_port}"
    return _d(
        "location",
        "~",
        WORKER_METRICS_LOCATION,
        block=[guard, *_routes.proxy_block(backend, [rewrite])],
    )


def _server(listen: list[_Directive], locations: list[_Directive]) -> _Directive:
    return _d("server", block=[*listen, *locations])


def _status_location() -> _Directive:
    return _d(
        "location",
        "=",
        "/status",
        block=[_d("stub_status"), _d("allow", "127.0.0.1"), _d("deny", "all")],
    )
