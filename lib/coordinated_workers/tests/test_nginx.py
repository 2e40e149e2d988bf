# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""nginx.conf rendering (checked by a real `nginx -t`), Pebble layers and the reconcilers."""

from __future__ import annotations

import dataclasses
import http.server
import os
import threading
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any, ClassVar, cast

import crossplane
import ops
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ops import testing

from coordinated_workers._nginx import (
    ExporterWorkload,
    NginxConfigError,
    NginxConfigRejectedError,
    NginxInputs,
    NginxReloadError,
    NginxWorkload,
    NoNameserverError,
    RoleRoute,
    config_tree,
    exporter_layer,
    nginx_layer,
    render,
    render_config,
    resolver_from_resolv_conf,
    stub_status_url,
)
from coordinated_workers._nginx_check import check_tree
from coordinated_workers._nginx_text import Directive, build
from coordinated_workers._nginx_text import directive as nginx_directive
from coordinated_workers._telemetry_proxy import (
    ProxyPlan,
    ProxyRoute,
    TelemetryTargets,
    plan_proxy,
    worker_metrics_path,
)
from tests.support.live_nginx import (
    FakeDns,
    assert_nginx_accepts,
    free_port,
    runtime_dir,
    serving,
    write_config,
)

if TYPE_CHECKING:
    import pathlib
    from collections.abc import Callable, Iterator

ROUTES = (RoleRoute("/read", "read", 8080), RoleRoute("/write", "write", 8080))
TARGETS = TelemetryTargets(
    loki_push_urls={
        "loki/0": "http://loki-0.loki-endpoints.cos.svc.cluster.local:3100/loki/api/v1/push",
        "loki/1": "http://10.1.2.4:3100/loki/api/v1/push",
    },
    remote_write_urls=(
        "http://prometheus-0.prometheus-endpoints.cos.svc.cluster.local:9090/api/v1/write",
        "http://prometheus-0.prometheus-endpoints.other.svc.cluster.local:9090/api/v1/write",
        "http://10.1.2.3:9090/api/v1/write",
        "http://[fd00::1]:9090/api/v1/write",
    ),
    charm_tracing={
        "otlp_http": "http://tempo.cos.svc.cluster.local:4318",
        "otlp_grpc": "tempo.cos.svc.cluster.local:4317",
    },
    workload_tracing={"zipkin": "https://tempo.cos.svc.cluster.local:9411/zipkin/"},
)


def _inputs(**overrides: Any) -> NginxInputs:
    fields: dict[str, Any] = {
        "model": "test",
        "api_port": 8080,
        "routes": ROUTES,
        "workers_by_role": {"read": ["worker"], "write": ["worker"]},
        "resolver": "10.152.183.10",
        "worker_apps": ["worker"],
    }
    fields.update(overrides)
    return NginxInputs(**fields)


def _with_proxy(**overrides: Any) -> NginxInputs:
    plan = plan_proxy(TARGETS, "coordinator.test.svc.cluster.local", 8081)
    return _inputs(proxy_port=8081, proxy=plan, **overrides)


MANY_APPS = [f"worker-{chr(97 + i % 26)}{i:03d}-with-a-rather-long-name" for i in range(200)]

CASES = {
    "no workers": _inputs(workers_by_role={}, worker_apps=[]),
    "one app per role": _inputs(
        workers_by_role={"read": ["reader"], "write": ["writer"]}, worker_apps=["reader", "writer"]
    ),
    "several apps per role": _inputs(
        workers_by_role={"read": ["r1", "r2", "r3"], "write": ["w1", "w2"]},
        worker_apps=["r1", "r2", "r3", "w1", "w2"],
    ),
    "meta role expanded": _inputs(
        workers_by_role={"read": ["all-in-one", "reader"], "write": ["all-in-one"]},
        worker_apps=["all-in-one", "reader"],
    ),
    "proxy without telemetry": _inputs(proxy_port=8081),
    "proxy with loki, remote write and tracing": _with_proxy(),
    "proxy on the api port": _inputs(
        proxy_port=8080, proxy=plan_proxy(TARGETS, "coordinator", 8080)
    ),
    "ip targets only": _inputs(
        proxy_port=8081,
        proxy=plan_proxy(
            TelemetryTargets(
                loki_push_urls={"loki/0": "http://10.0.0.7:3100/loki/api/v1/push"},
                remote_write_urls=["http://10.0.0.8:9090/api/v1/write"],
                workload_tracing={"otlp_http": "http://10.0.0.9:4318"},
            ),
            "10.0.0.1",
            8081,
        ),
    ),
    "app named like a map keyword": _with_proxy(
        workers_by_role={"read": ["default", "include"]}, worker_apps=["default", "include"]
    ),
    "200 worker apps": _with_proxy(
        workers_by_role={"read": MANY_APPS, "write": MANY_APPS[:100]}, worker_apps=MANY_APPS
    ),
    "route at the root": _inputs(routes=[RoleRoute("/", "read", 8080)]),
    "ipv4 only, ipv6 resolver": _with_proxy(ipv6=False, resolver="[fd00::10]"),
}


