# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The worker telemetry proxy plan: URL layout, routes for nginx, and hostile inputs."""

from __future__ import annotations

import hashlib
import itertools
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coordinated_workers._telemetry_proxy import (
    JUJU_APP_NAME,
    WORKER_METRICS_LOCATION,
    ProxyRoute,
    SkippedTarget,
    TelemetryTargets,
    WorkerTelemetryProxyConfig,
    plan_proxy,
    worker_metrics_path,
)

COORDINATOR = "coordinator.cos.svc.cluster.local"
BASE = f"http://{COORDINATOR}:8081"
LOKI_0 = "http://loki-0.loki-endpoints.cos.svc.cluster.local:3100/loki/api/v1/push"
LOKI_1 = "http://loki-1.loki-endpoints.cos.svc.cluster.local:3100/loki/api/v1/push"
PROM = "http://prometheus-0.prometheus-endpoints.cos.svc.cluster.local:9090/api/v1/write"


def _plan(targets: TelemetryTargets, scheme: str = "http"):
    return plan_proxy(targets, COORDINATOR, 8081, scheme)


def test_proxy_port_follows_tls():
    config = WorkerTelemetryProxyConfig(http_port=8081, https_port=8443)
    assert config.port(tls=False) == 8081
    assert config.port(tls=True) == 8443


@pytest.mark.parametrize(
    ("unit", "path"),
    [
        ("backend/0", "/proxy/worker/backend-0/metrics"),
        ("my-worker-app/12", "/proxy/worker/my-worker-app-12/metrics"),
        ("a1-b2c/3", "/proxy/worker/a1-b2c-3/metrics"),
    ],
)
def test_worker_metrics_path(unit: str, path: str):
    assert worker_metrics_path(unit) == path


@pytest.mark.parametrize("unit", ["backend", "Backend/0", "backend/x", "backend-1/0", "../x/0"])
def test_worker_metrics_path_rejects_non_unit_names(unit: str):
    with pytest.raises(ValueError, match="not a Juju unit name"):
        worker_metrics_path(unit)


# nginx uses PCRE's (?<name>...); Python spells named groups (?P<name>...).
_PY_WORKER_METRICS = re.compile(WORKER_METRICS_LOCATION.replace("(?<", "(?P<"))


@given(
    app=st.from_regex(JUJU_APP_NAME, fullmatch=True).filter(lambda a: len(a) <= 40),
    unit=st.integers(min_value=0, max_value=10_000),
)
def test_worker_metrics_location_captures_app_and_unit(app: str, unit: int):
    match = _PY_WORKER_METRICS.match(worker_metrics_path(f"{app}/{unit}"))
    assert match is not None
    assert (match["worker_app"], int(match["worker_unit"])) == (app, unit)


@pytest.mark.parametrize(
    "path",
    [
        "/proxy/worker/backend/metrics",
        "/proxy/worker/backend-0/metrics/x",
        "/proxy/worker/-0/metrics",
    ],
)
def test_worker_metrics_location_rejects_other_paths(path: str):
    assert _PY_WORKER_METRICS.match(path) is None


def test_loki_units_each_get_an_exact_route_to_the_push_path():
    plan = _plan(TelemetryTargets(loki_push_urls={"loki/1": LOKI_1, "loki/0": LOKI_0}))

    assert plan.published.loki_push_urls == {
        "loki/0": f"{BASE}/proxy/loki/loki-0/push",
        "loki/1": f"{BASE}/proxy/loki/loki-1/push",
    }
    assert plan.routes == (
        ProxyRoute(
            "/proxy/loki/loki-0/push",
            exact=True,
            upstream="http://loki-0.loki-endpoints.cos.svc.cluster.local:3100",
            path="/loki/api/v1/push",
        ),
        ProxyRoute(
            "/proxy/loki/loki-1/push",
            exact=True,
            upstream="http://loki-1.loki-endpoints.cos.svc.cluster.local:3100",
            path="/loki/api/v1/push",
        ),
    )
    assert plan.skipped == ()


