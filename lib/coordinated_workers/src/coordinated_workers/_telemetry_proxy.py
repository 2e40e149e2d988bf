# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Worker telemetry proxy: workers send logs, metrics and traces through the coordinator.

Workers never talk to Loki, Prometheus or Tempo directly. The coordinator publishes URLs that
point at itself, and its nginx forwards each request to the real destination. That keeps every
worker's outbound traffic inside the solution, so a service mesh only needs to allow
worker -> coordinator instead of one policy per worker app on every telemetry backend.

This module is pure planning: `plan_proxy` turns the real telemetry URLs into the URLs
published to workers (`ProxyPlan.published`) and the routes nginx must serve
(`ProxyPlan.routes`). `coordinated_workers._nginx` renders the routes. The URL layout matches
the upstream coordinated-workers library, so workers and scrapers see the same paths:

- ``/proxy/loki/<loki-app>-<n>/push``: exact location, rewritten to the original push path;
- ``/proxy/remote-write/<host-label>/write``: exact location, rewritten to the original path;
- ``/proxy/charm-tracing/<protocol>/`` and ``/proxy/workload-tracing/<protocol>/``: prefix
  locations, the remainder appended to the receiver's base path;
- ``/proxy/worker/<app>-<n>/metrics``: one regex location for all worker units (see
  `WORKER_METRICS_LOCATION`), so scaling worker units never changes nginx.conf.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import ipaddress
import logging
import re
import urllib.parse
from typing import TYPE_CHECKING

from service_mesh import safe_text

from ._status import CoordinatedWorkersError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

logger = logging.getLogger(__name__)

JUJU_APP_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]*[a-z][a-z0-9]*)*$")
"""Juju application names: every dash-separated segment contains a letter."""

_UNIT_NAME = re.compile(r"^(?P<app>[a-z][a-z0-9]*(?:-[a-z0-9]*[a-z][a-z0-9]*)*)/(?P<n>[0-9]+)$")
_PROTOCOL = re.compile(r"^[a-z0-9_]+$")
_HOSTNAME = re.compile(
    r"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$"
)
# Characters that can appear in a URL path without meaning anything to nginx's config parser
# or to PCRE in a rewrite replacement ($, {, }, ;, quotes and spaces are all excluded).
_SAFE_PATH = re.compile(r"^[A-Za-z0-9._~/%:@!*+,=-]*$")
_DEFAULT_PORTS = {"http": 80, "https": 443}

WORKER_METRICS_LOCATION = (
    r"^/proxy/worker/(?<worker_app>[a-z][a-z0-9-]*)-(?<worker_unit>[0-9]+)/metrics$"
)
"""PCRE for nginx's worker-metrics location.

Juju app names never end in ``-<digits>`` (each segment needs a letter), so the greedy app
group backtracks to exactly the unit number. Named captures become the nginx variables
``$worker_app`` and ``$worker_unit``.
"""


@dataclasses.dataclass(frozen=True)
class WorkerTelemetryProxyConfig:
    """Ports the coordinator's nginx listens on for proxied worker telemetry."""

    http_port: int
    """Port used when the coordinator serves plain HTTP."""
    https_port: int | None = None
    """Port used once the coordinator has a certificate (None: `http_port`, then with TLS);
    `http_port` then redirects to it (`TlsSettings.redirect_http`)."""

    def port(self, tls: bool) -> int:
        """The port workers and scrapers must use, given whether the coordinator has TLS."""
        return self.https_port if tls and self.https_port is not None else self.http_port


@dataclasses.dataclass(frozen=True)
class TelemetryTargets:
    """Telemetry destinations, either the real ones or the proxied ones published to workers."""

    loki_push_urls: Mapping[str, str] = dataclasses.field(default_factory=dict[str, str])
    """Loki unit name (``loki/0``) -> push URL."""
    remote_write_urls: Sequence[str] = ()
    """Prometheus remote-write URLs."""
    charm_tracing: Mapping[str, str] = dataclasses.field(default_factory=dict[str, str])
    """Tracing protocol (``otlp_http``) -> receiver URL, for the workers' charm traces."""
    workload_tracing: Mapping[str, str] = dataclasses.field(default_factory=dict[str, str])
    """Tracing protocol -> receiver URL, for the workers' workload traces."""


