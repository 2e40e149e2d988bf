# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The application side of the ``service_mesh`` relation: request policies, learn how to join."""

from __future__ import annotations

import contextlib
import json
import logging
from typing import TYPE_CHECKING, Any

import ops
import pydantic

from ._dispatch import dispatched_event_name
from ._endpoints import require_endpoints
from ._k8s import kubernetes_client, new_client
from ._labels import label_problem, reconcile_charm_labels, remove_charm_labels
from ._models import AppPolicy, MeshPolicy, MeshType, ServiceMeshProviderAppData, UnitPolicy
from ._policies import (
    CMR_DATA_KEY,
    build_mesh_policies_with_problems,
    encode_cmr_data,
    encode_policies,
    get_data_from_cmr_relation_with_problems,
)
from ._problem import Problem
from ._provider import POLICIES_KEY
from ._text import safe_text, status_text
from .databag import canonical_json, describe_validation_error, update_changed
from .errors import KubernetesError

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterable, Mapping, Sequence

    import lightkube

logger = logging.getLogger(__name__)


label_configmap_name_template = "juju-service-mesh-{app_name}-labels"
"""Name of the ConfigMap recording which mesh labels the consumer put on its pods."""


_LEFT = "left"
"""Label state of an application that is not (or no longer) on the mesh."""
_UNKNOWN = ""
"""Label state after a failed attempt: the next hook must try again."""
_NOT_LABEL_HOOKS: tuple[type[ops.EventBase], ...] = (
    ops.CollectMetricsEvent,  # a restricted context: no leadership, no relation data
    ops.RemoveEvent,  # the application's pods are going away with it
    ops.StopEvent,
)

_BagKey = tuple[int, tuple[tuple[str, str], ...]]
"""A relation id and the sorted content of its remote app bag."""
_Decoded = tuple["ServiceMeshProviderAppData | None", "str | None"]
"""The provider's data (None if unusable or absent) and why it is unusable."""


