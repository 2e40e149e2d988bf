# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""ServiceMeshProvider writes upstream's bag, as leader only, and reads policies defensively."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import ops
import pytest
from ops import testing

from service_mesh import (
    MeshPolicy,
    MeshType,
    MissingEndpointError,
    ProblemLevel,
    ServiceMeshProvider,
)
from tests.support.mesh_charms import BEACON_META

if TYPE_CHECKING:
    pass

META = BEACON_META
AMBIENT_LABELS = {
    "istio.io/dataplane-mode": "ambient",
    "istio.io/use-waypoint": "cos-istio-beacon-k8s-waypoint",
    "istio.io/use-waypoint-namespace": "cos",
}


class _Beacon(ops.CharmBase):
    labels: dict[str, str] = AMBIENT_LABELS

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.mesh = ServiceMeshProvider(self, labels=self.labels, mesh_type=MeshType.istio)


class _OnMeshBeacon(_Beacon):
    labels: dict[str, str] = {}  # noqa: RUF012


def _run(
    charm: type[_Beacon], event_name: str, *relations: testing.Relation, leader: bool = True
) -> testing.State:
    ctx = testing.Context(charm, meta=META, app_name="istio-beacon-k8s")
    state = testing.State(leader=leader, model=testing.Model(name="cos"), relations=relations)
    event = (
        ctx.on.relation_created(relations[0])
        if event_name == "relation_created"
        else getattr(ctx.on, event_name)()
    )
    return ctx.run(event, state)


@pytest.mark.parametrize(
    ("charm", "vector_key"),
    [(_Beacon, "databag_ambient"), (_OnMeshBeacon, "databag_model_on_mesh")],
)
@pytest.mark.parametrize("event_name", ["relation_created", "config_changed", "leader_elected"])
def test_bag_is_byte_identical_to_upstream(
    provider_vector: dict[str, Any], charm: type[_Beacon], vector_key: str, event_name: str
):
    relations = [
        testing.Relation("service-mesh", remote_app_name="tempo"),
        testing.Relation("service-mesh", remote_app_name="loki"),
    ]

    out = _run(charm, event_name, *relations)

    for relation in relations:
        assert out.get_relation(relation.id).local_app_data == provider_vector[vector_key]


def test_non_leader_writes_nothing(bag_writes: list[dict[str, str]]):
    relation = testing.Relation("service-mesh", remote_app_name="tempo")

    out = _run(_Beacon, "relation_created", relation, leader=False)

    assert out.get_relation(relation.id).local_app_data == {}
    assert bag_writes == []


def test_unchanged_bag_is_not_rewritten(
    provider_vector: dict[str, Any], bag_writes: list[dict[str, str]]
):
    relation = testing.Relation(
        "service-mesh",
        remote_app_name="tempo",
        local_app_data=provider_vector["databag_ambient"],
    )

    _run(_Beacon, "config_changed", relation)

    assert bag_writes == []


def test_only_the_changed_key_is_rewritten(
    provider_vector: dict[str, Any], bag_writes: list[dict[str, str]]
):
    stale = {**provider_vector["databag_ambient"], "labels": "{}"}
    relation = testing.Relation("service-mesh", remote_app_name="tempo", local_app_data=stale)

    _run(_Beacon, "config_changed", relation)

    assert bag_writes == [{"labels": provider_vector["databag_ambient"]["labels"]}]


def _mesh_info(*relations: testing.Relation) -> tuple[list[MeshPolicy], str | None]:
    ctx = testing.Context(_Beacon, meta=META, app_name="istio-beacon-k8s")
    state = testing.State(leader=False, model=testing.Model(name="cos"), relations=relations)
    with ctx(ctx.on.update_status(), state) as manager:
        return manager.charm.mesh.mesh_info(), manager.charm.mesh.problem


def test_mesh_info_reads_the_upstream_consumer_bag(consumer_vector: dict[str, Any]):
    relation = testing.Relation(
        "service-mesh", remote_app_name="tempo", remote_app_data=consumer_vector["databag"]
    )

    policies, problem = _mesh_info(relation)

    assert [p.model_dump(mode="json") for p in policies] == consumer_vector["decoded_policies"]
    assert problem is None


def test_consumer_that_has_not_written_yet_requests_nothing():
    policies, problem = _mesh_info(testing.Relation("service-mesh", remote_app_name="tempo"))

    assert (policies, problem) == ([], None)


def test_errors_are_isolated_per_relation_and_per_policy(consumer_vector: dict[str, Any]):
    good, unit_policy = (
        consumer_vector["decoded_policies"][0],
        consumer_vector["decoded_policies"][2],
    )
    no_target = {**good, "target_app_name": None}
    mixed = json.dumps([good, no_target, "not a policy", unit_policy])
    relations = [
        testing.Relation(
            "service-mesh", remote_app_name="broken", remote_app_data={"policies": "{"}
        ),
        testing.Relation(
            "service-mesh", remote_app_name="dict", remote_app_data={"policies": "{}"}
        ),
        testing.Relation(
            "service-mesh", remote_app_name="tempo", remote_app_data={"policies": mixed}
        ),
    ]

    policies, problem = _mesh_info(*relations)

    assert [p.model_dump(mode="json") for p in policies] == [good, unit_policy]
    assert problem is not None
    assert problem.startswith("ignored 2 of 4 policies from 'tempo': #1: ")
    assert problem.endswith("(and 1 more)")


