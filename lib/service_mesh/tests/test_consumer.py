# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""ServiceMeshConsumer writes upstream's bags, as leader only, and reads the provider defensively.

Label reconciliation (``auto_join``) is covered in ``test_consumer_labels.py``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import ops
import pytest
from ops import testing

from service_mesh import (
    AppPolicy,
    Endpoint,
    MeshType,
    Method,
    MissingEndpointError,
    Problem,
    ServiceMeshConsumer,
    UnitPolicy,
)
from tests.support.mesh_charms import TEMPO_META

if TYPE_CHECKING:
    pass

META = TEMPO_META
POLICIES = [
    AppPolicy(relation="tempo-api", endpoints=[Endpoint(ports=[3200, 9096])]),
    AppPolicy(
        relation="grafana-source",
        endpoints=[Endpoint(ports=[3200], methods=[Method.get], paths=["/api/*"])],
    ),
    UnitPolicy(relation="metrics-endpoint", ports=[8080]),
]


class _Tempo(ops.CharmBase):
    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        # No auto_join here: these tests must not reach for Kubernetes.
        self.mesh = ServiceMeshConsumer(self, policies=POLICIES, auto_join=False)


def _context() -> testing.Context[_Tempo]:
    return testing.Context(_Tempo, meta=META, app_name="tempo")


def _state(*relations: testing.Relation, leader: bool = True) -> testing.State:
    return testing.State(leader=leader, model=testing.Model(name="cos"), relations=relations)


def _vector_relations() -> list[testing.Relation]:
    """The scenario the vector's ``_description`` names: tempo related to grafana twice."""
    return [
        testing.Relation("service-mesh", remote_app_name="istio-beacon-k8s"),
        testing.Relation("tempo-api", remote_app_name="grafana"),
        testing.Relation("grafana-source", remote_app_name="grafana"),
        testing.Relation("metrics-endpoint", remote_app_name="prometheus"),
    ]


def test_policies_bag_is_byte_identical_to_upstream(consumer_vector: dict[str, Any]):
    mesh, *others = _vector_relations()
    ctx = _context()

    out = ctx.run(ctx.on.relation_created(mesh), _state(mesh, *others))

    assert out.get_relation(mesh.id).local_app_data == consumer_vector["databag"]


def test_cross_model_bag_is_byte_identical_to_upstream(consumer_vector: dict[str, Any]):
    variant = consumer_vector["cross_model_variant"]
    mesh = testing.Relation("service-mesh", remote_app_name="istio-beacon-k8s")
    cmr = testing.Relation(
        "provide-cmr-mesh",
        remote_app_name="grafana-remote",
        remote_app_data=variant["provide_cmr_mesh_remote_app_databag"],
    )
    api = testing.Relation("tempo-api", remote_app_name="grafana-remote")
    ctx = _context()

    out = ctx.run(ctx.on.relation_changed(cmr), _state(mesh, cmr, api))

    assert out.get_relation(mesh.id).local_app_data == variant["databag"]


def test_cmr_data_bag_is_byte_identical_to_upstream(consumer_vector: dict[str, Any]):
    require = testing.Relation("require-cmr-mesh", remote_app_name="grafana")
    ctx = _context()

    out = ctx.run(ctx.on.relation_created(require), _state(require))

    assert (
        out.get_relation(require.id).local_app_data
        == consumer_vector["require_cmr_mesh_local_app_databag"]
    )


@pytest.mark.parametrize(
    "event_of",
    [
        lambda ctx, rels: ctx.on.relation_created(rels[0]),
        lambda ctx, rels: ctx.on.relation_created(rels[1]),
        lambda ctx, rels: ctx.on.relation_broken(rels[3]),
        lambda ctx, rels: ctx.on.relation_changed(rels[4]),
        lambda ctx, rels: ctx.on.relation_created(rels[5]),
        lambda ctx, rels: ctx.on.upgrade_charm(),
    ],
    ids=[
        "mesh-created",
        "policy-created",
        "policy-broken",
        "cmr-provider-changed",
        "cmr-requirer-created",
        "upgrade",
    ],
)
def test_non_leader_writes_nothing_and_raises_nothing(
    consumer_vector: dict[str, Any], event_of: Any, bag_writes: list[dict[str, str]]
):
    relations = [
        *_vector_relations(),
        testing.Relation(
            "provide-cmr-mesh",
            remote_app_name="grafana",
            remote_app_data=consumer_vector["cross_model_variant"][
                "provide_cmr_mesh_remote_app_databag"
            ],
        ),
        testing.Relation("require-cmr-mesh", remote_app_name="loki"),
    ]
    ctx = _context()

    out = ctx.run(event_of(ctx, relations), _state(*relations, leader=False))

    assert bag_writes == []
    for relation in out.relations:
        assert relation.local_app_data == consumer_vector["non_leader_databag"]


