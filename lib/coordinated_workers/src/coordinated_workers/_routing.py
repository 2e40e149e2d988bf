# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Routing as data: the servers and locations nginx serves in front of the workers.

A coordinator routes by **role**, never by pod: each `Location` names the role(s) whose worker
apps serve it, and the renderer (`coordinated_workers._nginx`) points it at those apps'
headless Services, resolved per request. Scaling worker units therefore never changes
nginx.conf; only a worker app joining or leaving does.

Everything here is checked when it is built, so a charm author learns of a mistake at import
time rather than from ``nginx -t`` in a hook: paths, regexes, header values and the extra
directives of the escape hatch (`Extra`) may only refer to nginx variables from a short list
(`ALLOWED_VARIABLES`, ``$http_<header>``, ``$arg_<name>``, ``$cookie_<name>``, and ``$1``-``$9``
in a rewrite), and the final tree is checked again before it is pushed.

TLS is one switch for every server (`TlsSettings`, in ``CoordinatorConfig.tls``): once the
coordinator has a certificate, each server listens with ``ssl`` on its own port, with the
protocols and ciphers given there.

Mesh access follows the servers: `Server.relations` lets the apps related on those endpoints
reach the whole port, `Location.relations` only that path (HTTP servers). `mesh_policies`
turns both into `service_mesh.AppPolicy` values the coordinator publishes to the mesh.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import re
from typing import TYPE_CHECKING

from service_mesh import AppPolicy, Endpoint

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

ROLE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_PLAIN_PATH = re.compile(r"^/([A-Za-z0-9._~!*+,:@=-]+/?)*$")
_REGEX_FORBIDDEN = re.compile(r"[\s;{}\"'\\]")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*$")
_DIRECTIVE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_SIZE = re.compile(r"^[0-9]+[kKmMgG]?$")
_TIME = re.compile(r"^[0-9]+(ms|s|m|h)?$")
_REFERENCE = re.compile(r"\$(?:\{(?P<braced>[^}]*)\}|(?P<name>[A-Za-z0-9_]*))")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CIPHERS = re.compile(r"^[A-Za-z0-9!+@=_.:-]+$")
TLS_PROTOCOLS = frozenset({"TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"})
"""What nginx's ``ssl_protocols`` accepts."""

ALLOWED_VARIABLES = frozenset(
    {"host", "remote_addr", "scheme", "request_id", "request_uri", "uri", "args", "server_port"}
)
"""nginx variables a header value or an extra directive may use, besides ``$http_*``,
``$arg_*`` and ``$cookie_*`` (request data nginx itself defines)."""
_ALLOWED_FAMILIES = re.compile(r"^(http|arg|cookie)_[a-z0-9_]+$")
FORBIDDEN_EXTRAS = frozenset(
    {
        *("set", "rewrite", "proxy_pass", "grpc_pass", "location", "server", "if", "return"),
        *("include", "load_module", "map", "split_clients", "upstream", "listen", "resolver"),
        *("root", "alias", "internal", "stub_status"),
    }
)
"""Directives `Extra` may not add: the renderer owns routing, DNS and what nginx listens on."""


class Match(str, enum.Enum):
    """How a location matches the request path, in nginx's own terms."""

    PREFIX = ""
    """``location /x``: the longest matching prefix, unless a regex location matches too."""
    EXACT = "="
    """``location = /x``: this path only; wins over everything else."""
    PREFIX_NO_REGEX = "^~"
    """``location ^~ /x``: a prefix that, when it is the longest, skips the regex locations."""
    REGEX = "~"
    """``location ~ ^/x``: a case-sensitive PCRE; the first matching regex (in order) wins."""


class Protocol(str, enum.Enum):
    """What a server speaks to clients, and therefore to the workers."""

    HTTP = "http"
    """HTTP/1.1, proxied with ``proxy_pass``."""
    GRPC = "grpc"
    """gRPC over cleartext HTTP/2, proxied with ``grpc_pass``."""


class RoutingError(ValueError):
    """A routing declaration nginx would refuse or misread; raised when it is built."""


