# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Turn a charm's policies and its relations into MeshPolicies, and read cross-model identities.

Both functions are pure apart from reading relation data, so charms that manage policies
themselves (a coordinator, the beacon) can call them on every reconcile.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

import pydantic

from ._endpoints import MissingEndpointError
from ._models import AppPolicy, CMRData, Endpoint, MeshPolicy, PolicyTargetType, UnitPolicy
from .databag import describe_validation_error

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    import ops

logger = logging.getLogger(__name__)

CMR_DATA_KEY = "cmr_data"


def build_mesh_policies(
    relation_mapping: Mapping[str, Sequence[ops.Relation]],
    target_app_name: str,
    target_namespace: str,
    policies: Sequence[AppPolicy | UnitPolicy],
    cmr_application_data: Mapping[str, CMRData] | None = None,
) -> list[MeshPolicy]:
    """Return one MeshPolicy per (policy, related application), in that nesting order.

    The order (policies as given, then relations as the model lists them) is what upstream
    produces and therefore what lands in the databag; keeping it avoids needless rewrites.

    Args:
        relation_mapping: The charm's relations, usually ``self.model.relations``.
        target_app_name: The application being protected, usually ``self.app.name``.
        target_namespace: Its Kubernetes namespace, which for Juju is ``self.model.name``.
        policies: Which relation endpoints may reach this app, and on which ports/paths.
        cmr_application_data: Real identities of cross-model sources, keyed by the local
            alias of the remote application (see :func:`get_data_from_cmr_relation`). A
            source found here gets its real app and model name as principal.

    Raises:
        MissingEndpointError: A policy names a relation endpoint the charm doesn't declare.
    """
    mesh_policies, _ = build_mesh_policies_with_problems(
        relation_mapping, target_app_name, target_namespace, policies, cmr_application_data
    )
    return mesh_policies


def build_mesh_policies_with_problems(
    relation_mapping: Mapping[str, Sequence[ops.Relation]],
    target_app_name: str,
    target_namespace: str,
    policies: Sequence[AppPolicy | UnitPolicy],
    cmr_application_data: Mapping[str, CMRData] | None = None,
) -> tuple[list[MeshPolicy], list[str]]:
    """Like :func:`build_mesh_policies`, also returning why any policy was skipped."""
    cmr_application_data = cmr_application_data or {}
    mesh_policies: list[MeshPolicy] = []
    problems: list[str] = []
    for policy in policies:
        try:
            relations = relation_mapping[policy.relation]
        except KeyError:
            raise MissingEndpointError(policy.relation, "named by a mesh policy") from None
        for relation in relations:
            source = cmr_application_data.get(relation.app.name)
            try:
                mesh_policies.append(
                    _mesh_policy(
                        policy,
                        source_app_name=source.app_name if source else relation.app.name,
                        source_namespace=source.juju_model_name if source else target_namespace,
                        target_app_name=target_app_name,
                        target_namespace=target_namespace,
                    )
                )
            except pydantic.ValidationError as error:
                problem = (
                    f"skipped the mesh policy for {policy.relation!r} from "
                    f"{relation.app.name!r}: {describe_validation_error(error)}"
                )
                logger.warning(problem)
                problems.append(problem)
    return mesh_policies, problems


def _mesh_policy(
    policy: AppPolicy | UnitPolicy,
    *,
    source_app_name: str,
    source_namespace: str,
    target_app_name: str,
    target_namespace: str,
) -> MeshPolicy:
    if isinstance(policy, UnitPolicy):
        return MeshPolicy(
            source_namespace=source_namespace,
            source_app_name=source_app_name,
            target_namespace=target_namespace,
            target_app_name=target_app_name,
            target_type=PolicyTargetType.unit,
            endpoints=[Endpoint(ports=policy.ports)] if policy.ports else [],
        )
    return MeshPolicy(
        source_namespace=source_namespace,
        source_app_name=source_app_name,
        target_namespace=target_namespace,
        target_app_name=target_app_name,
        target_service=policy.service,
        target_type=PolicyTargetType.app,
        endpoints=policy.endpoints,
    )


def encode_policies(policies: Iterable[MeshPolicy]) -> str:
    """Serialise policies exactly as upstream does for the ``policies`` key.

    Python's default ``json.dumps`` separators, ``null``s kept and model field order: providers
    don't care, but byte-identical output means an upgrade from upstream rewrites nothing.
    """
    return json.dumps([policy.model_dump(mode="json") for policy in policies])


def encode_cmr_data(app_name: str, model_name: str) -> str:
    """Serialise this app's real identity for the ``cmr_data`` key of ``require-cmr-mesh``."""
    return json.dumps(CMRData(app_name=app_name, juju_model_name=model_name).model_dump())


def get_data_from_cmr_relation(cmr_relations: Iterable[ops.Relation]) -> dict[str, CMRData]:
    """Return the real identity of each cross-model source, keyed by its local alias.

    Relations without ``cmr_data`` (not yet written) are skipped silently; ones whose
    ``cmr_data`` is not valid JSON or lacks a field are logged and skipped, so one bad remote
    app never hides the others.
    """
    cmr_data, _ = get_data_from_cmr_relation_with_problems(cmr_relations)
    return cmr_data


def get_data_from_cmr_relation_with_problems(
    cmr_relations: Iterable[ops.Relation],
) -> tuple[dict[str, CMRData], list[str]]:
    """Like :func:`get_data_from_cmr_relation`, also returning why any relation was skipped."""
    cmr_data: dict[str, CMRData] = {}
    problems: list[str] = []
    for relation in cmr_relations:
        raw = relation.data[relation.app].get(CMR_DATA_KEY)
        if raw is None:
            continue
        try:
            cmr_data[relation.app.name] = CMRData.model_validate_json(raw)
        except pydantic.ValidationError as error:
            reason = describe_validation_error(error)
            problem = f"ignored invalid cmr_data from {relation.app.name!r}: {reason}"
            logger.warning(problem)
            problems.append(problem)
    return cmr_data, problems
