"""The mesh side of the ``service_mesh`` relation: publish join labels, collect policies."""

from __future__ import annotations

import json
import logging
import typing

import ops
import pydantic

from ._databag import describe, update_changed
from ._endpoints import require_endpoints
from ._models import MeshPolicy, MeshType, ServiceMeshProviderAppData

logger = logging.getLogger(__name__)

POLICIES_KEY = "policies"


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
        """Return every valid policy requested by related applications.

        A consumer's databag is remote input: a relation whose ``policies`` is not a JSON
        list is skipped, and so is each individual policy that fails validation, so one
        broken consumer (or one broken policy) never takes the others' access away. Each
        skip is logged and the latest reason is available as :attr:`problem`.
        """
        policies, problems = self._decode_all()
        for problem in problems:
            logger.warning(problem)
        return policies

    @property
    def problem(self) -> str | None:
        """Why some requested policy was ignored, or None if every policy was usable."""
        _, problems = self._decode_all()
        return problems[-1] if problems else None

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
            decoded, relation_problems = decode_policies(raw, relation.app.name)
            policies.extend(decoded)
            problems.extend(relation_problems)
        return policies, problems


def decode_policies(raw: str, source: str) -> tuple[list[MeshPolicy], list[str]]:
    """Parse one consumer's ``policies`` value, keeping every policy that validates.

    Args:
        raw: The value of the ``policies`` key.
        source: The remote application's name, used in problem messages.
    """
    try:
        decoded: object = json.loads(raw)
    except json.JSONDecodeError as error:
        return [], [f"ignored policies from {source!r}: not valid JSON ({error.msg})"]
    except RecursionError:
        # Valid JSON nested deeper than Python's decoder follows (about 1000 levels).
        return [], [f"ignored policies from {source!r}: nested too deeply"]
    if not isinstance(decoded, list):
        return [], [f"ignored policies from {source!r}: expected a JSON list"]
    items = typing.cast("list[object]", decoded)
    policies: list[MeshPolicy] = []
    problems: list[str] = []
    for index, item in enumerate(items):
        policy = _validate(item)
        if isinstance(policy, MeshPolicy):
            policies.append(policy)
        else:
            problems.append(f"ignored policy #{index} from {source!r}: {policy}")
    return policies, problems


def _validate(item: object) -> MeshPolicy | str:
    """Return the policy, or why it is invalid (one bad policy must not drop the rest)."""
    try:
        return MeshPolicy.model_validate(item)
    except pydantic.ValidationError as error:
        return describe(error)