def test_published_urls_use_the_coordinator_scheme_and_default_ports_fill_in():
    plan = _plan(
        TelemetryTargets(loki_push_urls={"loki/0": "https://loki.example.com/push"}), "https"
    )
    assert plan.published.loki_push_urls == {
        "loki/0": f"https://{COORDINATOR}:8081/proxy/loki/loki-0/push"
    }
    assert plan.routes[0].upstream == "https://loki.example.com:443"


def test_remote_write_uses_the_first_dns_label():
    plan = _plan(TelemetryTargets(remote_write_urls=[PROM]))

    assert plan.published.remote_write_urls == (f"{BASE}/proxy/remote-write/prometheus-0/write",)
    assert plan.routes == (
        ProxyRoute(
            "/proxy/remote-write/prometheus-0/write",
            exact=True,
            upstream="http://prometheus-0.prometheus-endpoints.cos.svc.cluster.local:9090",
            path="/api/v1/write",
        ),
    )


@pytest.mark.parametrize(
    ("url", "label", "upstream"),
    [
        ("http://10.1.2.3:9090/api/v1/write", "10-1-2-3", "http://10.1.2.3:9090"),
        ("http://[fd00::1]:9090/api/v1/write", "fd00-1", "http://[fd00::1]:9090"),
        ("http://Mimir-GW.example/api/v1/push", "mimir-gw", "http://mimir-gw.example:80"),
    ],
)
def test_remote_write_labels_for_ips_and_odd_hosts(url: str, label: str, upstream: str):
    plan = _plan(TelemetryTargets(remote_write_urls=[url]))
    assert [r.location for r in plan.routes] == [f"/proxy/remote-write/{label}/write"]
    assert plan.routes[0].upstream == upstream


def test_remote_write_collisions_get_stable_distinct_labels():
    other_model = (
        "http://prometheus-0.prometheus-endpoints.other.svc.cluster.local:9090/api/v1/write"
    )
    plan = _plan(TelemetryTargets(remote_write_urls=[other_model, PROM, PROM]))

    locations = [r.location for r in plan.routes]
    assert len(locations) == 2
    assert len(set(locations)) == 2
    assert all(
        re.fullmatch(r"/proxy/remote-write/prometheus-0-[0-9a-f]{8}/write", p) for p in locations
    )
    # Order-independent: the same URL always gets the same label.
    assert _plan(TelemetryTargets(remote_write_urls=[PROM, other_model])).routes == plan.routes
    # Each published URL maps to the route that proxies its own target.
    by_location = {r.location: r.upstream for r in plan.routes}
    assert sorted(by_location.values()) == sorted(
        {
            "http://prometheus-0.prometheus-endpoints.cos.svc.cluster.local:9090",
            "http://prometheus-0.prometheus-endpoints.other.svc.cluster.local:9090",
        }
    )
    assert sorted(plan.published.remote_write_urls) == sorted(BASE + p for p in locations)


def test_tracing_receivers_get_prefix_routes_and_grpc_is_skipped():
    plan = _plan(
        TelemetryTargets(
            charm_tracing={
                "otlp_http": "http://tempo.cos.svc.cluster.local:4318",
                "otlp_grpc": "tempo.cos.svc.cluster.local:4317",
            },
            workload_tracing={
                "zipkin": "http://tempo.cos.svc.cluster.local:9411/base/",
                "jaeger_grpc": "http://tempo.cos.svc.cluster.local:14250",
            },
        )
    )

    assert plan.published.charm_tracing == {"otlp_http": f"{BASE}/proxy/charm-tracing/otlp_http/"}
    assert plan.published.workload_tracing == {"zipkin": f"{BASE}/proxy/workload-tracing/zipkin/"}
    assert plan.routes == (
        ProxyRoute(
            "/proxy/charm-tracing/otlp_http/",
            exact=False,
            upstream="http://tempo.cos.svc.cluster.local:4318",
            path="",
        ),
        ProxyRoute(
            "/proxy/workload-tracing/zipkin/",
            exact=False,
            upstream="http://tempo.cos.svc.cluster.local:9411",
            path="/base",
        ),
    )
    assert [(s.kind, s.key) for s in plan.skipped] == [
        ("charm-tracing", "otlp_grpc"),
        ("workload-tracing", "jaeger_grpc"),
    ]
    assert all("gRPC" in s.reason for s in plan.skipped)


