# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Tempo, Loki and Mimir's routing, expressed with the library and run in a live nginx.

The tables are in ``tests/support/products.py``. Each is rendered, checked with the real
``nginx -t``, compared with its golden copy in ``golden/`` and served by the host's nginx in
front of fake workers (one app per role; HTTP servers and gRPC servers on their own loopback
addresses) while every documented path and port is requested.

Production output is what runs: the upstreams are the worker apps' Service names, resolved
per request through ``resolver``; here that resolver is a small DNS server answering each
Service name with its fake worker's loopback address (127.0.0.N). Only the port numbers are
remapped to free ones, through the products' ``listen`` and ``worker`` arguments.

Regenerate the golden files (then review the diff) with:

    UPDATE_GOLDEN=1 uv run --group unit pytest lib/coordinated_workers/tests/routing
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import http.server
import json
import os
import pathlib
import ssl
import threading
import urllib.error
import urllib.request
from concurrent import futures
from typing import TYPE_CHECKING, Any

import grpc
import pytest

from coordinated_workers._nginx import NginxInputs, render
from coordinated_workers._routing import TlsSettings
from coordinated_workers._telemetry_proxy import worker_metrics_path
from tests.support.live_nginx import (
    FakeDns,
    free_port,
    nginx_t,
    running,
    runtime_dir,
    write_config,
)
from tests.support.pki import CA
from tests.support.products import PRODUCTS, Product, same

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

GOLDEN = pathlib.Path(__file__).parent / "golden"
PROXY_HTTP_PORT = 3301
"""The proxy's plain port in the TLS tests (its https port is the product's proxy port)."""
MODEL = "cos"


def inputs(
    product: Product, *, resolver: str = "10.152.183.10", extra_apps: int = 0, **overrides: Any
) -> NginxInputs:
    """The coordinator's nginx inputs for `product`, one worker app per role."""
    workers = product.workers_by_role(extra_apps)
    fields: dict[str, Any] = {
        "model": MODEL,
        "api_port": product.api_port,
        "routes": (),
        "servers": product.servers,
        "workers_by_role": workers,
        "resolver": resolver,
        "proxy_port": product.proxy_port,
        "worker_apps": sorted({app for apps in workers.values() for app in apps}),
        "worker_metrics_port": product.metrics_port,
    }
    fields.update(overrides)
    return NginxInputs(**fields)


# --- golden files and nginx -t ------------------------------------------------------------------


@pytest.mark.parametrize("name", PRODUCTS)
def test_rendered_product_matches_its_golden_file(name: str):
    text = render(inputs(PRODUCTS[name]())).text
    golden = GOLDEN / f"{name}.conf"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.write_text(text)
    assert text == golden.read_text(), (
        f"{name}'s nginx.conf changed; if intended, regenerate with "
        "`UPDATE_GOLDEN=1 uv run --group unit pytest lib/coordinated_workers/tests/routing`"
    )


def write(config: NginxInputs, directory: pathlib.Path) -> pathlib.Path:
    runtime = runtime_dir(directory)
    return write_config(directory, render(dataclasses.replace(config, runtime_dir=runtime)).text)


@pytest.mark.parametrize("extra_apps", [0, 200])
@pytest.mark.parametrize("name", PRODUCTS)
def test_rendered_product_passes_nginx_t(
    name: str, extra_apps: int, nginx_binary: str, tmp_path: pathlib.Path
):
    config = write(inputs(PRODUCTS[name](), extra_apps=extra_apps), tmp_path)
    result = nginx_t(nginx_binary, config)
    assert result.returncode == 0, result.stderr


# --- scaling -----------------------------------------------------------------------------------


def _without_pools(text: str) -> list[str]:
    """The config without its ``split_clients`` blocks and worker-metrics allowlist."""
    kept: list[str] = []
    skipping = False
    for line in text.splitlines():
        if line.startswith("    split_clients ") or line.startswith("    map $worker_app "):
            skipping = True
        elif skipping and line == "    }":
            skipping = False
        elif not skipping:
            kept.append(line)
    return kept


@pytest.mark.parametrize("name", PRODUCTS)
def test_adding_a_worker_app_adds_only_its_upstream_entries(name: str):
    product = PRODUCTS[name]()
    before = render(inputs(product, extra_apps=2)).text
    after = render(inputs(product, extra_apps=3)).text
    added = [
        line[1:]
        for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="")
        if line.startswith("+") and not line.startswith("+++")
    ]
    assert added
    assert all(f"{name}-pool002" in line or "%" in line for line in added), added
    assert _without_pools(before) == _without_pools(after)