@pytest.mark.parametrize("leader", [True, False])
def test_published_policies_are_what_the_leader_publishes_on_any_unit(
    consumer_vector: dict[str, Any], leader: bool
):
    relations = _vector_relations()
    ctx = _context()

    with ctx(ctx.on.update_status(), _state(*relations, leader=leader)) as manager:
        published = manager.charm.mesh.published_policies()
        manager.run()

    wire = json.loads(consumer_vector["databag"]["policies"])
    assert [p.model_dump(mode="json") for p in published] == wire


def test_update_service_mesh_on_non_leader_is_a_no_op(bag_writes: list[dict[str, str]]):
    ctx = _context()

    with ctx(ctx.on.update_status(), _state(*_vector_relations(), leader=False)) as manager:
        manager.charm.mesh.update_service_mesh()

    assert bag_writes == []


def test_unchanged_policies_are_not_rewritten(
    consumer_vector: dict[str, Any], bag_writes: list[dict[str, str]]
):
    mesh, *others = _vector_relations()
    mesh = testing.Relation(
        "service-mesh",
        remote_app_name="istio-beacon-k8s",
        local_app_data=consumer_vector["databag"],
    )
    ctx = _context()

    ctx.run(ctx.on.upgrade_charm(), _state(mesh, *others))

    assert bag_writes == []


def test_departed_application_loses_its_policy(consumer_vector: dict[str, Any]):
    mesh, api, source, metrics = _vector_relations()
    mesh = testing.Relation(
        "service-mesh",
        remote_app_name="istio-beacon-k8s",
        local_app_data=consumer_vector["databag"],
    )
    ctx = _context()

    out = ctx.run(ctx.on.relation_broken(metrics), _state(mesh, api, source, metrics))

    remaining = json.loads(out.get_relation(mesh.id).local_app_data["policies"])
    assert remaining == consumer_vector["decoded_policies"][:2]


def test_new_leader_republishes_policies_and_cmr_data(consumer_vector: dict[str, Any]):
    mesh, *others = _vector_relations()
    require = testing.Relation("require-cmr-mesh", remote_app_name="grafana")
    ctx = _context()

    out = ctx.run(ctx.on.leader_elected(), _state(mesh, require, *others))

    assert out.get_relation(mesh.id).local_app_data == consumer_vector["databag"]
    expected_cmr = consumer_vector["require_cmr_mesh_local_app_databag"]
    assert out.get_relation(require.id).local_app_data == expected_cmr


def test_without_mesh_relation_nothing_is_written(bag_writes: list[dict[str, str]]):
    _, *others = _vector_relations()
    ctx = _context()

    ctx.run(ctx.on.relation_created(others[0]), _state(*others))

    assert bag_writes == []


def _read(
    remote_app_data: dict[str, str] | None, *others: testing.Relation
) -> tuple[bool, dict[str, str], MeshType | None, str | None]:
    relations = list(others)
    if remote_app_data is not None:
        relations.append(
            testing.Relation(
                "service-mesh", remote_app_name="istio-beacon-k8s", remote_app_data=remote_app_data
            )
        )
    ctx = _context()
    with ctx(ctx.on.update_status(), _state(*relations, leader=False)) as manager:
        mesh = manager.charm.mesh
        return mesh.enabled, mesh.labels(), mesh.mesh_type(), mesh.problem


def test_reads_the_upstream_provider_bag(provider_vector: dict[str, Any]):
    read = _read(provider_vector["databag_ambient"])

    assert read == (True, provider_vector["decoded_ambient"]["labels"], MeshType.istio, None)


def test_no_relation_means_no_mesh():
    assert _read(None) == (False, {}, None, None)


