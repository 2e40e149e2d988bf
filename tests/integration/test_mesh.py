# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The cluster on an Istio ambient mesh in hardened (default-deny) mode.

istio-k8s runs in its own model; istio-beacon-k8s runs in the test model and only the
coordinator is integrated with it. The coordinator must then enrol every pod of the cluster,
own the cluster-internal AuthorizationPolicies, and let in exactly: the cluster itself, and
applications integrated on `api`. Kubernetes is read with lightkube (see helpers.kube_client).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import jubilant
import pytest
from helpers import (
    API_PORT,
    COORDINATOR,
    WORKER_PORT,
    PackedCharm,
    app_host,
    cluster_internal_selector,
    deploy,
    eventually,
    http_get,
    http_status,
    is_mesh_denial,
    kube_client,
    model_name,
    unit_host,
    units,
    wait_settled,
    worker_roles,
)
from lightkube.core.client import LabelValue
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.core_v1 import Pod

if TYPE_CHECKING:
    import lightkube
    from pytest_jubilant import JujuFactory

ISTIO = "istio-k8s"
BEACON = "istio-beacon-k8s"
# Track 2, stable (as Canonical's docs deploy it) unless ISTIO_CHANNEL says otherwise (2/edge).
ISTIO_CHANNEL = os.environ.get("ISTIO_CHANNEL", "2/stable")
WORKER_READ = "worker-read"
WORKER_WRITE = "worker-write"
WORKER_EXTRA = "worker-extra"
API_CLIENT = "api-client"  # integrated on `api`: allowed
STRANGER = "stranger"  # in the mesh, not integrated: denied
OUTSIDER = "outsider"  # not in the mesh at all: denied

PART_OF = "app.kubernetes.io/part-of"
DATAPLANE_MODE = "istio.io/dataplane-mode"

AuthorizationPolicy = create_namespaced_resource(
    "security.istio.io", "v1", "AuthorizationPolicy", "authorizationpolicies"
)


@pytest.fixture(scope="module")
def istio_juju(juju_factory: JujuFactory) -> jubilant.Juju:
    """The model that hosts istio-k8s (Istio's root namespace)."""
    return juju_factory.get_juju("istio-system")


@pytest.fixture(scope="module")
def kube(juju: jubilant.Juju) -> lightkube.Client:
    return kube_client(model_name(juju))


def _pods_of(kube: lightkube.Client, app: str) -> list[Pod]:
    return list(kube.list(Pod, labels={"app.kubernetes.io/name": app}))


def _cluster_policies(kube: lightkube.Client, model: str) -> list[object]:
    return list(
        kube.list(
            AuthorizationPolicy,
            namespace=model,
            labels=dict[str, LabelValue](cluster_internal_selector(COORDINATOR, model)),
        )
    )


def _api_url(juju: jubilant.Juju) -> str:
    return f"http://{app_host(COORDINATOR, model_name(juju))}:{API_PORT}/read/mesh"


@pytest.mark.juju_setup
def test_deploy_mesh(juju: jubilant.Juju, istio_juju: jubilant.Juju):
    # `platform: ""`: Canonical Kubernetes needs no platform profile (some istio-k8s revisions
    # default to microk8s's); the workflow prepares its Cilium for Istio.
    istio_juju.deploy(
        ISTIO, channel=ISTIO_CHANNEL, trust=True, config={"hardened-mode": True, "platform": ""}
    )
    # The beacon's waypoint needs the Gateway API and Istio types that istio-k8s installs.
    wait_settled(istio_juju, ISTIO, timeout=20 * 60)
    juju.deploy(BEACON, channel=ISTIO_CHANNEL, trust=True)
    wait_settled(juju, BEACON)


@pytest.mark.juju_setup
def test_deploy_cluster(
    juju: jubilant.Juju,
    coordinator_charm: PackedCharm,
    worker_charm: PackedCharm,
    api_client_charm: PackedCharm,
):
    deploy(juju, coordinator_charm, COORDINATOR)
    deploy(juju, worker_charm, WORKER_READ, config=worker_roles("read"))
    deploy(juju, worker_charm, WORKER_WRITE, config=worker_roles("write"))
    for app in (API_CLIENT, STRANGER, OUTSIDER):
        deploy(juju, api_client_charm, app)
    juju.integrate(f"{COORDINATOR}:cluster", f"{WORKER_READ}:cluster")
    juju.integrate(f"{COORDINATOR}:cluster", f"{WORKER_WRITE}:cluster")
    juju.integrate(f"{COORDINATOR}:api", f"{API_CLIENT}:api")

    wait_settled(juju, COORDINATOR, WORKER_READ, WORKER_WRITE, API_CLIENT, STRANGER, OUTSIDER)


@pytest.mark.juju_setup
def test_integrate_the_coordinator_with_the_mesh(juju: jubilant.Juju, kube: lightkube.Client):
    juju.integrate(f"{COORDINATOR}:service-mesh", f"{BEACON}:service-mesh")
    wait_settled(juju, COORDINATOR, WORKER_READ, WORKER_WRITE, BEACON)

    # The test charm has no service-mesh endpoint, so its apps join the mesh by hand: the api
    # client (its requests must carry its identity to match the beacon's policy for `api`)
    # and the stranger (enrolled, but with no relation that authorizes it).
    for app in (API_CLIENT, STRANGER):
        for pod in _pods_of(kube, app):
            assert pod.metadata is not None and pod.metadata.name is not None
            labels = {DATAPLANE_MODE: "ambient"}
            kube.patch(Pod, pod.metadata.name, {"metadata": {"labels": labels}})


