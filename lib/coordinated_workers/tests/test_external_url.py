# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""``external_url``: validated as an http(s) base URL, published where upstream publishes it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from ops import testing

from coordinated_workers._external_url import (
    ExternalUrlError,
    scrape_address,
    validated_external_url,
)
from coordinated_workers.testing import worker_relation
from service_mesh.testing import FakeKubernetes
from tests.support.coordinators import (
    CoordinatorTester,
    coordinator_charm,
    coordinator_state,
    kubernetes_with,
    minimal_coordinator_config,
)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://ingress.example.com", "http://ingress.example.com"),
        ("https://ingress.example.com/", "https://ingress.example.com"),
        (
            "https://ingress.example.com:8443/obs-coordinator/",
            "https://ingress.example.com:8443/obs-coordinator",
        ),
        ("http://10.1.2.3:80/x", "http://10.1.2.3:80/x"),
        ("http://[fd00::1]:8080", "http://[fd00::1]:8080"),
    ],
)
def test_valid_urls(given: str, expected: str):
    assert validated_external_url(given) == expected


@pytest.mark.parametrize(
    "given",
    [
        "",
        "ingress.example.com",
        "ftp://ingress.example.com",
        "http://",
        "http:///path",
        "http://host:99999",
        "http://host:0",
        "http://host:port",
        "http://user:pw@host",
        "http://host/x?q=1",
        "http://host/x#frag",
        "http://host/x y",
        "http://host/x\n",
        "http://[",
        "http://[abc]/x",
        "http://host/" + "a" * 2100,
        42,
    ],
)
def test_invalid_urls_are_refused(given: object):
    with pytest.raises(ExternalUrlError):
        validated_external_url(given)


def test_the_scrape_address_is_the_host_and_path():
    assert scrape_address("https://ingress.example.com:8443/obs-coordinator") == (
        "ingress.example.com",
        "/obs-coordinator",
    )
    assert scrape_address("http://ingress.example.com") == ("ingress.example.com", "")


def test_a_static_url_is_checked_when_the_config_is_built():
    with pytest.raises(ValueError, match="scheme"):
        minimal_coordinator_config(external_url="ftp://x")


META = {
    "name": "coordinator",
    "containers": {"nginx": {}, "nginx-prometheus-exporter": {}},
    "provides": {
        "cluster": {"interface": "cluster"},
        "metrics-endpoint": {"interface": "prometheus_scrape"},
    },
}
External = str | Callable[[], str | None] | None


def _charm(external: External) -> type[CoordinatorTester]:
    return coordinator_charm(
        minimal_coordinator_config(role="a", keep=("metrics",), external_url=external)
    )


@pytest.fixture
def kube() -> Iterator[FakeKubernetes]:
    with kubernetes_with("coordinator", model="obs") as fake:
        yield fake


def _state(metrics: testing.Relation) -> testing.State:
    return coordinator_state(worker_relation("w", ["a"], model="obs"), metrics, model="obs")


def _run(external: External) -> tuple[testing.State, testing.Relation, str]:
    ctx = testing.Context(_charm(external), meta=META, app_name="coordinator")
    metrics = testing.Relation("metrics-endpoint", remote_app_name="prometheus")
    state = _state(metrics)
    with ctx(ctx.on.config_changed(), state) as manager:
        out = manager.run()
        url = manager.charm.coordinator.external_url
    relation = out.get_relation(metrics.id)
    assert isinstance(relation, testing.Relation)
    return out, relation, url


POD = "coordinator-0.coordinator-endpoints.obs.svc.cluster.local"
INTERNAL = "http://coordinator.obs.svc.cluster.local:8080"


def test_without_one_the_pod_address_and_the_internal_url(kube):
    out, relation, url = _run(None)
    assert relation.local_unit_data["prometheus_scrape_unit_address"] == POD
    assert "prometheus_scrape_unit_path" not in relation.local_unit_data
    assert url == INTERNAL
    assert out.unit_status == testing.ActiveStatus()


@pytest.mark.parametrize("given", ["https://ingress.example.com/obs-coordinator/", None])
def test_the_ingress_host_and_path_as_upstream_publishes_them(kube, given):
    external = (
        given if given is not None else (lambda: "https://ingress.example.com/obs-coordinator")
    )
    out, relation, url = _run(external)
    assert relation.local_unit_data["prometheus_scrape_unit_address"] == "ingress.example.com"
    assert relation.local_unit_data["prometheus_scrape_unit_path"] == "/obs-coordinator"
    assert url == "https://ingress.example.com/obs-coordinator"
    jobs = relation.local_app_data["scrape_jobs"]
    assert "ingress.example.com" not in jobs  # Prometheus scrapes inside the model, as before
    assert out.unit_status == testing.ActiveStatus()


def test_a_callable_without_an_ingress_yet_gives_the_internal_url(kube):
    _, relation, url = _run(lambda: None)
    assert relation.local_unit_data["prometheus_scrape_unit_address"] == POD
    assert url == INTERNAL


def test_an_invalid_url_from_the_callable_is_blocked_and_the_internal_url_used(kube):
    out, relation, url = _run(lambda: "http://ingress\x1b[31m.example.com/")
    assert relation.local_unit_data["prometheus_scrape_unit_address"] == POD
    assert url == INTERNAL
    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert out.unit_status.message.startswith("external_url ")
    assert out.unit_status.message.isprintable()


@pytest.mark.parametrize("given", ["http://[", "http://[abc]/x"])
def test_a_bracketed_host_urllib_cannot_parse_is_blocked_not_a_crash(kube, given):
    out, relation, url = _run(lambda: given)
    assert relation.local_unit_data["prometheus_scrape_unit_address"] == POD
    assert url == INTERNAL
    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert out.unit_status.message.startswith("external_url ")


def test_losing_the_ingress_removes_the_path_and_restores_the_pod_address(kube):
    ingress: list[str | None] = ["https://ingress.example.com/obs"]
    ctx = testing.Context(_charm(lambda: ingress[0]), meta=META, app_name="coordinator")
    metrics = testing.Relation("metrics-endpoint", remote_app_name="prometheus")
    state = _state(metrics)
    behind = ctx.run(ctx.on.config_changed(), state)
    assert behind.get_relation(metrics.id).local_unit_data["prometheus_scrape_unit_path"] == "/obs"
    ingress[0] = None
    after = ctx.run(ctx.on.config_changed(), behind).get_relation(metrics.id).local_unit_data
    assert "prometheus_scrape_unit_path" not in after
    assert after["prometheus_scrape_unit_address"] == POD