def test_provider_that_has_not_written_yet_is_not_a_problem():
    assert _read({}) == (True, {}, None, None)


def test_labels_only_provider_predating_mesh_type_is_istio(provider_vector: dict[str, Any]):
    labels_only = {"labels": provider_vector["databag_ambient"]["labels"]}

    read = _read(labels_only)

    assert read == (True, provider_vector["decoded_ambient"]["labels"], MeshType.istio, None)


@pytest.mark.parametrize(
    ("bag", "reason"),
    [
        ({"labels": "{", "mesh_type": '"istio"'}, "labels is not valid JSON"),
        ({"labels": "{}", "mesh_type": "istio"}, "mesh_type is not valid JSON"),
        ({"mesh_type": '"istio"'}, "labels: Field required"),
        ({"labels": "{}", "mesh_type": '"linkerd"'}, "mesh_type: Input should be 'istio'"),
        ({"labels": '["a"]', "mesh_type": '"istio"'}, "labels: Input should be a valid dict"),
        ({"labels": '{"a": 1}', "mesh_type": '"istio"'}, "labels.a: Input should be a valid str"),
    ],
    ids=["labels-json", "bare-mesh-type", "no-labels", "unknown-mesh", "labels-list", "int-label"],
)
def test_unusable_provider_bag_is_absent_with_a_reason(bag: dict[str, str], reason: str):
    enabled, labels, mesh_type, problem = _read(bag)

    assert (enabled, labels, mesh_type) == (True, {}, None)
    assert problem is not None
    assert problem.startswith(f"ignored mesh data from 'istio-beacon-k8s': {reason}")


def test_unknown_provider_keys_are_ignored(provider_vector: dict[str, Any]):
    bag = {**provider_vector["databag_ambient"], "future-key": "not json"}

    assert _read(bag)[2:] == (MeshType.istio, None)


def test_bad_cmr_data_is_reported_and_the_policy_falls_back_to_the_alias():
    cmr = testing.Relation(
        "provide-cmr-mesh", remote_app_name="grafana-remote", remote_app_data={"cmr_data": "{"}
    )
    api = testing.Relation("tempo-api", remote_app_name="grafana-remote")
    mesh = testing.Relation("service-mesh", remote_app_name="istio-beacon-k8s")
    ctx = _context()

    with ctx(ctx.on.relation_changed(cmr), _state(mesh, cmr, api)) as manager:
        out = manager.run()
        problem = manager.charm.mesh.problem
        problems = manager.charm.mesh.problems

    (policy,) = json.loads(out.get_relation(mesh.id).local_app_data["policies"])
    assert (policy["source_app_name"], policy["source_namespace"]) == ("grafana-remote", "cos")
    assert problem is not None
    assert problem.startswith("ignored invalid cmr_data from 'grafana-remote': Invalid JSON")
    assert problems == (Problem.blocked(problem),)


@pytest.mark.parametrize(
    ("meta_change", "kwargs", "named"),
    [
        (
            {"requires": {"service-mesh": {"interface": "service_mesh"}}},
            {},
            "'require-cmr-mesh' (cross_model_mesh requirer)",
        ),
        ({}, {"mesh_relation_name": "mesh"}, "'mesh' (service_mesh requirer)"),
        ({}, {"cross_model_mesh_provides_name": "cmr"}, "'cmr' (cross_model_mesh provider)"),
        ({}, {"policies": [UnitPolicy(relation="metrics")]}, "'metrics' (named by a mesh policy)"),
    ],
    ids=["requires-missing", "mesh-renamed", "cmr-renamed", "policy-typo"],
)
def test_undeclared_endpoint_is_named(
    meta_change: dict[str, Any], kwargs: dict[str, Any], named: str
):
    class Charm(ops.CharmBase):
        def __init__(self, framework: ops.Framework):
            super().__init__(framework)
            ServiceMeshConsumer(self, auto_join=False, **kwargs)

    ctx = testing.Context(Charm, meta={**META, **meta_change}, app_name="tempo")

    with pytest.raises(testing.errors.UncaughtCharmError) as raised:
        ctx.run(ctx.on.update_status(), _state())

    error = raised.value.__cause__
    assert isinstance(error, MissingEndpointError)
    assert isinstance(error, KeyError), "code written for upstream catches KeyError"
    assert f"relation endpoint {named} is not declared" in str(error)


