# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Shared helpers for the integration tests: deploying the cluster, HTTP probes, Kubernetes.

HTTP requests are made from inside a unit's charm container with `juju exec` (which runs in
the charm container) and Python's urllib: every charm container has python3, the workload
images have no curl (the worker's is busybox with no Python either). A pod's charm container
shares the pod's network namespace, so in an Istio ambient mesh the request carries that
application's identity, which is what the authorization policies are about.

Kubernetes is read with lightkube from the default kubeconfig: `$KUBECONFIG`, else
`~/.kube/config`. It must reach the cluster that hosts the Juju models (CI writes it with
`sudo k8s config`; with MicroK8s use `microk8s config`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pathlib
import shlex
import time
from typing import TYPE_CHECKING, Any, TypeVar

import jubilant
import lightkube
import yaml

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]

COORDINATOR = "coordinator-k8s"
API_PORT = 8080
WORKER_PORT = 8080
# What a probe reports when the connection ended without an HTTP response (refused, reset,
# closed). ztunnel (L4 policies, and any caller outside the mesh) denies by closing it.
NO_RESPONSE = 0
# What a probe reports when the name did not resolve: never a denial, always a broken test.
NO_SUCH_HOST = -1
# What a probe reports when nothing came back in time: a dead or unreachable pod, not a denial
# (the mesh answers a denied caller at once).
TIMED_OUT = -2
# A waypoint (L7 policies on a Service) denies HTTP with this status and body instead.
WAYPOINT_DENIED = (403, "RBAC: access denied")

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class PackedCharm:
    """A packed charm file and the OCI resources to deploy it with."""

    path: pathlib.Path
    resources: dict[str, str]


def charm_resources(charm_dir: pathlib.Path) -> dict[str, str]:
    """Map each OCI resource of a charm to its pinned `upstream-source`."""
    metadata = yaml.safe_load((charm_dir / "charmcraft.yaml").read_text())
    resources: dict[str, dict[str, str]] = metadata.get("resources") or {}
    return {name: spec["upstream-source"] for name, spec in resources.items()}


def deploy(
    juju: jubilant.Juju,
    charm: PackedCharm,
    app: str,
    *,
    config: Mapping[str, bool | int | str] | None = None,
    num_units: int = 1,
) -> None:
    """Deploy a packed charm, trusted (the charms patch their own pods and services)."""
    juju.deploy(
        charm.path,
        app,
        config=config,
        num_units=num_units,
        resources=charm.resources,
        trust=True,
    )


def worker_roles(*roles: str) -> dict[str, bool | int | str]:
    """Worker config enabling exactly `roles` (e.g. `"read"`), with the meta role off."""
    return {"role-all": False, **{f"role-{role}": True for role in roles}}


# The charms this repository packs (deployed from local files): an error in one of them is a
# bug, so a wait fails at the first poll that shows it.
OUR_CHARMS = frozenset({"coordinator-k8s", "worker-k8s", "api-client"})
# Other charms go through error statuses while they start (istio-beacon-k8s raises until its
# waypoint is ready, and Juju retries the hook), so their error fails a wait only when it
# outlasts Juju's longest hook-retry interval (5 minutes) without clearing.
PERSISTENT_ERROR = 6 * 60


class ErrorGate:
    """The `error` callable of a wait: our charms fail fast, others only if the error persists.

    Canonical's own suites wait on `all_active` alone, and `jubilant.any_error` would fail on
    the first transient error of istio-k8s or the beacon.
    """

    def __init__(self, *apps: str, persistent: float = PERSISTENT_ERROR) -> None:
        self.apps = apps
        self.persistent = persistent
        self._erring_since: dict[str, float] = {}

    def __call__(self, status: jubilant.Status) -> bool:
        """Whether the wait should stop with an error now."""
        now = time.monotonic()
        for app in self.apps:
            if not jubilant.any_error(status, app):
                self._erring_since.pop(app, None)
                continue
            if status.apps[app].charm_name in OUR_CHARMS:
                return True
            since = self._erring_since.setdefault(app, now)
            if now - since >= self.persistent:
                return True
        return False


def wait_settled(juju: jubilant.Juju, *apps: str, timeout: float = 15 * 60) -> jubilant.Status:
    """Wait until `apps` are active and their agents idle (see `ErrorGate` for errors)."""
    return juju.wait(
        lambda status: (
            jubilant.all_active(status, *apps) and jubilant.all_agents_idle(status, *apps)
        ),
        error=ErrorGate(*apps),
        delay=5,
        timeout=timeout,
    )


def units(juju: jubilant.Juju, app: str) -> list[str]:
    """Names of the app's units (e.g. `worker-read/0`), in unit-number order."""
    return sorted(juju.status().get_units(app), key=lambda unit: int(unit.split("/")[1]))


def unit_host(unit: str, model: str) -> str:
    """The stable DNS name of a unit's pod, through its app's headless service."""
    app, number = unit.split("/")
    return f"{app}-{number}.{app}-endpoints.{model}.svc.cluster.local"


def app_host(app: str, model: str) -> str:
    """The DNS name of an application's (ClusterIP) service."""
    return f"{app}.{model}.svc.cluster.local"


_PROBE = """
import socket, sys, urllib.error, urllib.request
url, timeout, count = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
statuses, body = [], ""
for _ in range(count):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = response.read().decode(errors="replace")
            statuses.append(response.status)
    except urllib.error.HTTPError as error:
        body = error.read().decode(errors="replace")
        statuses.append(error.code)
    except Exception as error:
        body = repr(error)
        reason = getattr(error, "reason", error)
        if isinstance(reason, socket.gaierror):
            statuses.append(-1)
        elif isinstance(reason, TimeoutError):
            statuses.append(-2)
        else:
            statuses.append(0)
print(",".join(map(str, statuses)))
print(body)
"""


def http_get_many(
    juju: jubilant.Juju, unit: str, url: str, *, count: int, timeout: float = 10
) -> tuple[list[int], str]:
    """GET `url` `count` times from inside `unit`'s pod, in one `juju exec`.

    Returns:
        The statuses (`NO_RESPONSE` where the connection ended without a response,
        `NO_SUCH_HOST` where the name did not resolve, `TIMED_OUT` where nothing came back in
        time) and the last response body (or the error).
    """
    command = f"python3 -c {shlex.quote(_PROBE)} {shlex.quote(url)} {timeout} {count}"
    task = juju.exec(command, unit=unit, wait=count * timeout + 60)
    statuses, _, body = task.stdout.partition("\n")
    return [int(status) for status in statuses.split(",")], body


def http_get(juju: jubilant.Juju, unit: str, url: str, timeout: float = 10) -> tuple[int, str]:
    """GET `url` once from inside `unit`'s pod; return (status, body), status 0 if no response."""
    statuses, body = http_get_many(juju, unit, url, count=1, timeout=timeout)
    return statuses[0], body


def http_status(juju: jubilant.Juju, unit: str, url: str, timeout: float = 10) -> int:
    """The HTTP status of a GET of `url` from inside `unit`'s pod (0 if no response)."""
    return http_get(juju, unit, url, timeout)[0]


def is_mesh_denial(status: int, body: str) -> bool:
    """Whether a probe's outcome is the mesh refusing the caller.

    ztunnel and out-of-mesh destinations close the connection (`NO_RESPONSE`); a waypoint
    answers HTTP 403 "RBAC: access denied", or closes the connection when it treats the port
    as plain TCP. A name that does not resolve, or silence until the timeout, is not a denial.
    """
    return status == NO_RESPONSE or (status, body.strip()) == WAYPOINT_DENIED


def requests_served(juju: jubilant.Juju, via_unit: str, worker_unit: str) -> float:
    """How many requests a worker unit's app has served, from its own `/metrics`.

    prometheus-example-app counts every request to its catch-all handler in
    `http_requests_total`; scraping `/metrics` itself is not counted.
    """
    url = f"http://{unit_host(worker_unit, model_name(juju))}:{WORKER_PORT}/metrics"
    status, body = http_get(juju, via_unit, url)
    assert status == 200, f"{url} from {via_unit}: {status} {body[:200]}"
    total = 0.0
    for line in body.splitlines():
        if line.startswith("http_requests_total"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def requests_served_by_app(juju: jubilant.Juju, via_unit: str, app: str) -> float:
    """How many requests all units of a worker app have served (see `requests_served`)."""
    return sum(requests_served(juju, via_unit, unit) for unit in units(juju, app))


def eventually(check: Callable[[], T], *, timeout: float = 180, interval: float = 5) -> T:
    """Call `check` until it passes (or time runs out, then re-raise its last failure).

    Mesh policies, pod labels and scrapes converge asynchronously after Juju settles, and a
    `juju exec` into a pod that is restarting (new labels roll the StatefulSet) fails too.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except (AssertionError, jubilant.CLIError, jubilant.TaskError, TimeoutError):
            if time.monotonic() >= deadline:
                raise
        time.sleep(interval)


def model_name(juju: jubilant.Juju) -> str:
    """The bare model name of `juju` (no controller prefix): the Kubernetes namespace."""
    assert juju.model is not None
    return juju.model.rpartition(":")[2]


def kube_client(namespace: str) -> lightkube.Client:
    """A lightkube client for `namespace`, from `$KUBECONFIG` or `~/.kube/config`."""
    return lightkube.Client(namespace=namespace, field_manager="integration-tests")


def ownership_label(value: str) -> str:
    """A label value as the coordinator writes it: >63 chars become 54 + '-' + 8 hex digits."""
    if len(value) <= 63:
        return value
    return f"{value[:54]}-{hashlib.sha256(value.encode()).hexdigest()[:8]}"


def cluster_internal_selector(coordinator: str, model: str) -> dict[str, str]:
    """The labels that mark the coordinator's cluster-internal AuthorizationPolicies."""
    return {
        "app.kubernetes.io/instance": ownership_label(f"{coordinator}-{model}"),
        "kubernetes-resource-handler-scope": ownership_label(
            f"{coordinator}-{model}-cluster-internal"
        ),
    }


def query_json(juju: jubilant.Juju, unit: str, url: str) -> dict[str, Any]:
    """GET a JSON API from inside `unit`'s pod (e.g. Prometheus or Loki on localhost)."""
    status, body = http_get(juju, unit, url, timeout=30)
    assert status == 200, f"{url} from {unit}: {status} {body[:300]}"
    return json.loads(body)


_AUTHORIZED_GET = """
import base64, sys, urllib.request
url, user, password = sys.argv[1], sys.argv[2], sys.argv[3]
request = urllib.request.Request(url)
token = base64.b64encode(f"{user}:{password}".encode()).decode()
request.add_header("Authorization", f"Basic {token}")
with urllib.request.urlopen(request, timeout=30) as response:
    print(response.read().decode(errors="replace"))
"""


def query_json_as(juju: jubilant.Juju, unit: str, url: str, user: str, password: str) -> Any:
    """GET a JSON API with basic auth from inside `unit`'s pod (Grafana's, on localhost)."""
    command = " ".join(
        shlex.quote(part) for part in ("python3", "-c", _AUTHORIZED_GET, url, user, password)
    )
    return json.loads(juju.exec(command, unit=unit, wait=90).stdout)