def test_problems_lists_every_relation_problem_and_ends_with_problem():
    relations = [
        testing.Relation(
            "service-mesh", remote_app_name="broken", remote_app_data={"policies": "{"}
        ),
        testing.Relation(
            "service-mesh", remote_app_name="dict", remote_app_data={"policies": "{}"}
        ),
    ]
    ctx = testing.Context(_Beacon, meta=META, app_name="istio-beacon-k8s")
    state = testing.State(leader=False, model=testing.Model(name="cos"), relations=relations)
    with ctx(ctx.on.update_status(), state) as manager:
        problems, problem = manager.charm.mesh.problems, manager.charm.mesh.problem

    assert len(problems) == 2
    assert all(p.level is ProblemLevel.BLOCKED for p in problems)
    assert problems[-1].message == problem


def test_undeclared_endpoint_is_named():
    class Charm(ops.CharmBase):
        def __init__(self, framework: ops.Framework):
            super().__init__(framework)
            ServiceMeshProvider(
                self, labels={}, mesh_type=MeshType.istio, mesh_relation_name="mesh"
            )

    ctx = testing.Context(Charm, meta=META, app_name="istio-beacon-k8s")

    with pytest.raises(testing.errors.UncaughtCharmError) as raised:
        ctx.run(ctx.on.update_status(), testing.State(model=testing.Model(name="cos")))

    assert isinstance(raised.value.__cause__, MissingEndpointError)
    assert "'mesh' (service_mesh provider) is not declared" in str(raised.value.__cause__)


def test_policies_nested_deeper_than_the_json_decoder_follows_are_a_problem_not_a_crash():
    from service_mesh._provider import decode_policies

    policies, problem = decode_policies("[" * 5000 + "]" * 5000, "hostile")
    assert policies == []
    assert problem == "ignored policies from 'hostile': nested too deeply"


# A consumer may only open its own door (issue 17.1): each of these names someone else.
_GRAFANA_TO_TEMPO: dict[str, Any] = {
    "source_namespace": "cos",
    "source_app_name": "grafana",
    "target_namespace": "cos",
    "target_app_name": "tempo",
    "target_type": "app",
    "endpoints": [{"ports": [3200]}],
}
_FOREIGN_TARGETS: dict[str, dict[str, Any]] = {
    "another app's Service": {"target_app_name": "loki"},
    "another namespace": {"target_namespace": "kube-system", "target_app_name": "tempo"},
    "coredns in kube-system": {"target_namespace": "kube-system", "target_app_name": "coredns"},
    "another app's Service by name": {"target_service": "loki"},
    "a selector of every Juju pod": {
        "target_type": "unit",
        "target_app_name": None,
        "target_selector_labels": {"app.kubernetes.io/managed-by": "juju"},
        "endpoints": [],
    },
    "a source that is no Juju app": {"source_app_name": "Evil_App"},
    "a source namespace that is no Juju model": {"source_namespace": "*"},
}


@pytest.mark.parametrize("override", _FOREIGN_TARGETS.values(), ids=list(_FOREIGN_TARGETS))
def test_a_consumer_may_only_ask_for_policies_that_target_itself(override: dict[str, Any]):
    hostile = {**_GRAFANA_TO_TEMPO, **override}
    bag = {"policies": json.dumps([_GRAFANA_TO_TEMPO, hostile])}
    relation = testing.Relation("service-mesh", remote_app_name="tempo", remote_app_data=bag)

    policies, problem = _mesh_info(relation)

    assert [p.model_dump(mode="json", exclude_none=True) for p in policies] == [
        MeshPolicy.model_validate(_GRAFANA_TO_TEMPO).model_dump(mode="json", exclude_none=True)
    ]
    assert problem is not None
    assert problem.startswith("ignored 1 of 2 policies from 'tempo': #1: ")


def test_a_policy_for_the_consumers_own_service_and_pods_is_kept():
    own = [
        {**_GRAFANA_TO_TEMPO, "target_service": "tempo"},
        {**_GRAFANA_TO_TEMPO, "target_type": "unit", "endpoints": [{"ports": [8080]}]},
        {**_GRAFANA_TO_TEMPO, "source_namespace": "obs--prod"},
    ]
    relation = testing.Relation(
        "service-mesh", remote_app_name="tempo", remote_app_data={"policies": json.dumps(own)}
    )

    policies, problem = _mesh_info(relation)

    assert len(policies) == 3
    assert problem is None


def test_a_flood_of_bad_policies_is_one_log_line_and_capped(caplog: pytest.LogCaptureFixture):
    from service_mesh._provider import MAX_POLICIES_PER_RELATION

    flood = json.dumps([{}] * 100_000)
    good = json.dumps([_GRAFANA_TO_TEMPO] * (MAX_POLICIES_PER_RELATION + 10))
    relations = [
        testing.Relation("service-mesh", remote_app_name="tempo", remote_app_data={"policies": p})
        for p in (flood, good)
    ]

    with caplog.at_level("WARNING", logger="service_mesh._provider"):
        policies, _ = _mesh_info(*relations)

    warnings = [r.getMessage() for r in caplog.records if r.name == "service_mesh._provider"]
    assert len(warnings) == 2, warnings
    assert warnings[0].startswith(
        "ignored 100000 of 100000 policies from 'tempo': #0: "
    ) and warnings[0].endswith(f"policies beyond the first {MAX_POLICIES_PER_RELATION} not read")
    assert warnings[1] == (
        "ignored 10 of 510 policies from 'tempo': 10 policies beyond the first 500 not read"
    )
    assert len(policies) == MAX_POLICIES_PER_RELATION