# --- running the real nginx -----------------------------------------------------------------


def _write(inputs: NginxInputs, directory: pathlib.Path) -> pathlib.Path:
    """Render into `directory`, with pid and temp paths there too so runs never collide."""
    runtime = runtime_dir(directory)
    return write_config(directory, render_config(dataclasses.replace(inputs, runtime_dir=runtime)))


def _parse(config: pathlib.Path) -> list[dict[str, Any]]:
    parse = cast(
        "Callable[..., dict[str, Any]]",
        crossplane.parse,
    )
    payload = parse(str(config), single=True)
    assert payload["status"] == "ok", payload["errors"]
    return _without_line_numbers(payload["config"][0]["parsed"])


def _without_line_numbers(block: list[dict[str, Any]]) -> list[dict[str, Any]]:
    stripped: list[dict[str, Any]] = []
    for statement in block:
        statement = {k: v for k, v in statement.items() if k != "line"}
        if "block" in statement:
            statement["block"] = _without_line_numbers(statement["block"])
        stripped.append(statement)
    return stripped


def _statement_key(statement: dict[str, Any]) -> tuple[Any, ...]:
    key: tuple[Any, ...] = (statement["directive"], tuple(statement["args"]))
    if statement["directive"] == "server":
        listens = [tuple(s["args"]) for s in statement["block"] if s["directive"] == "listen"]
        key += (tuple(listens),)
    return key


def _duplicates(block: list[dict[str, Any]], path: str = "") -> list[str]:
    found: list[str] = []
    seen: set[tuple[Any, ...]] = set()
    for statement in block:
        key = _statement_key(statement)
        if key in seen:
            found.append(f"{path}/{' '.join(map(str, key))}")
        seen.add(key)
        if "block" in statement:
            found += _duplicates(statement["block"], f"{path}/{statement['directive']}")
    return found