def test_every_cluster_pod_is_labelled(juju: jubilant.Juju, kube: lightkube.Client):
    def check() -> None:
        for app in (COORDINATOR, WORKER_READ, WORKER_WRITE):
            pods = _pods_of(kube, app)
            assert pods, f"no pods for {app}"
            for pod in pods:
                assert pod.metadata is not None
                labels = pod.metadata.labels or {}
                assert labels.get(PART_OF) == COORDINATOR, (pod.metadata.name, labels)
                assert labels.get(DATAPLANE_MODE) == "ambient", (pod.metadata.name, labels)

    eventually(check)


def test_cluster_internal_policies_exist(juju: jubilant.Juju, kube: lightkube.Client):
    # One for the coordinator, two for each worker app.
    eventually(lambda: _assert_count(_cluster_policies(kube, model_name(juju)), 1 + 2 * 2))


def _assert_count(items: list[object], expected: int) -> None:
    assert len(items) == expected, [getattr(i, "metadata", None) for i in items]


@pytest.mark.parametrize(
    ("source_app", "target"),
    [
        (COORDINATOR, WORKER_READ),
        (COORDINATOR, WORKER_WRITE),
        (WORKER_READ, WORKER_WRITE),
        (WORKER_WRITE, WORKER_READ),
    ],
)
def test_the_cluster_reaches_its_workers(juju: jubilant.Juju, source_app: str, target: str):
    source = units(juju, source_app)[0]
    url = f"http://{unit_host(units(juju, target)[0], model_name(juju))}:{WORKER_PORT}/"
    eventually(lambda: _assert_status(http_status(juju, source, url), 200, source, url))


@pytest.mark.parametrize("source_app", [WORKER_READ, WORKER_WRITE, API_CLIENT])
def test_allowed_callers_reach_the_api(juju: jubilant.Juju, source_app: str):
    source = units(juju, source_app)[0]
    url = _api_url(juju)
    eventually(lambda: _assert_status(http_status(juju, source, url), 200, source, url))


@pytest.mark.parametrize("source_app", [STRANGER, OUTSIDER])
def test_other_callers_are_denied(juju: jubilant.Juju, source_app: str):
    # The API is a Service with a waypoint (an L7 denial may be an HTTP 403); a worker unit is
    # addressed by pod, so ztunnel decides (the connection is closed). Each denial is checked
    # against a caller that is let in at the same time, so a dead target cannot pass for one.
    source = units(juju, source_app)[0]
    api_url = _api_url(juju)
    eventually(lambda: _assert_denied(juju, source, api_url))
    allowed = units(juju, API_CLIENT)[0]
    _assert_status(http_status(juju, allowed, api_url), 200, allowed, api_url)

    worker_url = (
        f"http://{unit_host(units(juju, WORKER_READ)[0], model_name(juju))}:{WORKER_PORT}/"
    )
    _assert_denied(juju, source, worker_url)
    coordinator = units(juju, COORDINATOR)[0]
    _assert_status(http_status(juju, coordinator, worker_url), 200, coordinator, worker_url)


def _assert_status(actual: int, expected: int, source: str, url: str) -> None:
    assert actual == expected, f"{source} -> {url}: got {actual}, expected {expected}"


def _assert_denied(juju: jubilant.Juju, source: str, url: str) -> None:
    status, body = http_get(juju, source, url)
    assert is_mesh_denial(status, body), f"{source} -> {url}: got {status} {body[:200]!r}"


def test_policies_follow_a_new_worker_app(
    juju: jubilant.Juju, kube: lightkube.Client, worker_charm: PackedCharm
):
    deploy(juju, worker_charm, WORKER_EXTRA)
    juju.integrate(f"{COORDINATOR}:cluster", f"{WORKER_EXTRA}:cluster")
    wait_settled(juju, COORDINATOR, WORKER_READ, WORKER_WRITE, WORKER_EXTRA)

    eventually(lambda: _assert_count(_cluster_policies(kube, model_name(juju)), 1 + 2 * 3))
    source = units(juju, WORKER_EXTRA)[0]
    url = _api_url(juju)
    eventually(lambda: _assert_status(http_status(juju, source, url), 200, source, url))


def test_leaving_the_mesh_removes_labels_and_policies(juju: jubilant.Juju, kube: lightkube.Client):
    juju.remove_relation(f"{COORDINATOR}:service-mesh", f"{BEACON}:service-mesh")
    wait_settled(juju, COORDINATOR, WORKER_READ, WORKER_WRITE, WORKER_EXTRA)

    def check() -> None:
        _assert_count(_cluster_policies(kube, model_name(juju)), 0)
        for app in (COORDINATOR, WORKER_READ, WORKER_WRITE, WORKER_EXTRA):
            for pod in _pods_of(kube, app):
                assert pod.metadata is not None
                labels = pod.metadata.labels or {}
                assert DATAPLANE_MODE not in labels, (pod.metadata.name, labels)
                assert labels.get(PART_OF) == COORDINATOR, (pod.metadata.name, labels)

    eventually(check)
