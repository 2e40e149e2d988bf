# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The mesh side of the ``service_mesh`` relation: publish join labels, collect policies."""

from __future__ import annotations

import json
import logging
import typing

import ops
import pydantic

from ._endpoints import require_endpoints
from ._models import MeshPolicy, MeshType, ServiceMeshProviderAppData
from ._problem import Problem
from ._text import safe_text
from .databag import describe_validation_error, update_changed

logger = logging.getLogger(__name__)

POLICIES_KEY = "policies"

MAX_POLICIES_PER_RELATION = 500
"""Most policies read from one consumer; a real charm asks for a handful per relation."""


class ServiceMeshProvider(ops.Object):
    """Tell related applications how to join the mesh and read which traffic they allow.

    Only the leader writes, and only keys whose value changed, so re-running
    :meth:`update_relations` from every reconcile is cheap and safe on any unit.
    """

    def __init__(
        self,
        charm: ops.CharmBase,
        labels: dict[str, str],
        mesh_type: MeshType,
        mesh_relation_name: str = "service-mesh",
    ) -> None:
        """Publish on relation-created, config-changed and leader-elected.

        Args:
            charm: The mesh charm (for example a beacon).
            labels: Labels a consumer must put on its pods to join the mesh.
            mesh_type: The mesh implementation consumers will be enrolled in.
            mesh_relation_name: The endpoint of interface ``service_mesh``.

        Raises:
            MissingEndpointError: ``mesh_relation_name`` is not in the charm's metadata.
        """
        super().__init__(charm, mesh_relation_name)
        require_endpoints(charm, [(mesh_relation_name, "service_mesh provider")])
        self._charm = charm
        self._relation_name = mesh_relation_name
        self._labels = labels
        self._mesh_type = mesh_type
        self.framework.observe(charm.on[mesh_relation_name].relation_created, self._on_change)
        # Upstream republishes on config-changed because the labels often derive from config.
        self.framework.observe(charm.on.config_changed, self._on_change)
        # A new leader may inherit relations its predecessor never got to publish on.
        self.framework.observe(charm.on.leader_elected, self._on_change)

    def _on_change(self, _event: ops.EventBase) -> None:
        self.update_relations()

    def update_relations(self) -> None:
        """Publish labels and mesh type on every relation; a no-op on non-leaders."""
        if not self._charm.unit.is_leader():
            return
        data = ServiceMeshProviderAppData(labels=self._labels, mesh_type=self._mesh_type)
        # Each value is its own JSON document: that is the wire format (``"\"istio\""``).
        encoded = {key: json.dumps(value) for key, value in data.model_dump(mode="json").items()}
        for relation in self._charm.model.relations[self._relation_name]:
            update_changed(relation.data[self._charm.app], encoded)

    def mesh_info(self) -> list[MeshPolicy]:
        """Return every usable policy requested by related applications.

        A consumer's databag is remote input, and a consumer may only open its own door: a
        relation whose ``policies`` is not a JSON list is skipped, and so is each policy that
        fails validation or targets anything but the consumer itself (see
        :func:`decode_policies`), so one broken or hostile consumer never takes the others'
        access away nor grants access to someone else's workload. Each relation with skipped
        policies is logged once, and the latest reason is available as :attr:`problem`.
        """
        policies, problems = self._decode_all()
        for problem in problems:
            logger.warning(problem)
        return policies

    @property
    def problem(self) -> str | None:
        """Why some requested policy was ignored, or None if every policy was usable.

        A string, as upstream's provider offers it; :attr:`problems` gives every one.
        """
        _, problems = self._decode_all()
        return problems[-1] if problems else None

    @property
    def problems(self) -> tuple[Problem, ...]:
        """Why each ignored policy was ignored, as blocked :class:`Problem` values."""
        return tuple(Problem.blocked(problem) for problem in self._decode_all()[1])

    def _decode_all(self) -> tuple[list[MeshPolicy], list[str]]:
        policies: list[MeshPolicy] = []
        problems: list[str] = []
        # In relation-id order, so the result (and the problem reported) never depends on the
        # order Juju happens to list relations in.
        relations = sorted(self._charm.model.relations[self._relation_name], key=lambda r: r.id)
        for relation in relations:
            raw = relation.data[relation.app].get(POLICIES_KEY)
            if raw is None:
                # The consumer hasn't written yet (canonical/istio-beacon-k8s-operator#122):
                # nothing requested so far.
                continue
            decoded, problem = decode_policies(
                raw, relation.app.name, consumer_namespace=self._charm.model.name
            )
            policies.extend(decoded)
            if problem is not None:
                problems.append(problem)
        return policies, problems