def _walk(block: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for statement in block:
        yield statement
        yield from _walk(statement.get("block", []))


def _locations(parsed: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    return {" ".join(s["args"]): s["block"] for s in _walk(parsed) if s["directive"] == "location"}


@pytest.mark.parametrize("case", CASES)
def test_rendered_config_passes_nginx_t(case: str, nginx_binary: str, tmp_path: pathlib.Path):
    assert_nginx_accepts(nginx_binary, _write(CASES[case], tmp_path))


@pytest.mark.parametrize("case", CASES)
def test_rendered_config_has_no_duplicates(case: str, tmp_path: pathlib.Path):
    assert _duplicates(_parse(_write(CASES[case], tmp_path))) == []


def test_every_listen_port_has_one_server(tmp_path: pathlib.Path):
    parsed = _parse(_write(_with_proxy(), tmp_path))
    listens = [tuple(s["args"]) for s in _walk(parsed) if s["directive"] == "listen"]
    assert sorted(listens) == sorted(
        [("8080",), ("[::]:8080",), ("8081",), ("[::]:8081",), ("127.0.0.1:8082",)]
    )
    single = _parse(_write(CASES["proxy on the api port"], tmp_path))
    assert sum(s["directive"] == "server" for s in _walk(single)) == 2


def test_top_level_keeps_state_under_the_runtime_dir_and_logs_to_stderr():
    text = render_config(_inputs())
    assert "pid /tmp/nginx.pid;" in text
    assert "error_log /dev/stderr error;" in text
    assert "access_log /dev/stderr main if=$loggable;" in text
    assert "resolver 10.152.183.10 valid=10s;" in text
    assert "mime.types" not in text
    for directive in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        assert f"{directive}_temp_path /tmp/" in text


# --- routing -------------------------------------------------------------------------------


def test_one_app_per_role_proxies_to_its_headless_service_through_a_variable(
    tmp_path: pathlib.Path,
):
    locations = _locations(_parse(_write(CASES["one app per role"], tmp_path)))
    assert locations["/read/"] == [
        _stmt("set", "$backend", "http://reader-endpoints.test.svc.cluster.local:8080"),
        _stmt("rewrite", "^/read/(.*)$", "/$1", "break"),
        _stmt("proxy_pass", "$backend"),
        _stmt("proxy_http_version", "1.1"),
        _stmt("proxy_set_header", "Connection", ""),
    ]
    assert locations["= /"] == [
        _stmt("default_type", "text/plain"),
        _stmt("return", "200", "OK\\n"),  # crossplane keeps nginx's escape as written
    ]


def test_several_apps_per_role_are_picked_per_request(tmp_path: pathlib.Path):
    parsed = _parse(_write(CASES["several apps per role"], tmp_path))
    splits = {
        tuple(s["args"]): [(b["directive"], *b["args"]) for b in s["block"]]
        for s in _walk(parsed)
        if s["directive"] == "split_clients"
    }
    host = "{}-endpoints.test.svc.cluster.local"
    assert splits == {
        ("$request_id", "$role_read_host"): [
            ("33.33%", host.format("r1")),
            ("33.33%", host.format("r2")),
            ("*", host.format("r3")),
        ],
        ("$request_id", "$role_write_host"): [
            ("50.00%", host.format("w1")),
            ("*", host.format("w2")),
        ],
    }
    assert _locations(parsed)["/read/"][0] == _stmt(
        "set", "$backend", "http://$role_read_host:8080"
    )


def test_role_without_apps_answers_503_with_a_reason(tmp_path: pathlib.Path):
    locations = _locations(_parse(_write(CASES["no workers"], tmp_path)))
    assert locations["/write/"] == [
        _stmt("default_type", "text/plain"),
        _stmt("return", "503", "no worker app serves role write\\n"),
    ]


def test_status_page_is_loopback_only(tmp_path: pathlib.Path):
    parsed = _parse(_write(_inputs(status_port=9999), tmp_path))
    (status_server,) = [
        s for s in _walk(parsed) if s["directive"] == "server" and "9999" in str(s["block"])
    ]
    assert status_server["block"] == [
        _stmt("listen", "127.0.0.1:9999"),
        {
            "directive": "location",
            "args": ["=", "/status"],
            "block": [_stmt("stub_status"), _stmt("allow", "127.0.0.1"), _stmt("deny", "all")],
        },
    ]
    assert stub_status_url(9999) == "http://127.0.0.1:9999/status"


def test_telemetry_routes_become_locations(tmp_path: pathlib.Path):
    locations = _locations(_parse(_write(_with_proxy(), tmp_path)))
    assert locations["= /proxy/loki/loki-1/push"] == [
        _stmt("set", "$backend", "http://10.1.2.4:3100"),
        _stmt("rewrite", "^", "/loki/api/v1/push", "break"),
        _stmt("proxy_pass", "$backend"),
        _stmt("proxy_http_version", "1.1"),
        _stmt("proxy_set_header", "Connection", ""),
    ]
    assert locations["/proxy/workload-tracing/zipkin/"] == [
        _stmt("set", "$backend", "https://tempo.cos.svc.cluster.local:9411"),
        _stmt("rewrite", "^/proxy/workload-tracing/zipkin/(.*)$", "/zipkin/$1", "break"),
        _stmt("proxy_pass", "$backend"),
        _stmt("proxy_http_version", "1.1"),
        _stmt("proxy_set_header", "Connection", ""),
        _stmt("proxy_ssl_server_name", "on"),
    ]
    assert "= /proxy/remote-write/10-1-2-3/write" in locations
    assert "= /proxy/remote-write/fd00-1/write" in locations
    assert not any("grpc" in location for location in locations)


def test_every_proxy_location_forces_http_1_1(tmp_path: pathlib.Path):
    for location, block in _locations(_parse(_write(_with_proxy(), tmp_path))).items():
        if any(s["directive"] == "proxy_pass" for s in block):
            assert _stmt("proxy_http_version", "1.1") in block, location
            assert _stmt("proxy_set_header", "Connection", "") in block, location


def test_worker_metrics_is_one_guarded_regex_location(tmp_path: pathlib.Path):
    parsed = _parse(_write(_with_proxy(worker_apps=["worker", "default"]), tmp_path))
    regex_locations = {k: v for k, v in _locations(parsed).items() if k.startswith("~")}
    assert len(regex_locations) == 1
    (block,) = regex_locations.values()
    assert block[0]["directive"] == "if"
    assert block[0]["args"] == ["$worker_metrics_allowed", "=", "0"]
    assert block[1] == _stmt(
        "set",
        "$backend",
        "http://$worker_app-$worker_unit.$worker_app-endpoints.test.svc.cluster.local:8080",
    )
    (allowlist,) = [s for s in _walk(parsed) if s["args"][:1] == ["$worker_app"]]
    assert [(s["directive"], s["args"]) for s in allowlist["block"]] == [
        ("default", ["0"]),
        ("\\default", ["1"]),
        ("worker", ["1"]),
    ]


def test_invalid_app_names_from_relation_data_are_dropped():
    text = render_config(
        _with_proxy(
            workers_by_role={"read": ["ok", "Bad;name", "x-1", "evil}"]},
            worker_apps=["ok", "$host", "a b"],
        )
    )
    assert render_config(_with_proxy(workers_by_role={"read": ["ok"]}, worker_apps=["ok"])) == text


# --- stability --------------------------------------------------------------------------------


def test_rendering_is_deterministic_and_ignores_input_order():
    several = CASES["several apps per role"]
    shuffled = dataclasses.replace(
        several,
        routes=list(reversed(several.routes)),
        workers_by_role={
            role: list(reversed(apps))
            for role, apps in reversed(list(several.workers_by_role.items()))
        },
        worker_apps=list(reversed(several.worker_apps)),
    )
    assert render_config(several) == render_config(several)
    assert render_config(shuffled) == render_config(several)


def _inputs_for(units: list[str]) -> NginxInputs:
    """What a coordinator derives from its cluster: only the apps behind the units matter."""
    apps = sorted({unit.split("/")[0] for unit in units})
    return _with_proxy(workers_by_role={"read": apps, "write": apps}, worker_apps=apps)


def test_adding_a_worker_unit_keeps_the_config_and_adding_an_app_changes_it():
    before = render_config(_inputs_for(["worker/0"]))
    assert render_config(_inputs_for(["worker/0", "worker/1", "worker/7"])) == before
    after = render_config(_inputs_for(["worker/0", "other/0"]))
    assert after != before
    assert "other-endpoints.test.svc.cluster.local" in after
    assert "        other 1;\n" in after


# --- inputs and helpers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "resolver"),
    [
        (
            "search cos.svc.cluster.local svc.cluster.local\nnameserver 10.152.183.10\n"
            "options ndots:5\n",
            "10.152.183.10",
        ),
        ("# comment\nnameserver 10.0.0.2\nnameserver 10.0.0.3\n", "10.0.0.2"),
        ("nameserver fd00::a\n", "[fd00::a]"),
        ("nameserver fe80::1%eth0\n", "[fe80::1]"),
        ("nameserver\nnameserver bogus\nnameserver 1.1.1.1", "1.1.1.1"),
    ],
)
def test_resolver_from_resolv_conf(text: str, resolver: str):
    assert resolver_from_resolv_conf(text) == resolver


def test_resolver_from_resolv_conf_without_nameserver():
    with pytest.raises(NoNameserverError):
        resolver_from_resolv_conf("search local\n")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"model": "Bad_Model"}, "invalid model"),
        (
            {"routes": [RoleRoute("/read", "read", 1), RoleRoute("/read/", "write", 1)]},
            "duplicate",
        ),
        ({"status_port": 8080}, "clashes"),
        ({"proxy": ProxyPlan(TelemetryTargets(), ())}, "needs a proxy_port"),
    ],
)
def test_inconsistent_inputs_are_refused(overrides: dict[str, Any], message: str):
    with pytest.raises(ValueError, match=message):
        _inputs(**overrides)