def test_scheme_less_receiver_is_skipped_whatever_its_protocol_name():
    plan = _plan(TelemetryTargets(workload_tracing={"custom": "tempo:4317"}))
    assert plan.routes == ()
    assert plan.published.workload_tracing == {}
    assert plan.skipped == (
        SkippedTarget(
            "workload-tracing", "custom", "'tempo:4317' has no scheme (a gRPC receiver?)"
        ),
    )


@pytest.mark.parametrize(
    ("targets", "reason"),
    [
        (TelemetryTargets(loki_push_urls={"Loki/0": LOKI_0}), "not a Juju unit name"),
        (TelemetryTargets(loki_push_urls={"loki/0": "ftp://loki/push"}), "is not http or https"),
        (TelemetryTargets(loki_push_urls={"loki/0": "http://lo ki:80/"}), "invalid host"),
        (TelemetryTargets(loki_push_urls={"loki/0": "http://loki:99999/"}), "malformed URL"),
        (
            TelemetryTargets(loki_push_urls={"loki/0": "http://loki/$host;"}),
            "unsupported characters",
        ),
        (
            TelemetryTargets(loki_push_urls={"loki/0": "http://loki/a}{b"}),
            "unsupported characters",
        ),
        (TelemetryTargets(remote_write_urls=["http://u:p@prom/write"]), "credentials"),
        (TelemetryTargets(remote_write_urls=["http://prom/write?x=1"]), "query strings"),
        (TelemetryTargets(remote_write_urls=["not a url"]), "is not http or https"),
        (TelemetryTargets(charm_tracing={"otlp http": "http://tempo:4318"}), "invalid protocol"),
    ],
)
def test_hostile_targets_are_skipped_with_a_reason(targets: TelemetryTargets, reason: str):
    plan = _plan(targets)
    assert plan.routes == ()
    assert plan.published == TelemetryTargets()
    assert len(plan.skipped) == 1
    assert reason in plan.skipped[0].reason


def test_valid_targets_survive_next_to_hostile_ones():
    plan = _plan(
        TelemetryTargets(
            loki_push_urls={"loki/0": LOKI_0, "loki/1": "gopher://x"},
            remote_write_urls=[PROM, "http://x/{"],
        )
    )
    assert set(plan.published.loki_push_urls) == {"loki/0"}
    assert len(plan.published.remote_write_urls) == 1
    assert {s.key for s in plan.skipped} == {"loki/1", "http://x/{"}


_NGINX_SAFE = re.compile(r"^[A-Za-z0-9._~/%:@!*+,=\[\]-]*$")


@given(
    loki=st.dictionaries(st.text(max_size=12), st.text(max_size=40), max_size=3),
    remote_write=st.lists(st.text(max_size=40), max_size=3),
    tracing=st.dictionaries(st.text(max_size=12), st.text(max_size=40), max_size=3),
)
def test_arbitrary_relation_data_never_raises_nor_reaches_nginx_unchecked(
    loki: dict[str, str], remote_write: list[str], tracing: dict[str, str]
):
    targets = TelemetryTargets(
        loki_push_urls=loki,
        remote_write_urls=remote_write,
        charm_tracing=tracing,
        workload_tracing=tracing,
    )
    plan = _plan(targets)
    for route in plan.routes:
        for text in (route.location, route.upstream, route.path):
            assert _NGINX_SAFE.match(text), text


@given(
    host=st.one_of(
        st.ip_addresses().map(str),
        st.from_regex(
            r"[a-z]([a-z0-9-]{0,20}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,9}[a-z0-9])?){0,3}",
            fullmatch=True,
        ),
    )
)
def test_generated_hosts_give_valid_locations(host: str):
    netloc = f"[{host}]" if ":" in host else host
    plan = _plan(TelemetryTargets(remote_write_urls=[f"http://{netloc}:9090/api/v1/write"]))
    assert plan.skipped == ()
    (route,) = plan.routes
    assert re.fullmatch(r"/proxy/remote-write/[a-z0-9]([a-z0-9-]*[a-z0-9])?/write", route.location)


