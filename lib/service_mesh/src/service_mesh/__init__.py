# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Service mesh integration for Juju charms.

Protect an application and join the mesh (the consumer side of ``service_mesh``)::

    from service_mesh import AppPolicy, Endpoint, ServiceMeshConsumer, UnitPolicy

    class TempoCharm(ops.CharmBase):
        def __init__(self, framework: ops.Framework):
            super().__init__(framework)
            self.mesh = ServiceMeshConsumer(
                self,
                policies=[
                    AppPolicy(relation="tempo-api", endpoints=[Endpoint(ports=[3200])]),
                    UnitPolicy(relation="metrics-endpoint", ports=[8080]),
                ],
            )
            framework.observe(self.on.collect_unit_status, self._on_collect_status)

        def _on_collect_status(self, event: ops.CollectStatusEvent):
            if self.mesh.problem:
                event.add_status(ops.BlockedStatus(self.mesh.problem))

The charm needs the endpoints ``service-mesh`` (``service_mesh``, ``limit: 1``),
``require-cmr-mesh`` and ``provide-cmr-mesh`` (``cross_model_mesh``), and ``--trust`` when
``auto_join`` labels its pods. A mesh charm publishes the labels and reads the policies::

    self.mesh = ServiceMeshProvider(self, labels=mesh_labels, mesh_type=MeshType.istio)
    policies = self.mesh.mesh_info()
"""

from ._consumer import ServiceMeshConsumer, label_configmap_name_template
from ._dispatch import dispatched_event_name
from ._k8s import kubernetes_client, kubernetes_errors, statefulset_owner_reference
from ._labels import label_problem, reconcile_charm_labels, remove_charm_labels
from ._models import (
    AppPolicy,
    CMRData,
    Endpoint,
    MeshPolicy,
    MeshType,
    Method,
    Policy,
    PolicyTargetType,
    ServiceMeshProviderAppData,
    UnitPolicy,
)
from ._policies import build_mesh_policies, get_data_from_cmr_relation
from ._problem import Problem, ProblemLevel
from ._provider import ServiceMeshProvider
from ._resource_manager import PolicyResourceManager, ReconcileResult
from ._text import STATUS_LIMIT, safe_text
from .errors import (
    ConflictError,
    CRDMissingError,
    ForbiddenError,
    KubernetesError,
    LabelRecordOwnerError,
    MalformedResponseError,
    MissingEndpointError,
    ServiceMeshError,
)

__all__ = [
    "STATUS_LIMIT",
    "AppPolicy",
    "CMRData",
    "CRDMissingError",
    "ConflictError",
    "Endpoint",
    "ForbiddenError",
    "KubernetesError",
    "LabelRecordOwnerError",
    "MalformedResponseError",
    "MeshPolicy",
    "MeshType",
    "Method",
    "MissingEndpointError",
    "Policy",
    "PolicyResourceManager",
    "PolicyTargetType",
    "Problem",
    "ProblemLevel",
    "ReconcileResult",
    "ServiceMeshConsumer",
    "ServiceMeshError",
    "ServiceMeshProvider",
    "ServiceMeshProviderAppData",
    "UnitPolicy",
    "build_mesh_policies",
    "dispatched_event_name",
    "get_data_from_cmr_relation",
    "kubernetes_client",
    "kubernetes_errors",
    "label_configmap_name_template",
    "label_problem",
    "reconcile_charm_labels",
    "remove_charm_labels",
    "safe_text",
    "statefulset_owner_reference",
]