@pytest.mark.parametrize(
    ("prefix", "role"), [("read", "read"), ("/a b", "read"), ("/$x", "read"), ("/r", "Read")]
)
def test_role_route_validation(prefix: str, role: str):
    with pytest.raises(ValueError, match="invalid"):
        RoleRoute(prefix, role, 8080)


def test_pebble_layers():
    assert ops.pebble.Layer(nginx_layer()).to_dict().get("services") == {
        "nginx": {
            "override": "replace",
            "summary": "nginx",
            "command": "nginx -g 'daemon off;'",
            "startup": "enabled",
        }
    }
    layer = ops.pebble.Layer(exporter_layer(stub_status_url(), listen_port=9113))
    service = layer.services["nginx-prometheus-exporter"]
    assert service.command == (
        "nginx-prometheus-exporter --web.listen-address=:9113"
        " --nginx.scrape-uri=http://127.0.0.1:8082/status"
    )
    assert service.startup == "enabled"
    assert service.override == "replace"


def _stmt(directive: str, *args: str) -> dict[str, Any]:
    return {"directive": directive, "args": list(args)}


# --- a real nginx serving a rendered config -------------------------------------------------

Seen = list[tuple[str, str, str | None]]


class _RecordingUpstream(http.server.BaseHTTPRequestHandler):
    """Plays every backend (workers, Loki, Tempo): records what nginx forwarded."""

    seen: ClassVar[Seen] = []

    def _record(self) -> None:
        self.seen.append((self.path, self.request_version, self.headers.get("Connection")))
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(204)
        self.end_headers()

    def do_GET(self) -> None:
        self._record()

    def do_POST(self) -> None:
        self._record()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (base signature)
        pass


def _get(url: str, data: bytes | None = None) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, data=data, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@pytest.fixture
def upstream() -> Iterator[tuple[int, Seen]]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RecordingUpstream)
    _RecordingUpstream.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], _RecordingUpstream.seen
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def dns() -> Iterator[FakeDns]:
    """Answers every A query with 127.0.0.1 (and AAAA with nothing), recording the names.

    Stands in for the cluster DNS so the test sees which Service names nginx resolves.
    """
    with FakeDns(lambda _name: "127.0.0.1") as server:
        yield server


