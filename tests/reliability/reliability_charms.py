# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Both reference charms, loaded once, and the Juju states the reliability tests run them in.

The charms are loaded from their ``src/charm.py`` the way their own unit tests do (under the
same module names, so a session running both suites shares one copy), and ops.testing finds
each ``charmcraft.yaml`` next to the module file.
"""

from __future__ import annotations

import importlib.util
import json
import pathlib
import sys
from types import ModuleType
from typing import Any

from ops import testing

from coordinated_workers import ClusterProviderAppData
from coordinated_workers.testing import coordinator_relation, worker_relation
from service_mesh import testing as service_mesh_testing
from service_mesh.testing import FakeKubernetes
from tests.support import coordinators

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
MODEL = "rel"
COORDINATOR = "coordinator-k8s"
WORKERS = ("worker-read", "worker-write")
BEACON = "istio-beacon-k8s"
MESH_LABELS = {
    "istio.io/dataplane-mode": "ambient",
    "istio.io/use-waypoint": f"{MODEL}-{BEACON}-waypoint",
    "istio.io/use-waypoint-namespace": MODEL,
}
MEMBERSHIP = {"app.kubernetes.io/part-of": COORDINATOR}


def _load(module_name: str, charm_dir: str) -> ModuleType:
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(
        module_name, REPO_ROOT / charm_dir / "src" / "charm.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # ops.testing finds charmcraft.yaml from the module file
    spec.loader.exec_module(module)
    return module


coordinator_charm = _load("coordinator_charm", "coordinator")
worker_charm = _load("worker_charm", "worker")


def coordinator_context() -> testing.Context:
    return testing.Context(coordinator_charm.CoordinatorCharm, app_name=COORDINATOR)


def worker_context(app: str = WORKERS[0]) -> testing.Context:
    return testing.Context(worker_charm.WorkerCharm, app_name=app)


def new_kubernetes() -> FakeKubernetes:
    """A fake cluster in which Juju has deployed the coordinator and both worker apps."""
    fake = FakeKubernetes()
    for app in (COORDINATOR, *WORKERS):
        fake.add_juju_app(app, namespace=MODEL)
    return fake


# ----- coordinator states -------------------------------------------------------------------


def coordinator_state(
    *relations: testing.RelationBase, leader: bool = True, **kwargs: Any
) -> testing.State:
    return coordinators.coordinator_state(*relations, model=MODEL, leader=leader, **kwargs)


def workers_relations(apps: tuple[str, ...] = WORKERS, units: int = 1) -> list[testing.Relation]:
    """One cluster relation per worker app; the first runs ``read``, the others ``write``."""
    return [
        worker_relation(app, ["read"] if i == 0 else ["write"], units=units, model=MODEL)
        for i, app in enumerate(apps)
    ]


def mesh_relation(labels: dict[str, str] | None = None, **kwargs: Any) -> testing.Relation:
    return service_mesh_testing.mesh_relation(
        MESH_LABELS if labels is None else labels, remote_app_name=BEACON, **kwargs
    )


def relation_by_endpoint(state: testing.State, endpoint: str) -> testing.Relation:
    return next(r for r in state.relations if r.endpoint == endpoint)  # type: ignore[return-value]


def replace_relation(
    state: testing.State, old: testing.RelationBase, new: testing.RelationBase | None
) -> testing.State:
    """``state`` with ``old`` swapped for ``new`` (or dropped), everything else kept."""
    relations = [r for r in state.relations if r.id != old.id]
    if new is not None:
        relations.append(new)
    return testing.State(**{**_fields(state), "relations": relations})


def with_relations(state: testing.State, *added: testing.RelationBase) -> testing.State:
    return testing.State(**{**_fields(state), "relations": [*state.relations, *added]})


def with_fields(state: testing.State, **changes: Any) -> testing.State:
    return testing.State(**{**_fields(state), **changes})


def _fields(state: testing.State) -> dict[str, Any]:
    return {
        name: getattr(state, name)
        for name in (
            "config",
            "relations",
            "networks",
            "containers",
            "storages",
            "opened_ports",
            "leader",
            "model",
            "secrets",
            "resources",
            "planned_units",
            "deferred",
            "stored_states",
            "app_status",
            "unit_status",
            "workload_version",
        )
    }


# ----- worker states ------------------------------------------------------------------------


def provider_data(
    labels: dict[str, str] | None = None, **overrides: Any
) -> ClusterProviderAppData:
    """What a meshed coordinator publishes to a worker."""
    data = {
        "worker_config": f"coordinator: {COORDINATOR}.{MODEL}.svc.cluster.local\n",
        "worker_labels": {**MEMBERSHIP, **MESH_LABELS} if labels is None else labels,
        "worker_ports": [8080],
        **overrides,
    }
    return ClusterProviderAppData.model_validate(data)


def worker_state(
    *relations: testing.RelationBase, leader: bool = True, **kwargs: Any
) -> testing.State:
    kwargs.setdefault("containers", [testing.Container("workload", can_connect=True)])
    return testing.State(
        leader=leader, model=testing.Model(name=MODEL), relations=list(relations), **kwargs
    )


def cluster_to_coordinator(
    data: ClusterProviderAppData | None = None, **kwargs: Any
) -> testing.Relation:
    return coordinator_relation(provider_data() if data is None else data, COORDINATOR, **kwargs)


# ----- what Kubernetes holds ----------------------------------------------------------------


def pod_labels(kube: FakeKubernetes, app: str) -> dict[str, str]:
    sts = kube.get("statefulsets", MODEL, app)
    assert sts is not None
    return dict(sts["spec"]["template"]["metadata"].get("labels") or {})


def service_labels(kube: FakeKubernetes, app: str) -> dict[str, str]:
    service = kube.get("services", MODEL, app)
    assert service is not None
    return dict(service["metadata"].get("labels") or {})


def policy_specs(kube: FakeKubernetes) -> dict[str, Any]:
    """Name -> spec of every AuthorizationPolicy in the cluster."""
    return {p["metadata"]["name"]: p["spec"] for p in kube.list("authorizationpolicies")}


def label_record(kube: FakeKubernetes, app: str) -> dict[str, str] | None:
    configmap = kube.get("configmaps", MODEL, f"{app}-pod-labels")
    return None if configmap is None else json.loads(configmap["data"]["labels"])


def writes(kube: FakeKubernetes) -> list[tuple[str, str]]:
    """(method, path) of every request that could change something, oldest first."""
    return [(r["method"], r["path"]) for r in kube.requests if r["method"] != "GET"]