@dataclasses.dataclass(frozen=True)
class ProxyRoute:
    """One nginx location of the telemetry proxy, as data.

    The renderer sets ``$backend`` to `upstream`, rewrites the URI, then ``proxy_pass
    $backend``. Going through a variable makes nginx resolve the host at request time with its
    ``resolver``, so a destination that moves (or does not exist yet) never breaks a reload.
    """

    location: str
    """Path on the coordinator, e.g. ``/proxy/loki/loki-0/push``."""
    exact: bool
    """True: ``location = <location>`` rewritten to `path`. False: prefix location whose
    remainder is appended to `path`."""
    upstream: str
    """Destination origin without a path, e.g. ``http://loki-0.loki-endpoints...:3100``."""
    path: str
    """Exact: the destination path. Prefix: the destination base path, no trailing slash."""


@dataclasses.dataclass(frozen=True)
class SkippedTarget:
    """A telemetry destination the proxy does not serve, and why."""

    kind: str
    """``loki``, ``remote-write``, ``charm-tracing`` or ``workload-tracing``."""
    key: str
    """The Loki unit, the remote-write URL or the tracing protocol."""
    reason: str


@dataclasses.dataclass(frozen=True)
class ProxyPlan:
    """What the coordinator publishes to workers and what nginx must serve for it."""

    published: TelemetryTargets
    """Proxied URLs to hand to workers. Skipped destinations are left out."""
    routes: tuple[ProxyRoute, ...]
    """nginx locations, sorted by location."""
    skipped: tuple[SkippedTarget, ...] = ()
    """Destinations not proxied (gRPC, malformed URLs), so a charm can report them."""


@dataclasses.dataclass(frozen=True)
class _Target:
    upstream: str
    host: str
    path: str


class _InvalidTargetError(CoordinatedWorkersError, ValueError):
    pass


def worker_metrics_path(unit_name: str) -> str:
    """Proxied metrics path of a worker unit: ``app/0`` -> ``/proxy/worker/app-0/metrics``.

    Raises:
        ValueError: `unit_name` is not a Juju unit name.
    """
    return f"/proxy/worker/{_dashed_unit(unit_name)}/metrics"


def plan_proxy(
    targets: TelemetryTargets, coordinator_host: str, port: int, scheme: str = "http"
) -> ProxyPlan:
    """Plan the proxy for the real telemetry `targets`.

    Args:
        targets: the real destinations, as the coordinator's relations report them.
        coordinator_host: the host workers reach the coordinator on (its Service FQDN).
        port: the proxy port (`WorkerTelemetryProxyConfig.port`).
        scheme: ``https`` when the coordinator serves TLS.

    Returns:
        The plan. Destinations that cannot be proxied are listed in `ProxyPlan.skipped` rather
        than raising: they come from remote apps and must not break the coordinator.
    """
    base = f"{scheme}://{coordinator_host}:{port}"
    routes: list[ProxyRoute] = []
    skipped: list[SkippedTarget] = []

    loki: dict[str, str] = {}
    for unit, url in sorted(targets.loki_push_urls.items()):
        try:
            location = f"/proxy/loki/{_dashed_unit(unit)}/push"
            target = _parse_http_url(url)
        except _InvalidTargetError as e:
            skipped.append(SkippedTarget("loki", unit, str(e)))
            continue
        routes.append(ProxyRoute(location, True, target.upstream, target.path))
        loki[unit] = base + location

    remote_write: list[str] = []
    for url, label in _remote_write_labels(targets.remote_write_urls, skipped).items():
        target = _parse_http_url(url)
        location = f"/proxy/remote-write/{label}/write"
        routes.append(ProxyRoute(location, True, target.upstream, target.path))
        remote_write.append(base + location)

    tracing: dict[str, dict[str, str]] = {}
    for kind, receivers in (
        ("charm-tracing", targets.charm_tracing),
        ("workload-tracing", targets.workload_tracing),
    ):
        tracing[kind] = {}
        for protocol, url in sorted(receivers.items()):
            try:
                target = _parse_tracing_receiver(protocol, url)
            except _InvalidTargetError as e:
                skipped.append(SkippedTarget(kind, protocol, str(e)))
                continue
            location = f"/proxy/{kind}/{protocol}/"
            routes.append(ProxyRoute(location, False, target.upstream, target.path.rstrip("/")))
            tracing[kind][protocol] = base + location

    for skip in skipped:
        logger.warning(
            "telemetry proxy skips %s %r: %s", skip.kind, safe_text(skip.key), skip.reason
        )
    published = TelemetryTargets(
        loki_push_urls=loki,
        remote_write_urls=tuple(sorted(remote_write)),
        charm_tracing=tracing["charm-tracing"],
        workload_tracing=tracing["workload-tracing"],
    )
    return ProxyPlan(
        published=published,
        routes=tuple(sorted(routes, key=lambda r: r.location)),
        skipped=tuple(skipped),
    )