def test_real_nginx_routes_roles_telemetry_and_worker_metrics(
    nginx_binary: str, tmp_path: pathlib.Path, upstream: tuple[int, Seen], dns: FakeDns
):
    backend_port, seen = upstream
    api, proxy, status = free_port(), free_port(), free_port()
    origin = f"http://127.0.0.1:{backend_port}"
    plan = plan_proxy(
        TelemetryTargets(
            loki_push_urls={"loki/0": f"{origin}/loki/api/v1/push"},
            charm_tracing={"otlp_http": f"{origin}/base"},
        ),
        "127.0.0.1",
        proxy,
    )
    inputs = _inputs(
        api_port=api,
        routes=[RoleRoute("/read", "read", backend_port), RoleRoute("/write", "write", 1)],
        workers_by_role={"read": ["reader"]},
        resolver=f"127.0.0.1:{dns.port}",
        status_port=status,
        proxy_port=proxy,
        proxy=plan,
        worker_apps=["reader"],
        worker_metrics_port=backend_port,
    )
    text = render_config(dataclasses.replace(inputs, runtime_dir=runtime_dir(tmp_path)))
    with serving(nginx_binary, tmp_path, text, [api]):
        assert _get(f"http://127.0.0.1:{api}/") == (200, b"OK\n")
        assert _get(f"http://[::1]:{api}/") == (200, b"OK\n")
        assert _get(f"http://127.0.0.1:{api}/write/x") == (
            503,
            b"no worker app serves role write\n",
        )
        code, body = _get(f"http://127.0.0.1:{status}/status")
        assert (code, body[:19]) == (200, b"Active connections:")

        assert _get(f"http://127.0.0.1:{api}/read/api/v1/query?q=up")[0] == 204
        assert _get(plan.published.loki_push_urls["loki/0"] + "?tenant=a", data=b"{}")[0] == 204
        assert _get(plan.published.charm_tracing["otlp_http"] + "v1/traces", data=b"x")[0] == 204
        assert _get(f"http://127.0.0.1:{proxy}{worker_metrics_path('reader/3')}")[0] == 204
        # Apps outside the allowlist never leave nginx.
        assert _get(f"http://127.0.0.1:{proxy}/proxy/worker/intruder-0/metrics")[0] == 404

    assert seen == [
        ("/api/v1/query?q=up", "HTTP/1.1", None),
        ("/loki/api/v1/push?tenant=a", "HTTP/1.1", None),
        ("/base/v1/traces", "HTTP/1.1", None),
        ("/metrics", "HTTP/1.1", None),
    ]
    assert dns.names == [
        "reader-endpoints.test.svc.cluster.local",
        "reader-3.reader-endpoints.test.svc.cluster.local",
    ]


def test_the_live_runner_serves_a_config_with_its_files(nginx_binary: str, tmp_path: pathlib.Path):
    """`serving` writes the extra files where the config's relative paths find them."""
    port = free_port()
    runtime = runtime_dir(tmp_path)
    temp_paths = "".join(
        f"{kind}_temp_path {runtime}/{kind};" for kind in ("client_body", "proxy", "fastcgi")
    )
    text = (
        f"pid {runtime}/nginx.pid; error_log stderr; events {{}}\n"
        f"http {{ access_log off; {temp_paths} uwsgi_temp_path {runtime}/uwsgi; "
        f"scgi_temp_path {runtime}/scgi;\n"
        f"  server {{ listen 127.0.0.1:{port}; include extra/hello.conf; }}\n}}\n"
    )
    files = {"extra/hello.conf": "location = /hello { return 200 'hi'; }\n"}
    with serving(nginx_binary, tmp_path, text, [port], files) as [url]:
        assert url == f"http://127.0.0.1:{port}"
        assert _get(f"{url}/hello") == (200, b"hi")


# --- the workload reconcilers through ops.testing --------------------------------------------


class _CoordinatorCharm(ops.CharmBase):
    """Just enough charm to drive the reconcilers: config text comes from a charm option."""

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        framework.observe(self.on.config_changed, self._reconcile)

    def _reconcile(self, _: ops.EventBase) -> None:
        nginx = NginxWorkload(self.unit.get_container("nginx"))
        exporter = ExporterWorkload(self.unit.get_container("nginx-prometheus-exporter"))
        ready = [
            nginx.reconcile(str(self.config["nginx-config"])),
            exporter.reconcile(exporter_layer(stub_status_url())),
        ]
        self.unit.status = ops.ActiveStatus() if all(ready) else ops.WaitingStatus("no pebble")


_META = {
    "name": "coordinator",
    "containers": {"nginx": {"resource": "nginx-image"}, "nginx-prometheus-exporter": {}},
    "resources": {"nginx-image": {"type": "oci-image"}},
}
_CONFIG = {"options": {"nginx-config": {"type": "string", "default": ""}}}
RELOAD = ("nginx", "-s", "reload")
CHECK = ("nginx", "-t", "-c", "/etc/nginx/nginx.conf.candidate")
NEW = "events {}\n# new\n"
OLD = "events {}\n# old\n"


def _ctx() -> testing.Context[_CoordinatorCharm]:
    return testing.Context(_CoordinatorCharm, meta=_META, config=_CONFIG)