@pytest.mark.parametrize("name", PRODUCTS)
def test_rendering_needs_no_unit_and_is_stable(name: str):
    """Units are not an input at all: equal apps render equal bytes, in any order."""
    product = PRODUCTS[name]()
    first = render(inputs(product)).text
    reversed_roles = {
        role: apps[::-1] for role, apps in reversed(product.workers_by_role(1).items())
    }
    assert (
        render(inputs(product, extra_apps=1)).text
        == render(inputs(product, workers_by_role=reversed_roles, extra_apps=1)).text
    )
    assert render(inputs(product)).text == first


# --- the live run ------------------------------------------------------------------------------


def _http_worker(app: str) -> type[http.server.BaseHTTPRequestHandler]:
    class Worker(http.server.BaseHTTPRequestHandler):
        """Answers with its app and the path and headers it received."""

        def _answer(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen = {
                "app": app,
                "path": self.path,
                "tenant": self.headers.get("X-Scope-OrgID"),
                "upgrade": self.headers.get("Upgrade"),
                "connection": self.headers.get("Connection"),
            }
            body = json.dumps(seen).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer  # noqa: N815 (http.server's names)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    return Worker


class _GrpcWorker(grpc.GenericRpcHandler):
    """Answers every unary method with its app and the method (the path) it received."""

    def __init__(self, app: str) -> None:
        self.app = app

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        method = handler_call_details.method
        metadata = dict(handler_call_details.invocation_metadata)

        def answer(_request: bytes, _context: grpc.ServicerContext) -> bytes:
            tenant = metadata.get("x-scope-orgid")
            return json.dumps({"app": self.app, "path": method, "tenant": tenant}).encode()

        return grpc.unary_unary_rpc_method_handler(answer)


class _Ports:
    """Documented port -> a free one, the same each time it is asked.

    Maps sharing `taken` never hand out one number twice: nginx listening on all addresses and
    a fake worker on 127.0.0.N could not both bind it.
    """

    def __init__(self, taken: set[int]) -> None:
        self.ports: dict[int, int] = {}
        self.taken = taken

    def __call__(self, documented: int) -> int:
        if documented not in self.ports:
            port = free_port()
            while port in self.taken:
                port = free_port()
            self.taken.add(port)
            self.ports[documented] = port
        return self.ports[documented]


@dataclasses.dataclass
class _Cluster:
    product: Product
    listen: _Ports
    addresses: dict[str, str]
    """Worker app -> its loopback address."""


@contextlib.contextmanager
def _fake_workers(
    product: Product, worker: _Ports, apps_by_role: dict[str, list[str]]
) -> Iterator[dict[str, str]]:
    """Start every app's fake servers on its own 127.0.0.N; yield app -> address."""
    apps = sorted({app for apps in apps_by_role.values() for app in apps})
    addresses = {app: f"127.0.0.{10 + i}" for i, app in enumerate(apps)}
    stops: list[Callable[[], object]] = []
    try:
        for role, role_apps in sorted(apps_by_role.items()):
            for app in role_apps:
                for documented in product.worker_ports[role]:
                    key = (addresses[app], worker(documented))
                    if documented in product.grpc_ports:
                        server = grpc.server(
                            futures.ThreadPoolExecutor(4), handlers=[_GrpcWorker(app)]
                        )
                        server.add_insecure_port(f"{key[0]}:{key[1]}")
                        server.start()
                        stops.append(lambda s=server: s.stop(None).wait(5))
                    else:
                        httpd = http.server.ThreadingHTTPServer(key, _http_worker(app))
                        threading.Thread(target=httpd.serve_forever, daemon=True).start()
                        stops.append(lambda h=httpd: (h.shutdown(), h.server_close()))
        yield addresses
    finally:
        for stop in stops:
            stop()


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _call(port: int, method: str) -> dict[str, Any]:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        reply = channel.unary_unary(method)(b"", timeout=10)
    return json.loads(reply)


@contextlib.contextmanager
def _live(
    product_factory: Callable[..., Product],
    nginx_binary: str,
    tmp_path: pathlib.Path,
    apps_by_role: Callable[[Product], dict[str, list[str]]] | None = None,
    certs_dir: pathlib.Path | None = None,
) -> Iterator[_Cluster]:
    """The product's nginx in front of its fake workers; with `certs_dir`, over TLS."""
    taken: set[int] = set()
    listen, worker = _Ports(taken), _Ports(taken)
    product = product_factory(listen, worker)
    by_role = product.workers_by_role() if apps_by_role is None else apps_by_role(product)
    with _fake_workers(product, worker, by_role) as addresses:
        names: dict[str, str] = {}
        for app, address in addresses.items():
            service = f"{app}-endpoints.{MODEL}.svc.cluster.local"
            names |= {service: address, f"{app}-0.{service}": address}  # the Service, a pod
        tls: dict[str, Any] = {}
        if certs_dir is not None:
            tls = {
                "tls": TlsSettings(),
                "certs_dir": str(certs_dir),
                "proxy_http_port": listen(PROXY_HTTP_PORT),
            }
        with FakeDns(names.get) as dns:
            config = inputs(
                product,
                resolver=f"127.0.0.1:{dns.port}",
                workers_by_role=by_role,
                ipv6=False,
                worker_metrics_port=worker(product.metrics_port),
                **tls,
            )
            with running(nginx_binary, write(config, tmp_path), [product.api_port]):
                yield _Cluster(product, listen, addresses)


@pytest.mark.parametrize("name", PRODUCTS)
def test_every_documented_path_and_port_reaches_its_role_in_a_live_nginx(
    name: str, nginx_binary: str, tmp_path: pathlib.Path
):
    with _live(PRODUCTS[name], nginx_binary, tmp_path) as cluster:
        product = cluster.product
        assert product.routes
        for route in product.routes:
            port = cluster.listen(route.port)
            if route.grpc:
                seen = _call(port, route.path)
            else:
                code, body = _get(f"http://127.0.0.1:{port}{route.path}")
                assert code == 200, (route, body)
                seen = json.loads(body)
            expected = (
                {product.app(r) for r in product.roles}
                if route.role == "*"
                else {product.app(route.role)}
            )
            assert seen["app"] in expected, route
            assert seen["path"] == route.worker_path, route
        if any(server.health_check for server in product.servers):
            assert _get(f"http://127.0.0.1:{product.api_port}/") == (200, b"OK\n")
        # the telemetry proxy's port: each worker unit's /metrics, through its pod's name
        for role in product.roles:
            app = product.app(role)
            url = f"http://127.0.0.1:{product.proxy_port}{worker_metrics_path(app + '/0')}"
            code, body = _get(url)
            assert code == 200, (url, body)
            assert (json.loads(body)["app"], json.loads(body)["path"]) == (app, "/metrics")


def _first_http(product: Product, role: str) -> str:
    return next(r.path for r in product.routes if r.role == role and not r.grpc)


@pytest.mark.parametrize("name", ["loki", "mimir"])
def test_tenant_header_is_passed_through_or_defaulted_everywhere(
    name: str, nginx_binary: str, tmp_path: pathlib.Path
):
    with _live(PRODUCTS[name], nginx_binary, tmp_path) as cluster:
        product = cluster.product
        for route in product.routes:
            url = f"http://127.0.0.1:{cluster.listen(route.port)}{route.path}"
            assert json.loads(_get(url)[1])["tenant"] == "anonymous", route
            tenant = json.loads(_get(url, {"X-Scope-OrgID": "team-a"})[1])["tenant"]
            assert tenant == "team-a", route


def test_loki_websocket_paths_get_upgrade_headers_and_the_tenant(
    nginx_binary: str, tmp_path: pathlib.Path
):
    with _live(PRODUCTS["loki"], nginx_binary, tmp_path) as cluster:
        base = f"http://127.0.0.1:{cluster.listen(3100)}"
        for path in ("/loki/api/v1/tail", "/loki/api/v1/query"):
            seen = json.loads(_get(base + path, {"Upgrade": "websocket"})[1])
            assert (seen["upgrade"], seen["connection"]) == ("websocket", "upgrade"), path
            assert seen["tenant"] == "anonymous"
        seen = json.loads(_get(base + "/loki/api/v1/push")[1])
        assert (seen["upgrade"], seen["connection"]) == (None, None)


def test_a_role_nobody_serves_answers_503_over_http_and_grpc(
    nginx_binary: str, tmp_path: pathlib.Path
):
    def without_distributor(product: Product) -> dict[str, list[str]]:
        by_role = product.workers_by_role()
        del by_role["distributor"]
        return by_role

    with _live(PRODUCTS["tempo"], nginx_binary, tmp_path, without_distributor) as cluster:
        code, body = _get(f"http://127.0.0.1:{cluster.listen(4318)}/v1/traces")
        assert (code, body) == (503, b"no worker app serves role distributor\n")
        with pytest.raises(grpc.RpcError) as failed:
            _call(
                cluster.listen(4317), "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
            )
        assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
        # the query path still works
        seen = _call(cluster.listen(9096), "/tempopb.StreamingQuerier/Search")
        assert seen["app"] == "tempo-query-frontend"


def test_a_role_served_by_several_apps_spreads_across_them_over_http_and_grpc(
    nginx_binary: str, tmp_path: pathlib.Path
):
    def two_frontends(product: Product) -> dict[str, list[str]]:
        by_role = product.workers_by_role()
        by_role["query-frontend"] = ["tempo-query-frontend", "tempo-query-frontend-b"]
        return by_role

    with _live(PRODUCTS["tempo"], nginx_binary, tmp_path, two_frontends) as cluster:
        http_apps = {
            json.loads(_get(f"http://127.0.0.1:{cluster.listen(3200)}/api/echo")[1])["app"]
            for _ in range(40)
        }
        grpc_apps = {
            _call(cluster.listen(9096), "/tempopb.StreamingQuerier/Search")["app"]
            for _ in range(40)
        }
    assert http_apps == grpc_apps == {"tempo-query-frontend", "tempo-query-frontend-b"}


def test_the_product_factories_default_to_the_documented_ports():
    assert same(3100) == 3100
    assert PRODUCTS["loki"]().api_port == 3100
    assert {s.port for s in PRODUCTS["tempo"]().servers} == {
        3200,
        9096,
        4317,
        4318,
        9411,
        14250,
        14268,
    }


# --- TLS ---------------------------------------------------------------------------------------


def _https(url: str, context: ssl.SSLContext) -> tuple[int, bytes]:
    request = urllib.request.Request(url)
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _redirect(url: str) -> tuple[int, str]:
    """The status and Location of a plain-HTTP answer, without following it."""
    try:
        urllib.request.build_opener(_NoRedirect).open(url, timeout=10)
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Location", "")
    raise AssertionError(f"{url} answered without a redirect")


def test_tls_serves_the_api_and_the_proxy_to_a_client_trusting_only_the_ca(
    nginx_binary: str, tmp_path: pathlib.Path
):
    ca, other = CA("cluster-ca"), CA("someone-else")
    issued = ca.issue("127.0.0.1", "localhost")
    certs = tmp_path / "certs"
    certs.mkdir()
    (certs / "server.cert").write_text(issued.cert + "\n")
    (certs / "server.key").write_text(issued.key + "\n")
    (tmp_path / "ca.pem").write_text(ca.pem + "\n")
    (tmp_path / "other.pem").write_text(other.pem + "\n")
    trusting = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    wrong = ssl.create_default_context(cafile=str(tmp_path / "other.pem"))
    with _live(PRODUCTS["tempo"], nginx_binary, tmp_path, certs_dir=certs) as cluster:
        api, proxy = cluster.listen(3200), cluster.product.proxy_port
        code, body = _https(f"https://127.0.0.1:{api}/api/echo", trusting)
        assert code == 200 and json.loads(body)["app"] == "tempo-query-frontend"
        metrics = worker_metrics_path("tempo-ingester/0")
        code, body = _https(f"https://127.0.0.1:{proxy}{metrics}", trusting)
        assert code == 200 and json.loads(body) == {
            "app": "tempo-ingester",
            "path": "/metrics",
            "tenant": None,
            "upgrade": None,
            "connection": None,
        }
        # gRPC over TLS too (the servers are all-or-nothing).
        credentials = grpc.ssl_channel_credentials(root_certificates=ca.pem.encode())
        with grpc.secure_channel(f"127.0.0.1:{cluster.listen(9096)}", credentials) as channel:
            reply = channel.unary_unary("/tempopb.StreamingQuerier/Search")(b"", timeout=10)
        assert json.loads(reply)["app"] == "tempo-query-frontend"
        # A client that trusts another CA refuses the server.
        for port in (api, proxy):
            with pytest.raises(urllib.error.URLError) as refused:
                _https(f"https://127.0.0.1:{port}/", wrong)
            assert isinstance(refused.value.reason, ssl.SSLCertVerificationError)
        # Plain HTTP is redirected to the same URL over https, on the API's port and from
        # the proxy's plain port to its https one.
        assert _redirect(f"http://127.0.0.1:{api}/api/echo?x=1") == (
            308,
            f"https://127.0.0.1:{api}/api/echo?x=1",
        )
        plain = cluster.listen(PROXY_HTTP_PORT)
        assert _redirect(f"http://127.0.0.1:{plain}{metrics}") == (
            308,
            f"https://127.0.0.1:{proxy}{metrics}",
        )


def test_tls_settings_are_refused_when_nginx_could_not_read_them():
    with pytest.raises(ValueError, match="TLS protocols"):
        TlsSettings(protocols=("SSLv3",))
    with pytest.raises(ValueError, match="cipher list"):
        TlsSettings(ciphers="HIGH; include /etc/passwd")
    with pytest.raises(ValueError, match="cipher list"):
        TlsSettings(ciphers="HIGH\n")  # a `$` anchor alone would let the newline through
    text = render(inputs(PRODUCTS["tempo"](), tls=TlsSettings(protocols=("TLSv1.3",)))).text
    assert "    ssl_protocols TLSv1.3;\n" in text
    assert "    ssl_certificate /etc/nginx/certs/server.cert;\n" in text
    assert "listen 3200 ssl;" in text and "listen 9096 ssl http2;" in text