# --- issue 11: nothing remote reaches nginx.conf outside a strict grammar --------------------

ZONE_ID_URLS = (
    "http://[fe80::1%25$evil]:3100/loki/api/v1/push",
    "http://[fe80::1%eth0]:3100/loki/api/v1/push",
    "http://[fe80::1%251]:3100/loki/api/v1/push",
)


@pytest.mark.parametrize("url", ZONE_ID_URLS)
def test_an_ipv6_zone_id_is_not_a_host_nginx_may_see(url: str):
    # ipaddress accepts any zone text, and "$evil" in `set $backend` failed nginx -t.
    plan = _plan(
        TelemetryTargets(
            loki_push_urls={"loki/0": url},
            remote_write_urls=[url],
            charm_tracing={"otlp_http": url},
            workload_tracing={"otlp_http": url},
        )
    )
    assert plan.routes == ()
    assert plan.published == TelemetryTargets()
    assert [s.kind for s in plan.skipped] == [
        "loki",
        "remote-write",
        "charm-tracing",
        "workload-tracing",
    ]
    assert all("zone id" in s.reason for s in plan.skipped)


def test_an_ipv6_literal_without_a_zone_id_is_still_proxied():
    plan = _plan(TelemetryTargets(loki_push_urls={"loki/0": "http://[fe80::1]:3100/push"}))
    assert plan.skipped == ()
    assert plan.routes[0].upstream == "http://[fe80::1]:3100"


def _hash8(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:8]


def test_a_host_named_like_another_url_s_suffixed_label_gets_no_duplicate_location():
    first = "http://prom.a.svc:9090/api/v1/write"
    urls = [
        first,
        "http://prom.b.svc:9090/api/v1/write",
        f"http://prom-{_hash8(first)}.c.svc:9090/api/v1/write",
    ]
    plan = _plan(TelemetryTargets(remote_write_urls=urls))

    locations = [r.location for r in plan.routes]
    assert len(locations) == 3
    assert len(set(locations)) == 3
    assert plan.skipped == ()
    assert len(set(plan.published.remote_write_urls)) == 3
    # Deterministic: any order of the same URLs gives the same labels.
    for order in itertools.permutations(urls):
        assert _plan(TelemetryTargets(remote_write_urls=list(order))).routes == plan.routes


def test_a_label_still_taken_after_the_full_hash_skips_that_url_only():
    first = "http://prom.a.svc:9090/api/v1/write"
    second = "http://prom.b.svc:9090/api/v1/write"
    third = f"http://prom-{_hash8(first)}.c.svc:9090/api/v1/write"
    full = hashlib.sha256(first.encode()).hexdigest()
    # Hosts named like every suffix `first` could be given: 8, 16 and 64 hex digits.
    urls = [first, second, third] + [
        f"http://prom-{full[:n]}.d{n}.svc:9090/api/v1/write" for n in (16, 64)
    ]
    plan = _plan(TelemetryTargets(remote_write_urls=urls))

    locations = [r.location for r in plan.routes]
    assert len(set(locations)) == len(locations)
    assert len(locations) + len(plan.skipped) == len(urls)


@given(
    labels=st.lists(st.from_regex(r"prom(-[0-9a-f]{8})?", fullmatch=True), min_size=1, max_size=6),
    zones=st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=6),
)
def test_remote_write_locations_are_always_unique(labels: list[str], zones: list[str]):
    pairs = zip(labels, zones, strict=False)
    urls = [f"http://{label}.{zone}.svc:9090/w" for label, zone in pairs]
    plan = _plan(TelemetryTargets(remote_write_urls=urls))
    locations = [r.location for r in plan.routes]
    assert len(set(locations)) == len(locations)
    assert len(locations) + len(plan.skipped) == len(set(urls))