def decode_policies(
    raw: str, source: str, *, consumer_namespace: str | None = None
) -> tuple[list[MeshPolicy], str | None]:
    """Parse one consumer's ``policies`` value, keeping every policy it may ask for.

    A policy is kept when it validates as a :class:`MeshPolicy`, its source names are Juju
    names, and its target is the consumer itself: ``target_app_name`` is the related
    application (``source``), ``target_namespace`` is ``consumer_namespace``, any
    ``target_service`` is the application's own Service, and there is no
    ``target_selector_labels`` (a selector can match any pod, so only the charm that owns the
    policies may use one, through :class:`PolicyResourceManager` directly). Upstream applies
    whatever a consumer names, which lets any related application open access to other
    workloads, even in other namespaces.

    At most :data:`MAX_POLICIES_PER_RELATION` policies are read; the rest are ignored.

    Args:
        raw: The value of the ``policies`` key.
        source: The remote application's name: the only target it may name.
        consumer_namespace: The namespace the consumer runs in (the provider's model, as a
            beacon serves its own model); None skips the namespace check.

    Returns:
        The kept policies, and one line that summarises what was dropped and why (None when
        nothing was), so a bag of a million bad policies costs one log record, not a million.
    """
    try:
        decoded: object = json.loads(raw)
    except json.JSONDecodeError as error:
        return [], f"ignored policies from {source!r}: not valid JSON ({error.msg})"
    except RecursionError:
        # Valid JSON nested deeper than Python's decoder follows (about 1000 levels).
        return [], f"ignored policies from {source!r}: nested too deeply"
    if not isinstance(decoded, list):
        return [], f"ignored policies from {source!r}: expected a JSON list"
    items = typing.cast("list[object]", decoded)
    policies: list[MeshPolicy] = []
    reasons: list[str] = []
    for index, item in enumerate(items[:MAX_POLICIES_PER_RELATION]):
        policy = _validate(item)
        if isinstance(policy, MeshPolicy):
            policy = _foreign_target(policy, source, consumer_namespace) or policy
        if isinstance(policy, MeshPolicy):
            policies.append(policy)
        else:
            reasons.append(f"#{index}: {policy}")
    return policies, _summary(source, len(items), reasons)


def _summary(source: str, total: int, reasons: list[str]) -> str | None:
    """One line for everything dropped from one relation (first reason shown, capped)."""
    over = max(0, total - MAX_POLICIES_PER_RELATION)
    if not reasons and not over:
        return None
    parts: list[str] = []
    if reasons:
        more = f" (and {len(reasons) - 1} more)" if len(reasons) > 1 else ""
        parts.append(f"{safe_text(reasons[0], 200)}{more}")
    if over:
        parts.append(f"{over} policies beyond the first {MAX_POLICIES_PER_RELATION} not read")
    dropped = len(reasons) + over
    return f"ignored {dropped} of {total} policies from {source!r}: " + "; ".join(parts)


def _foreign_target(policy: MeshPolicy, consumer: str, namespace: str | None) -> str | None:
    """Why a consumer may not ask for ``policy`` (it is not about the consumer), or None."""
    if policy.target_selector_labels:
        return "target_selector_labels is not accepted from a consumer (it can select any pod)"
    if policy.target_app_name != consumer:
        return f"target_app_name must be the consumer {consumer!r}"
    if namespace is not None and policy.target_namespace != namespace:
        return f"target_namespace must be the consumer's namespace {namespace!r}"
    if policy.target_service not in (None, consumer):
        return f"target_service must be the consumer's own Service {consumer!r}"
    return None  # source names: MeshPolicy's own validation holds them to Juju's rules


def _validate(item: object) -> MeshPolicy | str:
    """Return the policy, or why it is invalid (one bad policy must not drop the rest)."""
    try:
        return MeshPolicy.model_validate(item)
    except pydantic.ValidationError as error:
        return describe_validation_error(error)
