"""The coordinator's nginx: config built as data, Pebble layers, and a reconciler.

`render_config` is a pure function from `NginxInputs` to nginx.conf text. It builds a
crossplane directive tree and renders it exactly as ``crossplane.build`` would; there are no
templates, so every block is emitted exactly once and the output is sorted, hence
byte-for-byte stable.

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
import ipaddress
import logging
import re
from typing import TYPE_CHECKING

from service_mesh import safe_text

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
from ._status import CoordinatedWorkersError
from ._telemetry_proxy import JUJU_APP_NAME, WORKER_METRICS_LOCATION, ProxyRoute, SkippedTarget

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

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
        *("1", "backend", "loggable", "request_id", "status"),
        *("worker_app", "worker_unit", "worker_metrics_allowed"),
        *("remote_addr", "remote_user", "time_local", "request", "body_bytes_sent"),
        *("http_referer", "http_user_agent", "request_time", "upstream_addr"),
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

    def __post_init__(self) -> None:
        if not _MODEL.match(self.model):
            raise ValueError(f"invalid model name {self.model!r}")
        prefixes = [route.location for route in self.routes]
        if len(set(prefixes)) != len(prefixes):
            raise ValueError(f"duplicate route prefixes in {sorted(prefixes)}")
        public = {self.api_port, self.proxy_port}
        if self.status_port in public:
            raise ValueError(f"status port {self.status_port} clashes with a public port")
        if self.proxy is not None and self.proxy_port is None:
            raise ValueError("a proxy plan needs a proxy_port")


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
    roles = {_role_variable(route.role)[1:] for route in inputs.routes}
    return _VARIABLES | roles


def _tree(inputs: NginxInputs) -> tuple[list[_Directive], tuple[SkippedTarget, ...]]:
    http: list[_Directive] = [
        *_http_settings(inputs),
        *_role_selectors(inputs),
    ]
    servers: dict[int, list[_Directive]] = {inputs.api_port: _api_locations(inputs)}
    refused: list[SkippedTarget] = []
    if inputs.proxy_port is not None:
        http.append(_worker_metrics_allowlist(_valid_apps(inputs.worker_apps)))
        server = servers.setdefault(inputs.proxy_port, [])
        server.extend(_proxy_locations(inputs, server, refused))
    for port, locations in sorted(servers.items()):
        http.append(_server(_listen(port, inputs.ipv6), locations))
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


def _valid_apps(apps: Iterable[str]) -> list[str]:
    valid: set[str] = set()
    for app in apps:
        if JUJU_APP_NAME.match(app):
            valid.add(app)
        else:
            logger.warning("ignoring invalid worker app name %r", safe_text(app, 60))
    return sorted(valid)


def _role_variable(role: str) -> str:
    return "$role_" + role.replace("-", "_") + "_host"


def _apps_serving(inputs: NginxInputs, role: str) -> list[str]:
    return _valid_apps(inputs.workers_by_role.get(role, ()))


def _role_selectors(inputs: NginxInputs) -> list[_Directive]:
    """One ``split_clients`` per role served by several apps.

    Hashing ``$request_id`` (random per request) spreads requests across the apps at random,
    each with an equal share (the last app gets the rounding remainder). Within an app, nginx
    round-robins over the addresses its headless Service resolves to.
    """
    selectors: list[_Directive] = []
    for role in sorted({route.role for route in inputs.routes}):
        apps = _apps_serving(inputs, role)
        if len(apps) < 2:
            continue
        share = f"{(10000 // len(apps)) / 100:.2f}%"
        block = [_d(share, service_host(app, inputs.model)) for app in apps[:-1]]
        block.append(_d("*", service_host(apps[-1], inputs.model)))
        selectors.append(_d("split_clients", "$request_id", _role_variable(role), block=block))
    return selectors


def _api_locations(inputs: NginxInputs) -> list[_Directive]:
    locations = [
        _d(
            "location",
            "=",
            "/",
            block=[_d("default_type", "text/plain"), _d("return", "200", "OK\n")],
        )
    ]
    for route in sorted(inputs.routes, key=lambda r: r.location):
        apps = _apps_serving(inputs, route.role)
        if not apps:
            body = [
                _d("default_type", "text/plain"),
                _d("return", "503", f"no worker app serves role {route.role}\n"),
            ]
            locations.append(_d("location", route.location, block=body))
            continue
        host = (
            service_host(apps[0], inputs.model) if len(apps) == 1 else _role_variable(route.role)
        )
        rewrite = [] if route.location == "/" else [_strip_prefix(route.location)]
        body = _proxy_block(f"http://{host}:{route.worker_port}", rewrite)
        locations.append(_d("location", route.location, block=body))
    return locations


def _strip_prefix(location: str) -> _Directive:
    return _d("rewrite", f"^{location}(.*)$", "/$1", "break")


def _proxy_block(backend: str, rewrites: list[_Directive]) -> list[_Directive]:
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
        return _d("location", "=", route.location, block=_proxy_block(route.upstream, [rewrite]))
    rewrite = _d("rewrite", f"^{route.location}(.*)$", f"{route.path}/$1", "break")
    return _d("location", route.location, block=_proxy_block(route.upstream, [rewrite]))


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
        "location", "~", WORKER_METRICS_LOCATION, block=[guard, *_proxy_block(backend, [rewrite])]
    )


def _listen(port: int, ipv6: bool) -> list[_Directive]:
    listen = [_d("listen", str(port))]
    if ipv6:
        listen.append(_d("listen", f"[::]:{port}"))
    return listen


def _server(listen: list[_Directive], locations: list[_Directive]) -> _Directive:
    return _d("server", block=[*listen, *locations])


def _status_location() -> _Directive:
    return _d(
        "location",
        "=",
        "/status",
        block=[_d("stub_status"), _d("allow", "127.0.0.1"), _d("deny", "all")],
    )