def _nginx(
    tmp_path: pathlib.Path,
    on_disk: str | None,
    running: bool,
    can_connect: bool = True,
    reload: testing.Exec | None = None,
    check: testing.Exec | None = None,
) -> testing.Container:
    source = tmp_path / "nginx.conf"
    if on_disk is not None:
        source.write_text(on_disk)
    return testing.Container(
        "nginx",
        can_connect=can_connect,
        mounts={"config": testing.Mount(location="/etc/nginx/nginx.conf", source=source)},
        layers={"base": ops.pebble.Layer(nginx_layer())} if running else {},
        service_statuses={"nginx": ops.pebble.ServiceStatus.ACTIVE} if running else {},
        execs={reload or testing.Exec(list(RELOAD)), check or testing.Exec(list(CHECK))},
    )


def _exporter(running: bool = True, can_connect: bool = True) -> testing.Container:
    layer = ops.pebble.Layer(exporter_layer(stub_status_url()))
    return testing.Container(
        "nginx-prometheus-exporter",
        can_connect=can_connect,
        layers={"base": layer} if running else {},
        service_statuses={"nginx-prometheus-exporter": ops.pebble.ServiceStatus.ACTIVE}
        if running
        else {},
    )


def _run(
    ctx: testing.Context[_CoordinatorCharm], text: str, *containers: testing.Container
) -> testing.State:
    state = testing.State(
        config={"nginx-config": text},
        containers=set(containers),
        model=testing.Model(name="test"),
    )
    return ctx.run(ctx.on.config_changed(), state)


def _reloads(ctx: testing.Context[_CoordinatorCharm]) -> list[tuple[str, ...]]:
    return [tuple(e.command) for e in ctx.exec_history.get("nginx", []) if e.command[1] == "-s"]


def _checks(ctx: testing.Context[_CoordinatorCharm]) -> list[tuple[str, ...]]:
    return [tuple(e.command) for e in ctx.exec_history.get("nginx", []) if e.command[1] == "-t"]


def test_first_reconcile_pushes_adds_layers_and_starts_without_reload(tmp_path: pathlib.Path):
    ctx = _ctx()
    out = _run(ctx, NEW, _nginx(tmp_path, None, running=False), _exporter(running=False))

    assert (tmp_path / "nginx.conf").read_text() == NEW
    nginx = out.get_container("nginx")
    assert set(nginx.layers) == {"nginx"}
    assert nginx.service_statuses["nginx"] == ops.pebble.ServiceStatus.ACTIVE
    exporter = out.get_container("nginx-prometheus-exporter")
    assert set(exporter.layers) == {"nginx-prometheus-exporter"}
    assert (
        exporter.service_statuses["nginx-prometheus-exporter"] == ops.pebble.ServiceStatus.ACTIVE
    )
    assert _reloads(ctx) == []
    assert out.unit_status == testing.ActiveStatus()


def test_unchanged_config_is_neither_pushed_nor_reloaded(tmp_path: pathlib.Path):
    ctx = _ctx()
    nginx = _nginx(tmp_path, NEW, running=True)
    os.utime(tmp_path / "nginx.conf", (1_000_000, 1_000_000))

    out = _run(ctx, NEW, nginx, _exporter())

    assert (tmp_path / "nginx.conf").stat().st_mtime == 1_000_000
    assert _reloads(ctx) == []
    # The plan already matched, so no layer was added on top of the existing one.
    assert set(out.get_container("nginx").layers) == {"base"}
    assert set(out.get_container("nginx-prometheus-exporter").layers) == {"base"}


def test_changed_config_is_pushed_and_nginx_reloaded(tmp_path: pathlib.Path):
    ctx = _ctx()
    out = _run(ctx, NEW, _nginx(tmp_path, OLD, running=True), _exporter())

    assert (tmp_path / "nginx.conf").read_text() == NEW
    assert _reloads(ctx) == [RELOAD]
    assert set(out.get_container("nginx").layers) == {"base"}


def test_changed_config_for_a_stopped_nginx_starts_it_instead_of_reloading(
    tmp_path: pathlib.Path,
):
    ctx = _ctx()
    stopped = dataclasses.replace(
        _nginx(tmp_path, OLD, running=True),
        service_statuses={"nginx": ops.pebble.ServiceStatus.INACTIVE},
    )
    out = _run(ctx, NEW, stopped, _exporter())

    assert (tmp_path / "nginx.conf").read_text() == NEW
    assert _reloads(ctx) == []
    assert set(out.get_container("nginx").layers) == {"base"}
    assert out.get_container("nginx").service_statuses["nginx"] == ops.pebble.ServiceStatus.ACTIVE


def test_a_changed_layer_is_replaced(tmp_path: pathlib.Path):
    ctx = _ctx()
    stale = ops.pebble.Layer(
        {"services": {"nginx": {"override": "replace", "command": "nginx", "startup": "enabled"}}}
    )
    nginx = dataclasses.replace(_nginx(tmp_path, NEW, running=True), layers={"base": stale})

    out = _run(ctx, NEW, nginx, _exporter())

    plan = out.get_container("nginx").plan
    assert plan.services["nginx"].command == "nginx -g 'daemon off;'"