class ServiceMeshConsumer(ops.Object):
    """Ask the mesh to let related applications in, and (optionally) join it.

    Its databags are wire-compatible with upstream's consumer
    (``docs/differences-from-upstream.md`` lists how its behaviour differs).

    * Only the leader writes, and only values that changed; on other units every method is a
      harmless no-op rather than a databag permission error.
    * The provider's data is remote input. A missing, malformed or mistyped value is logged
      and treated as absent (no labels, no mesh type) instead of failing the hook; the reason
      is kept in :attr:`problem`. A provider that publishes only ``labels`` (istio-beacon
      before ``mesh_type`` existed) is read as Istio, the only mesh such providers served.
    * With ``auto_join`` the labels are reconciled by the leader only, and Kubernetes errors
      land in :attr:`problem` instead of crashing the hook. While the provider's data is
      malformed the pods keep the labels last applied: garbage is not "leave the mesh".
    * Leader election also republishes, so a new leader repairs what a predecessor missed.
    * Label work converges: the leader remembers (in its stored state) the labels it last
      applied without error, and every hook whose wanted labels differ from that (a join or
      leave that failed, say with a 403 before ``juju trust``, or a 500) tries again, with the
      problem in :attr:`problem` until it succeeds. A hook with nothing to change makes no
      Kubernetes request.
    """

    _label_state = ops.StoredState()

    def __init__(
        self,
        charm: ops.CharmBase,
        mesh_relation_name: str = "service-mesh",
        cross_model_mesh_requires_name: str = "require-cmr-mesh",
        cross_model_mesh_provides_name: str = "provide-cmr-mesh",
        policies: Sequence[AppPolicy | UnitPolicy] | None = None,
        auto_join: bool = True,
    ) -> None:
        """Observe the events after which the requested policies or the labels may change.

        Args:
            charm: The charm being protected by (and optionally joining) the mesh.
            mesh_relation_name: The endpoint of interface ``service_mesh`` (``limit: 1``).
            cross_model_mesh_requires_name: Endpoint on which this app tells cross-model
                targets its real name and model.
            cross_model_mesh_provides_name: Endpoint on which cross-model sources tell this
                app theirs; it must come through the same offer as the workload relation.
            policies: Which relations may reach this application, and how.
            auto_join: Put the provider's labels on this application's pods and Service
                (leader only, needs ``--trust``). Pass False when the charm reconciles its
                labels itself, as a coordinator does.

        Raises:
            MissingEndpointError: One of the endpoints, or a relation named by a policy, is not
                declared in the charm's metadata.
        """
        super().__init__(charm, mesh_relation_name)
        self._charm = charm
        self._mesh_relation_name = mesh_relation_name
        self._cmr_provides_name = cross_model_mesh_provides_name
        self._cmr_requires_name = cross_model_mesh_requires_name
        self._policies = list(policies or [])
        self._auto_join = auto_join
        self._label_configmap_name = label_configmap_name_template.format(app_name=charm.app.name)
        self._lightkube_client: lightkube.Client | None = None
        self._kubernetes_problem: str | None = None
        self._decoded: tuple[_BagKey, _Decoded] | None = None
        policy_relations = list(dict.fromkeys(policy.relation for policy in self._policies))
        require_endpoints(
            charm,
            [
                (mesh_relation_name, "service_mesh requirer"),
                (cross_model_mesh_requires_name, "cross_model_mesh requirer"),
                (cross_model_mesh_provides_name, "cross_model_mesh provider"),
                *((name, "named by a mesh policy") for name in policy_relations),
            ],
        )

        dispatched = dispatched_event_name()

        def observe(endpoint: str | None, kind: str, handler: Callable[[Any], None]) -> None:
            # Only the hook Juju runs is observed, and the others' events are not even looked
            # up: building a bound event is most of what observing one costs.
            name = kind if endpoint is None else f"{endpoint.replace('-', '_')}_{kind}"
            if dispatched is None or dispatched == name:
                self.framework.observe(getattr(charm.on, name), handler)

        observe(mesh_relation_name, "relation_created", self._on_policy_input_changed)
        observe(cross_model_mesh_provides_name, "relation_changed", self._on_policy_input_changed)
        for name in policy_relations:
            observe(name, "relation_created", self._on_policy_input_changed)
            observe(name, "relation_broken", self._on_policy_input_changed)
        observe(cross_model_mesh_requires_name, "relation_created", self._on_cmr_requirer_created)
        observe(None, "upgrade_charm", self._on_refresh_everything)
        observe(None, "leader_elected", self._on_refresh_everything)
        if auto_join:
            self._label_state.set_default(applied=_LEFT)
            self._observe_label_hooks()

    # Public API

    @property
    def enabled(self) -> bool:
        """Whether the mesh relation exists and has a remote application (data not checked)."""
        return self._relation is not None

    def labels(self) -> dict[str, str]:
        """Labels this application's pods need to join the mesh; ``{}`` when not available."""
        data, _ = self._provider_data()
        return dict(data.labels) if data else {}

    def mesh_type(self) -> MeshType | None:
        """The mesh implementation on the other end, or None when not (validly) known."""
        data, _ = self._provider_data()
        return data.mesh_type if data else None

    @property
    def provider_problem(self) -> str | None:
        """Why the provider's data is unusable, when it is present but malformed.

        Lets a charm tell "the mesh has not published yet" (None here, no labels) apart from
        "the mesh published garbage", where it should keep what it last applied rather than
        leave the mesh.
        """
        return self._provider_data()[1]

    @property
    def problems(self) -> tuple[Problem, ...]:
        """:attr:`problem` as a blocked :class:`Problem`, the shape every library reports."""
        problem = self.problem
        return () if problem is None else (Problem.blocked(problem),)

    @property
    def problem(self) -> str | None:
        """Why the mesh integration is degraded, for the charm to show in its status.

        A string, as upstream's consumer offers it, so charms written for upstream keep
        working; :attr:`problems` gives the same as :class:`Problem` values.

        A Kubernetes failure from this hook's label reconciliation comes first, since it
        leaves pods in the wrong state; otherwise the latest problem found in the remote
        data (the provider's bag, a cross-model ``cmr_data``, or a policy that could not be
        built). None means nothing is wrong. Reading it re-evaluates the relation data.

        It is escaped and at most ``STATUS_LIMIT`` characters long, so a charm can put it in a
        status as it is; a longer one is logged in full at DEBUG.
        """
        if self._kubernetes_problem:
            return _status_sized(self._kubernetes_problem)
        problems: list[str] = []
        if self._charm.model.relations[self._cmr_requires_name]:
            identity_problem = self._own_cmr_data()[1]
            if identity_problem:
                problems.append(identity_problem)
        _, provider_problem = self._provider_data()
        if provider_problem:
            problems.append(provider_problem)
        if self._relation is not None:
            problems.extend(self._build_policies()[1])
        return _status_sized(problems[-1]) if problems else None

    def update_service_mesh(self) -> None:
        """Publish the policies for the current relations; a no-op without mesh or leadership.

        Call it after anything that changes the answer without an event this object observes
        (for example policies computed from config).
        """
        relation = self._relation
        if relation is None or not self._charm.unit.is_leader():
            return
        policies, _ = self._build_policies()
        if update_changed(
            relation.data[self._charm.app], {POLICIES_KEY: encode_policies(policies)}
        ):
            logger.debug("published %d mesh policies", len(policies))

    def published_policies(self) -> list[MeshPolicy]:
        """The policies :meth:`update_service_mesh` publishes for the current relations.

        Built from the relations, so any unit can ask (a non-leader cannot read the bag the
        leader published); a policy that cannot be built is left out, as when publishing, and
        :attr:`problem` names it.
        """
        return self._build_policies()[0]

    @property
    def lightkube_client(self) -> lightkube.Client:
        """A client for this app's namespace, created on first use so plain hooks don't pay.

        Raises:
            lightkube.ConfigError: there is no Kubernetes config (as upstream's raises it).
        """
        if self._lightkube_client is None:
            self._lightkube_client = new_client(self._charm.model.name, self._charm.app.name)
        return self._lightkube_client

    # Event handlers

    def _on_policy_input_changed(self, _event: ops.EventBase) -> None:
        self.update_service_mesh()

    def _on_cmr_requirer_created(self, event: ops.RelationCreatedEvent) -> None:
        self._publish_cmr_data([event.relation])

    def _on_refresh_everything(self, _event: ops.EventBase) -> None:
        self._publish_cmr_data(self._charm.model.relations[self._cmr_requires_name])
        self.update_service_mesh()

    def _observe_label_hooks(self) -> None:
        """Observe the hook Juju runs (every hook, without a dispatch path) for label work."""
        dispatched = dispatched_event_name()
        if dispatched is None:  # listing every event builds them all: only without a name
            events = list(self._charm.on.events().values())
        else:
            named = getattr(self._charm.on, dispatched, None)
            events = [named] if isinstance(named, ops.BoundEvent) else []
        for bound in events:
            kind = bound.event_type
            if issubclass(kind, ops.HookEvent) and not issubclass(kind, _NOT_LABEL_HOOKS):
                self.framework.observe(bound, self._on_label_hook)

    def _on_label_hook(self, event: ops.EventBase) -> None:
        refresh = isinstance(event, ops.UpgradeCharmEvent) and self._relation is not None
        self._converge_labels(verify=self._verifies(event), force=refresh)

    # Helpers

    @property
    def _relation(self) -> ops.Relation | None:
        # Not ``get_relation``: it raises when a misdeclared endpoint has two relations.
        relations = self._charm.model.relations[self._mesh_relation_name]
        return relations[0] if relations else None

    def _provider_data(self) -> _Decoded:
        """The provider's bag, decoded once per distinct content.

        ``labels()``, ``mesh_type()``, ``enabled`` and ``problem`` are all asked several times
        in one hook; validating the same bag each time was the consumer's main cost.
        """
        relation = self._relation
        if relation is None:
            return None, None
        bag = relation.data[relation.app]
        key = (relation.id, tuple(sorted(bag.items())))
        if self._decoded is None or self._decoded[0] != key:
            self._decoded = (key, decode_provider_data(bag, relation.app.name))
        return self._decoded[1]

    def _build_policies(self) -> tuple[list[MeshPolicy], list[str]]:
        cmr_data, cmr_problems = get_data_from_cmr_relation_with_problems(
            self._charm.model.relations[self._cmr_provides_name]
        )
        policies, policy_problems = build_mesh_policies_with_problems(
            self._charm.model.relations,
            target_app_name=self._charm.app.name,
            # Juju runs every application of a model in the namespace named after it.
            target_namespace=self._charm.model.name,
            policies=self._policies,
            cmr_application_data=cmr_data,
        )
        return policies, cmr_problems + policy_problems

    def _publish_cmr_data(self, relations: Iterable[ops.Relation]) -> None:
        if not self._charm.unit.is_leader():
            return
        value, problem = self._own_cmr_data()
        if value is None:
            logger.error("%s", problem)
            return
        for relation in relations:
            update_changed(relation.data[self._charm.app], {CMR_DATA_KEY: value})

    def _own_cmr_data(self) -> tuple[str | None, str | None]:
        """Our ``cmr_data`` value, or None and why our own names cannot be published.

        Juju only gives us valid names, but a hook must not crash if a rule of ours is ever
        stricter than Juju's: the relation just goes without our identity, and the status says so.
        """
        try:
            return encode_cmr_data(self._charm.app.name, self._charm.model.name), None
        except pydantic.ValidationError as error:
            reason = describe_validation_error(error)
            return None, f"cannot publish this app's cross-model identity: {reason}"

    def _verifies(self, event: ops.EventBase) -> bool:
        """Whether ``event`` compares with the cluster even if nothing changed since last time.

        The mesh relation's own events (as upstream acts on them), a new leader (it may
        inherit a predecessor's half-done work) and a refresh (Juju may rewrite the
        StatefulSet, dropping our pod-template labels while the record still lists them).
        """
        if isinstance(event, (ops.RelationChangedEvent, ops.RelationBrokenEvent)):
            return event.relation.name == self._mesh_relation_name
        return self._relation is not None and isinstance(
            event, (ops.LeaderElectedEvent, ops.UpgradeCharmEvent)
        )

    def _converge_labels(self, *, verify: bool, force: bool) -> None:
        """As leader, join or leave as the relation says, unless that is already done.

        What was last applied without error is kept in the stored state, so a failed join or
        leave (stored as unknown) is retried by every later hook until it succeeds.
        """
        if not self._charm.unit.is_leader():
            return
        if self._relation is None:
            wanted, labels = _LEFT, None
        else:
            data, problem = self._provider_data()
            if problem is not None:
                return  # garbage is not "leave the mesh": keep what was applied last
            labels = dict(data.labels) if data else {}
            wanted = canonical_json(labels)
        applied = self._label_state.applied
        # No labels wanted is what "left" already is: a mesh that has not published yet
        # needs no request (and no trust) until its own relation-changed.
        done = wanted == applied or (labels == {} and applied == _LEFT)
        if done and not (verify or force):
            return
        if applied != _UNKNOWN:
            self._label_state.applied = _UNKNOWN
        succeeded = (
            self._remove_labels() if labels is None else self._reconcile_labels(labels, force)
        )
        if succeeded:
            self._label_state.applied = wanted

    def _reconcile_labels(self, labels: Mapping[str, str], force: bool) -> bool:
        """Make the pods carry exactly ``labels`` (of those this object manages); succeeded?"""
        try:
            with self._label_client() as client:
                reconcile_charm_labels(
                    client,
                    self._charm.app.name,
                    self._charm.model.name,
                    self._label_configmap_name,
                    labels,
                    force=force,
                )
        except KubernetesError as error:
            self._record_kubernetes_problem(f"could not update the mesh labels: {error}")
            return False
        return True

    def _remove_labels(self) -> bool:
        """Take off every label this object set, then forget the record; succeeded?"""
        try:
            with self._label_client() as client:
                remove_charm_labels(
                    client,
                    self._charm.app.name,
                    self._charm.model.name,
                    self._label_configmap_name,
                )
        except KubernetesError as error:
            self._record_kubernetes_problem(f"could not remove the mesh labels: {error}")
            return False
        return True

    @contextlib.contextmanager
    def _label_client(self) -> Generator[lightkube.Client, None, None]:
        """The client for one round of label work, closed after it if this round made it.

        A client someone set (tests assign ``_lightkube_client``, as upstream's do) or took
        from `lightkube_client` stays open: it is not this round's to close.
        """
        if self._lightkube_client is not None:
            yield self._lightkube_client
            return
        with kubernetes_client(self._charm.model.name, self._charm.app.name) as client:
            yield client

    def _record_kubernetes_problem(self, problem: str) -> None:
        # The API server's message may quote remote text (a label from the provider).
        self._kubernetes_problem = safe_text(problem, len(problem))
        logger.error("%s", self._kubernetes_problem)