def test_provider_data_nested_deeper_than_the_json_decoder_follows_is_a_problem_not_a_crash():
    from service_mesh._consumer import decode_provider_data

    data, problem = decode_provider_data({"labels": "[" * 5000 + "]" * 5000}, "beacon")
    assert data is None
    assert problem == "ignored mesh data from 'beacon': labels is nested too deeply"


# --- observers: a hook is a fresh process with one event -------------------------------------
# Which events the consumer observes in a hook (only the dispatched one) is a benchmark figure
# (benchmarks/observers.py); what must hold is that the dispatched event still reaches it.


def test_the_dispatched_event_still_reaches_the_consumer(consumer_vector: dict[str, Any]):
    # relation-created of a policy relation publishes the policies: the one observer works.
    relation = testing.Relation("tempo-api", remote_app_name="grafana")
    mesh = testing.Relation("service-mesh", remote_app_name="istio-beacon-k8s")
    ctx = testing.Context(_Tempo, meta=META, app_name="tempo")

    state = testing.State(leader=True, model=testing.Model(name="cos"), relations=[relation, mesh])

    out = ctx.run(ctx.on.relation_created(relation), state)

    assert "policies" in out.get_relation(mesh.id).local_app_data


@pytest.mark.parametrize("event", ["leader_elected", "upgrade_charm"])
def test_a_model_name_with_a_double_hyphen_is_published(event: str):
    # Juju and Kubernetes accept `obs--prod`; the leader used to crash on it in every consumer.
    require = testing.Relation("require-cmr-mesh", remote_app_name="grafana")
    mesh = testing.Relation("service-mesh", remote_app_name="istio-beacon-k8s")
    ctx = _context()
    state = testing.State(
        leader=True, model=testing.Model(name="obs--prod"), relations=[mesh, require]
    )

    out = ctx.run(getattr(ctx.on, event)(), state)

    cmr_data = json.loads(out.get_relation(require.id).local_app_data["cmr_data"])
    assert cmr_data == {"app_name": "tempo", "juju_model_name": "obs--prod"}


def test_a_name_our_rules_refuse_is_reported_not_raised(bag_writes: list[dict[str, str]]):
    # Juju never gives us such a model name; if it ever did, no hook may crash on it.
    require = testing.Relation("require-cmr-mesh", remote_app_name="grafana")
    ctx = _context()
    state = testing.State(leader=True, model=testing.Model(name="Obs_Prod"), relations=[require])

    with ctx(ctx.on.leader_elected(), state) as manager:
        manager.run()
        problem = manager.charm.mesh.problem

    assert bag_writes == []
    assert problem is not None
    assert problem.startswith("cannot publish this app's cross-model identity: juju_model_name")


@pytest.mark.parametrize(
    ("cmr_data", "field"),
    [
        ({"app_name": "Evil_App", "juju_model_name": "cos"}, "app_name"),
        ({"app_name": "app-1", "juju_model_name": "cos"}, "app_name"),
        ({"app_name": "grafana", "juju_model_name": "cos-"}, "juju_model_name"),
        ({"app_name": "grafana", "juju_model_name": "c" * 64}, "juju_model_name"),
    ],
    ids=["uppercase-underscore", "digit-word", "trailing-hyphen", "too-long"],
)
def test_cmr_identities_juju_or_kubernetes_refuse_are_ignored(cmr_data: dict, field: str):
    cmr = testing.Relation(
        "provide-cmr-mesh",
        remote_app_name="grafana-remote",
        remote_app_data={"cmr_data": json.dumps(cmr_data)},
    )
    api = testing.Relation("tempo-api", remote_app_name="grafana-remote")
    mesh = testing.Relation("service-mesh", remote_app_name="istio-beacon-k8s")
    ctx = _context()

    with ctx(ctx.on.relation_changed(cmr), _state(mesh, cmr, api)) as manager:
        out = manager.run()
        problem = manager.charm.mesh.problem

    (policy,) = json.loads(out.get_relation(mesh.id).local_app_data["policies"])
    assert (policy["source_app_name"], policy["source_namespace"]) == ("grafana-remote", "cos")
    assert problem is not None
    assert problem.startswith(f"ignored invalid cmr_data from 'grafana-remote': {field}")