@dataclasses.dataclass(frozen=True)
class Rewrite:
    """Change the path sent to the workers: ``rewrite <pattern> <replacement> break``.

    The query string is kept (nginx appends it unless the replacement has a ``?``). Use
    `strip_prefix` or `to`; the replacement may use the captures ``$1``-``$9`` of `pattern`.
    """

    pattern: str
    replacement: str

    def __post_init__(self) -> None:
        if not self.pattern.startswith("^"):
            raise RoutingError(f"rewrite pattern {self.pattern!r} must start with '^'")
        _check_regex(self.pattern, "rewrite pattern")
        if not self.replacement.startswith("/") or _REGEX_FORBIDDEN.search(self.replacement):
            raise RoutingError(f"invalid rewrite replacement {self.replacement!r}")
        for name in _references(self.replacement):
            if not (len(name) == 1 and name in "123456789"):
                raise RoutingError(f"rewrite replacement may only use $1-$9, not ${name}")

    @classmethod
    def strip_prefix(cls, prefix: str) -> Rewrite:
        """Drop `prefix` (ending in ``/``): ``/read/x`` reaches the worker as ``/x``."""
        return cls(f"^{prefix}(.*)$", "/$1")

    @classmethod
    def to(cls, path: str) -> Rewrite:
        """Send every request of the location to `path` (the query string kept)."""
        if not _PLAIN_PATH.fullmatch(path):
            raise RoutingError(f"invalid rewrite target {path!r}")
        return cls("^", path)


@dataclasses.dataclass(frozen=True)
class Extra:
    """The escape hatch: one more directive in a location, quoted and checked like the rest."""

    name: str
    args: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not _DIRECTIVE_NAME.fullmatch(self.name) or self.name in FORBIDDEN_EXTRAS:
            raise RoutingError(f"directive {self.name!r} is not allowed as an extra")
        for arg in self.args:
            _check_value(arg, f"argument of {self.name}")


@dataclasses.dataclass(frozen=True)
class ClientHeader:
    """A request header's value as the client sent it, or `default` when it sent none.

    Loki and Mimir need ``X-Scope-OrgID`` on every request; ``ClientHeader("X-Scope-OrgID",
    "anonymous")`` passes a tenant through and fills in ``anonymous`` otherwise.
    """

    name: str
    default: str

    def __post_init__(self) -> None:
        if not _HEADER_NAME.fullmatch(self.name):
            raise RoutingError(f"invalid header name {self.name!r}")
        if "$" in self.default or _CONTROL.search(self.default) or not self.default:
            raise RoutingError(f"invalid default for {self.name}: {self.default!r}")

    @property
    def source(self) -> str:
        """The nginx variable holding the client's header."""
        return "http_" + self.name.lower().replace("-", "_")

    @property
    def variable(self) -> str:
        """The variable the renderer's ``map`` fills: stable for equal headers and defaults."""
        digest = hashlib.sha256(self.default.encode()).hexdigest()[:8]
        return f"{self.source}_or_{digest}"


@dataclasses.dataclass(frozen=True)
class Location:
    """Requests matching `path` go to the workers serving `roles`, on `worker_port`.

    The path reaches the workers as the client sent it (query string included) unless a
    `rewrite` is given. Several roles pool every app serving any of them; requests spread
    evenly across the apps, and across each app's pods by DNS. With no app serving them the
    location answers 503 and says which roles are missing.
    """

    path: str
    roles: str | tuple[str, ...]
    """One role, or several (normalised to a sorted tuple)."""
    worker_port: int
    match: Match = Match.PREFIX
    rewrite: Rewrite | None = None
    headers: Mapping[str, str | ClientHeader] = dataclasses.field(
        default_factory=dict[str, "str | ClientHeader"]
    )
    """Request headers set towards the workers (``proxy_set_header`` / ``grpc_set_header``)."""
    client_max_body_size: str | None = None
    """e.g. ``"10m"``; nginx's default is 1m, ``"0"`` means no limit."""
    read_timeout: str | None = None
    """Between two reads from the worker, e.g. ``"300s"`` (http block default: 300s)."""
    send_timeout: str | None = None
    buffering: bool | None = None
    """False streams requests and responses (``proxy_buffering``/``proxy_request_buffering``)."""
    extra: tuple[Extra, ...] = ()
    relations: tuple[str, ...] = ()
    """Juju endpoints whose related apps may reach this path through the mesh (HTTP only)."""

    def __post_init__(self) -> None:
        roles = (self.roles,) if isinstance(self.roles, str) else tuple(self.roles)
        if not roles or any(not ROLE_NAME.fullmatch(role) for role in roles):
            raise RoutingError(f"invalid roles {roles!r} for {self.path!r}")
        object.__setattr__(self, "roles", tuple(sorted(set(roles))))
        object.__setattr__(self, "headers", dict(sorted(self.headers.items())))
        object.__setattr__(self, "relations", tuple(self.relations))
        object.__setattr__(self, "extra", tuple(self.extra))
        if self.match is Match.REGEX:
            if self.relations:
                raise RoutingError(
                    f"regex location {self.path}: Istio paths cannot express it; "
                    "give its port's relations (Server.relations)"
                )
            if not self.path.startswith("^"):
                raise RoutingError(f"regex location {self.path!r} must start with '^'")
            _check_regex(self.path, "regex location")
        elif not _PLAIN_PATH.fullmatch(self.path):
            raise RoutingError(f"invalid location path {self.path!r}")
        _check_port(self.worker_port, f"worker port of {self.path}")
        _check_headers(self.headers)
        for size in (self.client_max_body_size,):
            if size is not None and not _SIZE.fullmatch(size):
                raise RoutingError(f"invalid body size {size!r}")
        for timeout in (self.read_timeout, self.send_timeout):
            if timeout is not None and not _TIME.fullmatch(timeout):
                raise RoutingError(f"invalid timeout {timeout!r}")

    @property
    def role_names(self) -> tuple[str, ...]:
        """The roles, sorted and unique."""
        return self.roles if isinstance(self.roles, tuple) else (self.roles,)

    @property
    def key(self) -> str:
        """The location's match as nginx compares locations for duplicates."""
        return f"{self.match.value} {self.path}".strip()