def _status_sized(problem: str) -> str:
    """`problem` fit for a status (see `status_text`); a cut one is logged in full here."""
    return status_text(problem, log=logger, what="mesh problem")


def decode_provider_data(
    raw: Mapping[str, str], source: str
) -> tuple[ServiceMeshProviderAppData | None, str | None]:
    """Parse a provider's app databag; return the data, or None and the reason it's unusable.

    An empty bag is "not published yet", not a problem. Unknown keys are ignored (upstream
    json-decodes every key and fails on any non-JSON extra). Labels Kubernetes would refuse,
    or Juju's own pod selector label, make the bag unusable: they would only ever fail, or
    break, the label patches.

    Args:
        raw: The provider application's databag.
        source: The provider application's name, used in problem messages.
    """
    if not raw:
        return None, None
    decoded: dict[str, object] = {}
    for key in ("labels", "mesh_type"):
        if key not in raw:
            continue
        try:
            decoded[key] = json.loads(raw[key])
        except json.JSONDecodeError as error:
            return (
                None,
                f"ignored mesh data from {source!r}: {key} is not valid JSON ({error.msg})",
            )
        except RecursionError:
            # Valid JSON nested deeper than Python's decoder follows (about 1000 levels).
            return None, f"ignored mesh data from {source!r}: {key} is nested too deeply"
    # Providers before upstream LIBPATCH 11 published labels only, and all of them were Istio.
    decoded.setdefault("mesh_type", MeshType.istio.value)
    try:
        data = ServiceMeshProviderAppData.model_validate(decoded)
    except pydantic.ValidationError as error:
        return None, f"ignored mesh data from {source!r}: {describe_validation_error(error)}"
    for key, value in sorted(data.labels.items()):
        if problem := label_problem(key, value):
            return None, f"ignored mesh data from {source!r}: labels: {problem}"
    return data, None