def _dashed_unit(unit_name: str) -> str:
    match = _UNIT_NAME.match(unit_name)
    if not match:
        raise _InvalidTargetError(f"{safe_text(unit_name, 60)!r} is not a Juju unit name")
    return f"{match['app']}-{match['n']}"


def _parse_http_url(url: str) -> _Target:
    """Split an http(s) URL into origin and path, refusing anything nginx could misread.

    The host must be a DNS name or an IP literal without a zone id: Python's `ipaddress`
    accepts any zone text (``fe80::1%$evil``), and nginx would read a ``$`` in it as a
    variable. The path is limited to `_SAFE_PATH`.
    """
    try:
        parsed = urllib.parse.urlsplit(url)
        port = parsed.port
    except ValueError:
        raise _InvalidTargetError("malformed URL") from None
    if parsed.scheme not in _DEFAULT_PORTS:
        raise _InvalidTargetError(f"scheme {safe_text(parsed.scheme, 20)!r} is not http or https")
    host = parsed.hostname or ""
    if not _is_ip(host) and not _HOSTNAME.fullmatch(host):
        raise _InvalidTargetError(
            f"invalid host {safe_text(host, 60)!r}: not a DNS name or an IP without a zone id"
        )
    if parsed.username is not None or parsed.query or parsed.fragment:
        raise _InvalidTargetError("credentials, query strings and fragments cannot be proxied")
    if not _SAFE_PATH.fullmatch(parsed.path):
        raise _InvalidTargetError(f"unsupported characters in path {safe_text(parsed.path, 60)!r}")
    netloc_host = f"[{host}]" if ":" in host else host
    upstream = f"{parsed.scheme}://{netloc_host}:{port or _DEFAULT_PORTS[parsed.scheme]}"
    return _Target(upstream=upstream, host=host, path=parsed.path or "/")


def _parse_tracing_receiver(protocol: str, url: str) -> _Target:
    if not _PROTOCOL.match(protocol):
        raise _InvalidTargetError(f"invalid protocol name {safe_text(protocol, 40)!r}")
    if "grpc" in protocol:
        raise _InvalidTargetError("gRPC receivers cannot be proxied over HTTP/1.1")
    if "://" not in url:
        # Tempo publishes gRPC receivers as bare host:port.
        raise _InvalidTargetError(f"{safe_text(url, 60)!r} has no scheme (a gRPC receiver?)")
    return _parse_http_url(url)


def _is_ip(host: str) -> bool:
    """Whether `host` is an IP literal without a zone id (``%eth0``), which nginx cannot use."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return not isinstance(ip, ipaddress.IPv6Address) or ip.scope_id is None


def _host_label(host: str) -> str:
    """First DNS label of `host` (a whole IP address with dashes), safe for a URL path."""
    label = host if _is_ip(host) else host.split(".", 1)[0]
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-") or "host"


def _remote_write_labels(urls: Sequence[str], skipped: list[SkippedTarget]) -> dict[str, str]:
    """Map each valid remote-write URL to its path label, every label different.

    The label is the host's first DNS label; where two targets share it (two models'
    Prometheus ``prometheus-0``, or one host on two ports), the colliding URLs all get a
    suffix derived from the URL itself, which keeps every label stable whatever the other URLs
    are. A host may itself be named like another URL's suffixed label (``prom-<8 hex>``):
    labels still shared get longer suffixes, and a URL whose label is still taken after the
    full hash is skipped. The result depends only on the set of URLs, never on their order.
    """
    bases: dict[str, str] = {}
    for url in sorted(set(urls)):
        try:
            host = _parse_http_url(url).host
        except _InvalidTargetError as e:
            skipped.append(SkippedTarget("remote-write", url, str(e)))
            continue
        bases[url] = _host_label(host)
    counts = collections.Counter(bases.values())
    labels = {
        url: base if counts[base] == 1 else _suffixed(base, url, 8) for url, base in bases.items()
    }
    for digits in (16, 64):
        for url in _sharing_a_label(labels):
            labels[url] = _suffixed(bases[url], url, digits)
    taken: set[str] = set()
    for url in sorted(labels):
        if labels[url] in taken:
            skipped.append(SkippedTarget("remote-write", url, "its path label is taken"))
            del labels[url]
        else:
            taken.add(labels[url])
    return labels


def _suffixed(label: str, url: str, digits: int) -> str:
    return f"{label}-{hashlib.sha256(url.encode()).hexdigest()[:digits]}"


def _sharing_a_label(labels: Mapping[str, str]) -> list[str]:
    """The URLs whose label another URL has too, sorted."""
    counts = collections.Counter(labels.values())
    return sorted(url for url, label in labels.items() if counts[label] > 1)