def test_nothing_happens_while_pebble_is_unreachable(tmp_path: pathlib.Path):
    ctx = _ctx()
    out = _run(
        ctx,
        NEW,
        _nginx(tmp_path, OLD, running=True, can_connect=False),
        _exporter(can_connect=False),
    )

    assert (tmp_path / "nginx.conf").read_text() == OLD
    assert _reloads(ctx) == []
    assert out.unit_status == testing.WaitingStatus("no pebble")


def test_rejected_reload_restores_the_previous_config(tmp_path: pathlib.Path):
    ctx = _ctx()
    failing = testing.Exec(list(RELOAD), return_code=1, stderr="[emerg] unknown directive")
    nginx = _nginx(tmp_path, OLD, running=True, reload=failing)

    with pytest.raises(testing.errors.UncaughtCharmError) as raised:
        _run(ctx, NEW, nginx, _exporter())

    assert isinstance(raised.value.__cause__, NginxReloadError)
    assert "unknown directive" in str(raised.value.__cause__)
    assert (tmp_path / "nginx.conf").read_text() == OLD


# --- the builder is crossplane.build, byte for byte -------------------------------------------
# `render_config` renders its directive tree itself (quoting through crossplane only when an
# argument needs it); these pin it to crossplane's output on every case and on any arguments.


def _crossplane(tree: list[Any]) -> str:
    return crossplane.build(tree)


@pytest.mark.parametrize("case", CASES)
def test_rendered_config_equals_crossplane_build(case: str):
    inputs: NginxInputs = CASES[case]
    assert render_config(inputs) == _crossplane(config_tree(inputs)) + "\n"


# Single characters nginx or crossplane treat specially, mixed with any other character;
# pairs such as "${" and "\\$" arise from neighbours.
_ARGS = st.text(
    alphabet=st.one_of(
        st.sampled_from(" \t\n{};\"'\\$#()^.*|/:=~-_"),
        st.characters(codec="utf-8", exclude_categories=("Cs",)),
    ),
    max_size=12,
)


def _leaf(name: str, args: list[str]) -> dict[str, Any]:
    return {"directive": name, "args": args}


def _with_block(name: str, args: list[str], block: list[dict[str, Any]]) -> dict[str, Any]:
    return {"directive": name, "args": args, "block": block}


def _blocks(
    children: st.SearchStrategy[dict[str, Any]],
) -> st.SearchStrategy[dict[str, Any]]:
    names = st.sampled_from(["http", "server", "if", "location", "events"])
    return st.builds(
        _with_block, names, st.lists(_ARGS, max_size=3), st.lists(children, max_size=3)
    )


_TREES = st.recursive(
    st.builds(
        _leaf, st.sampled_from(["set", "if", "return", "location"]), st.lists(_ARGS, max_size=3)
    ),
    _blocks,
    max_leaves=8,
)


@given(st.lists(_TREES, max_size=4))
def test_any_tree_builds_like_crossplane(tree: list[Any]):
    assert build(tree) == _crossplane(tree)


# The arguments crossplane quotes, and its quirks (a trailing escape counted twice, "${...}"
# pairing), each against crossplane itself; then any argument at all.
@pytest.mark.parametrize(
    "arg",
    [
        "",
        " ",
        "a b",
        "\\",
        "$",
        "a$",
        "a\\",
        "\\$",
        "\\\\",
        "a\\$",
        "${",
        "${x}",
        "a${x}",
        "a${x",
        "a}b",
        "a${x${y}}",
        "$$",
        "$\\",
        "{",
        "}",
        ";",
        "'",
        '"',
        "a;b",
        '"$remote_addr - $request"',
        "$http_x_forwarded_for",
        "~*^/read(/.*)?$",
        "\\x41",
        "é ü",
    ],
)
def test_arguments_are_quoted_as_crossplane_quotes_them(arg: str):
    tree: list[Directive] = [{"directive": "set", "args": [arg]}]
    assert build(tree) == _crossplane(tree)


@settings(max_examples=3000)
@given(_ARGS)
def test_any_argument_is_quoted_as_crossplane_quotes_it(arg: str):
    tree: list[Directive] = [{"directive": "set", "args": [arg]}]
    assert build(tree) == _crossplane(tree)


# --- issue 11: the final tree is checked; nginx -t runs before a config replaces another -------


def _hostile_plan(*routes: ProxyRoute) -> ProxyPlan:
    good = plan_proxy(TARGETS, "coordinator.test.svc.cluster.local", 8081)
    return ProxyPlan(published=good.published, routes=(*good.routes, *routes))


def test_a_telemetry_route_with_a_dollar_it_did_not_place_is_refused_alone(
    nginx_binary: str, tmp_path: pathlib.Path
):
    # What a zone id "%25$evil" produced before plan_proxy refused it: `set $backend` with an
    # unknown variable, which nginx -t refuses for the whole file.
    evil = ProxyRoute("/proxy/loki/loki-9/push", True, "http://[fe80::1%25$evil]:3100", "/push")
    inputs = _inputs(proxy_port=8081, proxy=_hostile_plan(evil))

    rendered = render(inputs)

    assert "$evil" not in rendered.text
    assert [(r.key, r.reason) for r in rendered.refused] == [
        ("/proxy/loki/loki-9/push", "a '$' in its location, destination or path")
    ]
    # Every other route is still served, and nginx accepts the file.
    assert "/proxy/loki/loki-0/push" in rendered.text
    assert_nginx_accepts(nginx_binary, _write(inputs, tmp_path))


