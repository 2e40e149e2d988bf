# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The charms a plan runs: the repository's real coordinator and worker, and a beacon stand-in.

The coordinator and worker are loaded from ``coordinator/src/charm.py`` and
``worker/src/charm.py`` exactly as their unit tests load them. Their metadata is each charm's
``charmcraft.yaml`` without what only documents or builds the charm (descriptions, summaries,
the bases and platforms it is packed for, what it assumes of Juju at deploy time, its images'
``upstream-source``): ops.testing writes the metadata out as YAML on every hook, in pure
Python, and none of those keys changes what a hook does.

istio-beacon-k8s is not in this repository. :class:`BeaconStandIn` does the part of its job a
plan needs, with this repository's library: it publishes the beacon's ambient-mode labels with
:class:`service_mesh.ServiceMeshProvider` and applies the AuthorizationPolicies for the
policies it receives with :class:`service_mesh.PolicyResourceManager`, owned as the beacon
owns them. It does not model the waypoint, the beacon's own policies, ``model-on-mesh`` or
``manage-authorization-policies=false``.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import pathlib
import shutil
import sys
from typing import Any, cast

import ops
import yaml

from service_mesh import MeshType, PolicyResourceManager, ServiceMeshProvider, kubernetes_client
from service_mesh.errors import KubernetesError

logger = logging.getLogger(__name__)

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]

BEACON_META: dict[str, Any] = {
    "name": "istio-beacon-k8s",
    "provides": {"service-mesh": {"interface": "service_mesh"}},
}
BEACON_POLICY_SCOPE = "istio-authorization-policy"
_PROSE = frozenset(
    {"description", "summary", "title", "links", "parts", "base", "platforms", "type", "assumes"}
)
"""Top-level charmcraft.yaml keys that only document, build or deploy a charm."""
_DOCUMENTATION = frozenset({"description", "summary", "upstream-source"})
"""Keys of endpoints, options and resources that only document them."""


@functools.cache
def _load(charm_dir: str, module_name: str) -> Any:
    path = REPO_ROOT / charm_dir / "src" / "charm.py"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:  # pragma: no cover - the file is in the repo
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # ops.testing finds charmcraft.yaml from the module file
    spec.loader.exec_module(module)
    return module


@functools.cache
def charm_meta(charm_dir: str) -> dict[str, Any]:
    """``<charm_dir>/charmcraft.yaml`` as ops.testing takes it (``meta=``), without its prose."""
    raw = yaml.safe_load((REPO_ROOT / charm_dir / "charmcraft.yaml").read_text(encoding="utf-8"))
    return {key: _without_prose(value) for key, value in raw.items() if key not in _PROSE}


def _without_prose(data: Any) -> Any:
    """``data`` without the texts that document its endpoints, options and resources."""
    if not isinstance(data, dict):
        return data
    return {
        key: _without_prose(value)
        for key, value in cast("dict[object, Any]", data).items()
        if not (key in _DOCUMENTATION and isinstance(value, str))
    }


def coordinator_charm_root(directory: pathlib.Path) -> pathlib.Path:
    """A charm dir holding a copy of the coordinator's ``src`` (its rules and dashboards)."""
    shutil.copytree(REPO_ROOT / "coordinator" / "src", directory / "src")
    return directory


def coordinator_charm() -> type[ops.CharmBase]:
    """``CoordinatorCharm`` from ``coordinator/src/charm.py``."""
    return _load("coordinator", "plan_coordinator_charm").CoordinatorCharm


def worker_charm() -> type[ops.CharmBase]:
    """``WorkerCharm`` from ``worker/src/charm.py``."""
    return _load("worker", "plan_worker_charm").WorkerCharm


def beacon_labels(beacon_app: str, beacon_model: str) -> dict[str, str]:
    """The labels istio-beacon-k8s asks consumers to put on their pods (ambient, waypoint)."""
    return {
        "istio.io/dataplane-mode": "ambient",
        "istio.io/use-waypoint": f"{beacon_model}-{beacon_app}-waypoint",
        "istio.io/use-waypoint-namespace": beacon_model,
    }


def beacon_policy_labels(beacon_app: str, beacon_model: str) -> dict[str, str]:
    """Ownership labels of the beacon's AuthorizationPolicies (canonical-service-mesh >= 0.0.2)."""
    return {
        "app.kubernetes.io/instance": f"{beacon_model}-{beacon_app}",
        "kubernetes-resource-handler-scope": BEACON_POLICY_SCOPE,
    }


class BeaconStandIn(ops.CharmBase):
    """Publishes mesh labels and turns the policies it receives into AuthorizationPolicies."""

    def __init__(self, framework: ops.Framework) -> None:
        super().__init__(framework)
        labels = beacon_labels(self.app.name, self.model.name)
        self.provider = ServiceMeshProvider(self, labels=labels, mesh_type=MeshType.istio)
        self._problem: str | None = None
        framework.observe(self.on.start, self._reconcile)
        framework.observe(self.on.config_changed, self._reconcile)
        framework.observe(self.on["service-mesh"].relation_changed, self._reconcile)
        framework.observe(self.on["service-mesh"].relation_broken, self._reconcile)
        framework.observe(self.on.update_status, self._reconcile)
        framework.observe(self.on.collect_unit_status, self._on_collect_status)

    def _reconcile(self, _event: ops.EventBase) -> None:
        if not self.unit.is_leader():
            return
        self.provider.update_relations()
        labels = beacon_policy_labels(self.app.name, self.model.name)
        field_manager = f"{self.app.name}-{self.model.name}"
        try:
            with kubernetes_client(self.model.name, field_manager) as client:
                PolicyResourceManager(self, client, labels).reconcile(
                    self.provider.mesh_info(), MeshType.istio
                )
        except KubernetesError as e:
            logger.error("authorization policies: %s", e)
            self._problem = f"authorization policies: {e}"

    def _on_collect_status(self, event: ops.CollectStatusEvent) -> None:
        if self._problem:
            event.add_status(ops.BlockedStatus(self._problem))
        elif self.provider.problem:
            event.add_status(ops.BlockedStatus(self.provider.problem))
        event.add_status(ops.ActiveStatus())