@dataclasses.dataclass(frozen=True)
class TlsSettings:
    """How nginx speaks TLS to clients once the coordinator has a certificate.

    It applies to every server at once: a cluster either has a certificate or not, and
    clients learn the scheme from the relations (published URLs, scrape jobs), not per port.
    """

    protocols: tuple[str, ...] = ("TLSv1.2", "TLSv1.3")
    """``ssl_protocols``: TLS 1.2 and 1.3 (nginx's own default still allows 1.0 and 1.1)."""
    ciphers: str = "HIGH:!aNULL:!MD5"
    """``ssl_ciphers`` (OpenSSL's list format) for TLS 1.2; TLS 1.3 suites are OpenSSL's."""
    redirect_http: bool = True
    """Answer plain HTTP sent to a TLS port with a 308 to the same URL over https (nginx's
    ``error_page 497``), and serve such a redirect on the telemetry proxy's HTTP port."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "protocols", tuple(self.protocols))
        unknown = sorted(set(self.protocols) - TLS_PROTOCOLS)
        if not self.protocols or unknown:
            raise RoutingError(f"TLS protocols must be among {sorted(TLS_PROTOCOLS)}: {unknown}")
        if not _CIPHERS.fullmatch(self.ciphers):
            raise RoutingError(f"invalid cipher list {self.ciphers!r}")


@dataclasses.dataclass(frozen=True)
class Server:
    """One port nginx listens on, and the locations it serves.

    With a certificate, every server listens with ``ssl`` (see `TlsSettings`); the workers
    are still reached over plain HTTP (or h2c for gRPC) inside the cluster.
    """

    port: int
    locations: tuple[Location, ...] = ()
    protocol: Protocol = Protocol.HTTP
    health_check: bool = False
    """Answer ``location = /`` with 200 ``OK`` (HTTP only)."""
    headers: Mapping[str, str | ClientHeader] = dataclasses.field(
        default_factory=dict[str, "str | ClientHeader"]
    )
    """Headers for every location of the server; a location's own header of the same name wins
    (unlike nginx's inheritance, a location's headers never drop the server's)."""
    relations: tuple[str, ...] = ()
    """Juju endpoints whose related apps may reach every path of this port through the mesh."""

    def __post_init__(self) -> None:
        _check_port(self.port, "server port")
        object.__setattr__(self, "locations", tuple(self.locations))
        object.__setattr__(self, "relations", tuple(self.relations))
        object.__setattr__(self, "headers", dict(sorted(self.headers.items())))
        _check_headers(self.headers)
        keys = [location.key for location in self.locations]
        if self.health_check:
            keys.append("= /")
        duplicates = sorted({key for key in keys if keys.count(key) > 1})
        if duplicates:
            raise RoutingError(f"port {self.port}: duplicate locations {duplicates}")
        if self.protocol is Protocol.GRPC:
            self._check_grpc()

    def _check_grpc(self) -> None:
        if self.health_check:
            raise RoutingError(f"port {self.port}: a gRPC server has no HTTP health check")
        for location in self.locations:
            if location.rewrite is not None or location.buffering is not None:
                raise RoutingError(f"gRPC location {location.path}: no rewrite or buffering")
            if location.relations:
                raise RoutingError(
                    f"gRPC location {location.path}: mesh access is per port (Server.relations)"
                )

    def with_locations(self, locations: Iterable[Location]) -> Server:
        """This server with `locations` appended (checked for duplicates again)."""
        return dataclasses.replace(self, locations=(*self.locations, *locations))


def mesh_path(location: Location) -> str:
    """The Istio path pattern for `location`: exact paths as they are, prefixes with ``*``.

    (A regex location cannot carry relations: Istio paths cannot express it.)
    """
    if location.match is Match.EXACT:
        return location.path
    return location.path + "*"


def mesh_policies(servers: Sequence[Server]) -> list[AppPolicy]:
    """One `AppPolicy` per relation: the ports it may reach, and the paths on HTTP ports.

    Relations are sorted, ports ascending, paths sorted: equal servers give equal policies, so
    the mesh relation's databag is not rewritten. A relation that may reach a whole port gets
    no path rule on that port.
    """
    ports: dict[str, set[int]] = {}
    paths: dict[str, dict[int, set[str]]] = {}
    for server in servers:
        for relation in server.relations:
            ports.setdefault(relation, set()).add(server.port)
        for location in server.locations:
            for relation in location.relations:
                by_port = paths.setdefault(relation, {})
                by_port.setdefault(server.port, set()).add(mesh_path(location))
    policies: list[AppPolicy] = []
    for relation in sorted({*ports, *paths}):
        whole = ports.get(relation, set())
        endpoints = [Endpoint(ports=[port]) for port in sorted(whole)]
        endpoints += [
            Endpoint(ports=[port], paths=sorted(found))
            for port, found in sorted(paths.get(relation, {}).items())
            if port not in whole
        ]
        policies.append(AppPolicy(relation=relation, endpoints=endpoints))
    return policies


def variables_used(servers: Iterable[Server]) -> frozenset[str]:
    """The allowed nginx variables the servers' headers and extras refer to (without ``$``).

    Only names the model allows are returned, so the renderer's final check still refuses any
    other reference, even one in a value altered after it was checked.
    """
    found: set[str] = set()
    generated: set[str] = set()
    for server in servers:
        values: list[str | ClientHeader] = list(server.headers.values())
        extras: list[str] = []
        for location in server.locations:
            values += location.headers.values()
            extras += [arg for extra in location.extra for arg in extra.args]
        for value in values:
            if isinstance(value, ClientHeader):
                found.add(value.source)
                generated.add(value.variable)
            else:
                found |= _references(value)
        for arg in extras:
            found |= _references(arg)
    return frozenset(name for name in found if _allowed(name)) | generated


def _allowed(name: str) -> bool:
    return name in ALLOWED_VARIABLES or bool(_ALLOWED_FAMILIES.fullmatch(name))


def _references(text: str) -> set[str]:
    return {
        match["braced"] if match["braced"] is not None else match["name"]
        for match in _REFERENCE.finditer(text)
    }


def _check_headers(headers: Mapping[str, str | ClientHeader]) -> None:
    for name, value in headers.items():
        if not _HEADER_NAME.fullmatch(name):
            raise RoutingError(f"invalid header name {name!r}")
        if isinstance(value, str):
            _check_value(value, f"header {name}")


def _check_value(text: str, what: str) -> None:
    if _CONTROL.search(text):
        raise RoutingError(f"{what}: control characters in {text!r}")
    for name in _references(text):
        if not _allowed(name):
            raise RoutingError(f"{what}: variable ${name} is not allowed")


def _check_regex(pattern: str, what: str) -> None:
    if _REGEX_FORBIDDEN.search(pattern) or _CONTROL.search(pattern):
        raise RoutingError(f"{what} {pattern!r}: no spaces, quotes, braces or ';'")
    if "$" in pattern[:-1]:
        raise RoutingError(f"{what} {pattern!r}: '$' only as the final anchor")
    try:
        re.compile(pattern)
    except re.error as e:
        raise RoutingError(f"{what} {pattern!r}: {e}") from e


def _check_port(port: int, what: str) -> None:
    if not 1 <= port <= 65535:
        raise RoutingError(f"{what} {port} is not a port")