def test_a_dollar_in_a_path_is_refused_even_when_it_names_a_known_variable():
    sneaky = ProxyRoute("/proxy/x/", False, "http://x:1", "/$backend")
    rendered = render(_inputs(proxy_port=8081, proxy=_hostile_plan(sneaky)))
    assert [r.key for r in rendered.refused] == ["/proxy/x/"]
    assert "/$backend" not in rendered.text


def test_a_duplicate_telemetry_location_is_refused_and_the_first_kept(
    nginx_binary: str, tmp_path: pathlib.Path
):
    plan = _hostile_plan()
    twin = dataclasses.replace(plan.routes[0], upstream="http://elsewhere:9")
    inputs = _inputs(proxy_port=8081, proxy=_hostile_plan(twin))

    rendered = render(inputs)

    assert [(r.key, r.reason) for r in rendered.refused] == [
        (twin.location, "another location has the same path")
    ]
    assert "elsewhere" not in rendered.text
    assert_nginx_accepts(nginx_binary, _write(inputs, tmp_path))


def test_a_telemetry_location_may_not_take_a_role_route_s_place():
    clash = ProxyRoute("/read/", False, "http://x:1", "")
    rendered = render(_inputs(proxy_port=8080, proxy=_hostile_plan(clash)))
    assert [r.key for r in rendered.refused] == ["/read/"]


@pytest.mark.parametrize(
    "arg",
    ["http://h$evil:1", "${evil}", "$backendx", "a$", "$"],
)
def test_the_final_check_refuses_any_variable_the_renderer_does_not_write(arg: str):
    tree = config_tree(_inputs())
    tree[-1].setdefault("block", []).append(nginx_directive("set", "$backend", arg))
    with pytest.raises(NginxConfigError, match="refers to a variable"):
        check_tree(tree, frozenset({"backend"}))


def test_the_final_check_refuses_duplicate_locations():
    tree = config_tree(_inputs())
    http = tree[-1].get("block", [])
    server = next(node for node in http if node.get("directive") == "server")
    server.setdefault("block", []).append(nginx_directive("location", "/read/", block=[]))
    with pytest.raises(NginxConfigError, match="duplicate location '/read/'"):
        check_tree(tree, frozenset())


@pytest.mark.parametrize("case", CASES)
def test_every_case_passes_the_final_check(case: str):
    assert render(CASES[case]).refused == ()


def test_an_accepted_config_is_checked_by_nginx_before_it_replaces_the_running_one(
    tmp_path: pathlib.Path,
):
    ctx = _ctx()
    _run(ctx, NEW, _nginx(tmp_path, OLD, running=True), _exporter())

    assert [tuple(e.command) for e in ctx.exec_history["nginx"]] == [CHECK, RELOAD]
    assert (tmp_path / "nginx.conf").read_text() == NEW


def test_an_unchanged_config_is_not_checked_again(tmp_path: pathlib.Path):
    ctx = _ctx()
    _run(ctx, NEW, _nginx(tmp_path, NEW, running=True), _exporter())
    assert _checks(ctx) == []


def test_a_config_nginx_t_refuses_never_replaces_the_running_one(tmp_path: pathlib.Path):
    ctx = _ctx()
    refusing = testing.Exec(
        list(CHECK), return_code=1, stderr='nginx: [emerg] unknown "evil" variable'
    )
    nginx = _nginx(tmp_path, OLD, running=True, check=refusing)

    with pytest.raises(testing.errors.UncaughtCharmError) as raised:
        _run(ctx, NEW, nginx, _exporter())

    assert isinstance(raised.value.__cause__, NginxConfigRejectedError)
    assert 'unknown "evil" variable' in str(raised.value.__cause__)
    assert (tmp_path / "nginx.conf").read_text() == OLD  # the last good config stays
    assert _reloads(ctx) == []


def test_a_fresh_container_does_not_start_nginx_on_a_refused_config(tmp_path: pathlib.Path):
    ctx = _ctx()
    refusing = testing.Exec(list(CHECK), return_code=1, stderr="nginx: [emerg] bad")
    nginx = _nginx(tmp_path, None, running=False, check=refusing)
    state = testing.State(
        config={"nginx-config": NEW},
        containers={nginx, _exporter(running=False)},
        model=testing.Model(name="test"),
    )

    with pytest.raises(testing.errors.UncaughtCharmError):
        ctx.run(ctx.on.config_changed(), state)

    assert not (tmp_path / "nginx.conf").exists()
    assert _checks(ctx) == [CHECK]
