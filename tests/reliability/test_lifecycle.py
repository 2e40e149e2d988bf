# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Lifecycle: leadership, scaling, apps coming and going, upgrades, no trust, no cluster."""

from __future__ import annotations

import json

import ops
import pytest
from ops import testing
from reliability_charms import (
    COORDINATOR,
    MEMBERSHIP,
    MESH_LABELS,
    MODEL,
    WORKERS,
    cluster_to_coordinator,
    coordinator_charm,
    coordinator_context,
    coordinator_state,
    label_record,
    mesh_relation,
    pod_labels,
    policy_specs,
    provider_data,
    relation_by_endpoint,
    replace_relation,
    service_labels,
    with_fields,
    with_relations,
    worker_context,
    worker_state,
    workers_relations,
)

from coordinated_workers.testing import worker_relation
from service_mesh.testing import FakeKubernetes

JUJU_POD_LABELS = {"app.kubernetes.io/name": COORDINATOR}


def peers(units: int, me: int = 0) -> testing.PeerRelation:
    return testing.PeerRelation("peers", peers_data={n: {} for n in range(units) if n != me})


def meshed_cluster(kube: FakeKubernetes, **kwargs) -> testing.State:
    ctx = coordinator_context()
    out = ctx.run(
        ctx.on.config_changed(), coordinator_state(*workers_relations(), mesh_relation(), **kwargs)
    )
    assert out.unit_status == ops.ActiveStatus()
    assert len(policy_specs(kube)) == 5
    return out


def _remote(state: testing.State, remote_app: str) -> testing.Relation:
    """The relation of `state` with `remote_app`."""
    return next(
        r
        for r in state.relations
        if isinstance(r, testing.Relation) and r.remote_app_name == remote_app
    )


def _without(state: testing.State, endpoint: str, remote_app: str | None = None) -> testing.State:
    old = next(
        r
        for r in state.relations
        if r.endpoint == endpoint
        and (
            remote_app is None
            or (isinstance(r, testing.Relation) and r.remote_app_name == remote_app)
        )
    )
    return replace_relation(state, old, None)


EVENTS = {
    "config_changed": lambda ctx, _: ctx.on.config_changed(),
    "update_status": lambda ctx, _: ctx.on.update_status(),
    "upgrade_charm": lambda ctx, _: ctx.on.upgrade_charm(),
    "leader_settings_changed": lambda ctx, _: ctx.on.leader_elected(),
    "cluster_changed": lambda ctx, s: ctx.on.relation_changed(relation_by_endpoint(s, "cluster")),
    "mesh_broken": lambda ctx, s: ctx.on.relation_broken(relation_by_endpoint(s, "service-mesh")),
    "remove": lambda ctx, _: ctx.on.remove(),
}


@pytest.mark.parametrize("event", sorted(EVENTS))
def test_non_leader_coordinator_units_never_write_to_kubernetes(kube, event):
    ctx = coordinator_context()
    state = coordinator_state(
        *workers_relations(), mesh_relation(), peers(3), leader=False, planned_units=0
    )
    if event == "leader_settings_changed":
        state = with_fields(state, leader=False)
    out = ctx.run(EVENTS[event](ctx, state), state)
    assert [r["method"] for r in kube.requests if r["method"] != "GET"] == []
    assert not any(r.local_app_data for r in out.relations if r.endpoint != "peers")


def test_leadership_moving_mid_way_converges_without_churn(kube):
    first = meshed_cluster(kube)
    before = (pod_labels(kube, COORDINATOR), policy_specs(kube), label_record(kube, COORDINATOR))
    # The old leader loses leadership in the middle of a change: a worker app joins.
    ctx = coordinator_context()
    joining = worker_relation("worker-extra", ["read"], model=MODEL)
    old_leader = with_fields(with_relations(first, joining), leader=False)
    ctx.run(ctx.on.relation_joined(joining), old_leader)
    assert [r["method"] for r in kube.requests if r["method"] != "GET"][-1:] != ["DELETE"]
    assert policy_specs(kube) == before[1]  # the non-leader changed nothing
    kube.clear_requests()
    # Another unit (fresh charm state, same Juju relations) becomes leader and finishes it.
    new_leader = with_fields(old_leader, leader=True, stored_states=frozenset())
    out = ctx.run(ctx.on.leader_elected(), new_leader)
    assert out.unit_status == ops.ActiveStatus()
    assert len(policy_specs(kube)) == 7
    assert set(before[1]) < set(policy_specs(kube))
    assert pod_labels(kube, COORDINATOR) == before[0]
    assert label_record(kube, COORDINATOR) == before[2]
    assert [r["method"] for r in kube.requests if r["method"] not in ("GET", "PATCH")] == []
    kube.clear_requests()
    ctx.run(ctx.on.update_status(), out)
    assert [r["method"] for r in kube.requests] == ["GET", "GET"]


def test_three_coordinator_units_agree_and_only_the_leader_writes(kube):
    ctx = coordinator_context()
    leader = meshed_cluster(kube)
    for unit_id in (1, 2):
        kube.clear_requests()
        unit_ctx = testing.Context(
            coordinator_charm.CoordinatorCharm, app_name=COORDINATOR, unit_id=unit_id
        )
        state = coordinator_state(
            *workers_relations(), mesh_relation(), peers(3, me=unit_id), leader=False
        )
        out = unit_ctx.run(unit_ctx.on.config_changed(), state)
        assert [r["method"] for r in kube.requests if r["method"] != "GET"] == []
        assert out.unit_status == ops.ActiveStatus()
    assert len(policy_specs(kube)) == 5
    metrics = testing.Relation("metrics-endpoint", remote_app_name="prometheus")
    out = ctx.run(
        ctx.on.config_changed(),
        with_relations(with_fields(leader, relations=[*leader.relations, peers(3)]), metrics),
    )
    jobs = json.loads(relation_by_endpoint(out, "metrics-endpoint").local_app_data["scrape_jobs"])
    targets = json.dumps(jobs)
    for unit_id in range(3):
        assert f"{COORDINATOR}-{unit_id}." in targets


def test_worker_apps_and_units_added_and_removed(kube):
    ctx = coordinator_context()
    state = meshed_cluster(kube)
    names = set(policy_specs(kube))
    # More units of an existing worker app: what we apply is unchanged, so no request at all.
    reader = _remote(state, WORKERS[0])
    scaled = worker_relation(WORKERS[0], ["read"], units=3, model=MODEL, id=reader.id)
    kube.clear_requests()
    state = ctx.run(ctx.on.relation_joined(scaled), replace_relation(state, reader, scaled))
    assert [r["method"] for r in kube.requests] == []
    assert set(policy_specs(kube)) == names
    # A new worker app: two more policies; it leaving again: back to where we were.
    extra = worker_relation("worker-extra", ["write"], model=MODEL)
    state = ctx.run(ctx.on.relation_joined(extra), with_relations(state, extra))
    assert len(policy_specs(kube)) == 7
    assert state.unit_status == ops.ActiveStatus()
    extra = _remote(state, "worker-extra")
    state = ctx.run(ctx.on.relation_broken(extra), state)
    state = _without(state, "cluster", "worker-extra")
    assert set(policy_specs(kube)) == names
    # The only write worker leaves: blocked, its policies gone, the others kept.
    writer = _remote(state, WORKERS[1])
    out = ctx.run(ctx.on.relation_broken(writer), state)
    assert isinstance(out.unit_status, ops.BlockedStatus)
    assert len(policy_specs(kube)) == 3
    assert not any(WORKERS[1] in name for name in policy_specs(kube))


def test_scaling_the_coordinator_to_zero_keeps_what_the_workers_need(kube):
    # planned_units() == 0 also when the app is only scaled to zero: the workers still run and
    # still talk to each other through the cluster-internal policies.
    ctx = coordinator_context()
    state = meshed_cluster(kube)
    before = (policy_specs(kube), pod_labels(kube, COORDINATOR), label_record(kube, COORDINATOR))
    kube.clear_requests()
    for planned in (1, 0):  # a unit scaling down, then the last one
        out = ctx.run(ctx.on.remove(), with_fields(state, planned_units=planned))
        assert not isinstance(out.unit_status, ops.ErrorStatus)
    assert kube.requests == []
    assert before == (
        policy_specs(kube),
        pod_labels(kube, COORDINATOR),
        label_record(kube, COORDINATOR),
    )


@pytest.mark.parametrize("remove_hook", ["ran", "failed", "never ran"])
def test_removing_the_coordinator_app_leaves_no_policy_behind(kube, remove_hook):
    ctx = coordinator_context()
    state = meshed_cluster(kube)
    if remove_hook == "failed":
        kube.fail(status=500, times=None)
    if remove_hook != "never ran":
        ctx.run(ctx.on.remove(), with_fields(state, planned_units=0))
    kube.clear_faults()
    # Juju deletes the app's StatefulSet and Services; Kubernetes collects what they owned.
    kube.remove_juju_app(COORDINATOR, namespace=MODEL)
    assert policy_specs(kube) == {}


def test_upgrade_charm_restores_labels_a_refresh_dropped(kube):
    ctx = coordinator_context()
    state = meshed_cluster(kube)
    sts = kube.get("statefulsets", MODEL, COORDINATOR)
    assert sts is not None
    sts["spec"]["template"]["metadata"]["labels"] = dict(JUJU_POD_LABELS)  # Juju rewrote it
    kube.add(sts)
    out = ctx.run(ctx.on.upgrade_charm(), state)
    assert pod_labels(kube, COORDINATOR) == {**JUJU_POD_LABELS, **MEMBERSHIP, **MESH_LABELS}
    assert out.unit_status == ops.ActiveStatus()


def test_worker_upgrade_charm_restores_labels_a_refresh_dropped(kube):
    ctx = worker_context()
    out = ctx.run(ctx.on.config_changed(), worker_state(cluster_to_coordinator()))
    sts = kube.get("statefulsets", MODEL, WORKERS[0])
    assert sts is not None
    sts["spec"]["template"]["metadata"]["labels"] = {"app.kubernetes.io/name": WORKERS[0]}
    kube.add(sts)
    ctx.run(ctx.on.upgrade_charm(), out)
    assert pod_labels(kube, WORKERS[0]) == {
        "app.kubernetes.io/name": WORKERS[0],
        **MEMBERSHIP,
        **MESH_LABELS,
    }


@pytest.mark.parametrize("charm", ["coordinator", "worker"])
def test_without_trust_every_hook_is_blocked_asking_for_it_then_recovers(kube, charm):
    kube.fail(status=403, times=None)
    if charm == "coordinator":
        ctx, app = coordinator_context(), COORDINATOR
        state = coordinator_state(*workers_relations(), mesh_relation())
    else:
        ctx, app = worker_context(), WORKERS[0]
        state = worker_state(cluster_to_coordinator())
    for event in (ctx.on.install(), ctx.on.config_changed(), ctx.on.update_status()):
        state = ctx.run(event, state)
        assert isinstance(state.unit_status, ops.BlockedStatus)
        assert f"`juju trust {app} --scope=cluster`" in state.unit_status.message
    kube.clear_faults()
    state = ctx.run(ctx.on.config_changed(), state)
    assert state.unit_status.name == "active"


@pytest.mark.parametrize("charm", ["coordinator", "worker"])
def test_no_kubernetes_config_at_all_is_a_status_not_a_crash(monkeypatch, tmp_path, charm):
    # Outside a pod and without KUBECONFIG, lightkube.Client() itself fails (ConfigError).
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.setenv("HOME", str(tmp_path))
    if charm == "coordinator":
        ctx = coordinator_context()
        state = coordinator_state(*workers_relations(), mesh_relation())
    else:
        ctx = worker_context()
        state = worker_state(cluster_to_coordinator())
    out = ctx.run(ctx.on.config_changed(), state)
    assert isinstance(out.unit_status, ops.WaitingStatus)
    assert "Kubernetes API unreachable" in out.unit_status.message
    out = ctx.run(ctx.on.remove(), with_fields(out, planned_units=0))  # makes no call at all
    assert not isinstance(out.unit_status, ops.ErrorStatus)


def test_mesh_relation_added_and_removed_twice(kube):
    ctx = coordinator_context()
    api = testing.Relation("api", remote_app_name="client")
    state = coordinator_state(*workers_relations(), api)
    state = ctx.run(ctx.on.config_changed(), state)
    unmeshed = (pod_labels(kube, COORDINATOR), service_labels(kube, COORDINATOR))
    for _ in range(2):
        mesh = mesh_relation()
        state = ctx.run(ctx.on.relation_created(mesh), with_relations(state, mesh))
        mesh = relation_by_endpoint(state, "service-mesh")
        state = ctx.run(ctx.on.relation_changed(mesh), state)
        mesh = relation_by_endpoint(state, "service-mesh")
        assert state.unit_status == ops.ActiveStatus()
        assert pod_labels(kube, COORDINATOR) == {**unmeshed[0], **MESH_LABELS}
        assert len(policy_specs(kube)) == 5
        published = json.loads(
            relation_by_endpoint(state, "service-mesh").local_app_data["policies"]
        )
        assert published  # the beacon learns who may reach us
        state = ctx.run(ctx.on.relation_broken(mesh), state)
        state = _without(state, "service-mesh")
        assert (pod_labels(kube, COORDINATOR), service_labels(kube, COORDINATOR)) == unmeshed
        assert policy_specs(kube) == {}
        for relation in state.relations:
            if relation.endpoint == "cluster":
                labels = json.loads(relation.local_app_data["worker_labels"])
                assert labels == MEMBERSHIP
    assert state.unit_status == ops.ActiveStatus()


def test_worker_losing_its_coordinator_drops_only_the_coordinator_labels(kube):
    sts = kube.get("statefulsets", MODEL, WORKERS[0])
    assert sts is not None
    sts["spec"]["template"]["metadata"]["labels"]["team"] = "observability"  # someone else's
    kube.add(sts)
    ctx = worker_context()
    relation = cluster_to_coordinator()
    out = ctx.run(ctx.on.config_changed(), worker_state(relation))
    assert pod_labels(kube, WORKERS[0])["istio.io/dataplane-mode"] == "ambient"
    out = ctx.run(ctx.on.relation_broken(relation_by_endpoint(out, "cluster")), out)
    assert pod_labels(kube, WORKERS[0]) == {
        "app.kubernetes.io/name": WORKERS[0],
        "team": "observability",
    }
    assert label_record(kube, WORKERS[0]) == {}


def test_worker_keeps_its_last_good_state_when_the_coordinator_data_turns_bad(kube):
    ctx = worker_context()
    relation = cluster_to_coordinator(relation_id=3)
    good = ctx.run(ctx.on.config_changed(), worker_state(relation))
    relation = relation_by_endpoint(good, "cluster")
    labels = pod_labels(kube, WORKERS[0])
    bad = cluster_to_coordinator(
        relation_id=3, remote_app_data={**provider_data().dump(), "worker_labels": "{oops"}
    )
    out = ctx.run(ctx.on.relation_changed(bad), replace_relation(good, relation, bad))
    assert isinstance(out.unit_status, ops.BlockedStatus)
    assert out.unit_status.message.startswith("cluster:")
    assert pod_labels(kube, WORKERS[0]) == labels
    container = out.get_container("workload")
    assert container.service_statuses["workload"] == ops.pebble.ServiceStatus.ACTIVE


def test_coordinator_keeps_labels_and_policies_when_the_mesh_data_turns_bad(kube):
    ctx = coordinator_context()
    state = meshed_cluster(kube)
    before = (pod_labels(kube, COORDINATOR), policy_specs(kube))
    old = relation_by_endpoint(state, "service-mesh")
    bad = mesh_relation(id=old.id, remote_app_data={"labels": "{not json", "mesh_type": '"istio"'})
    out = ctx.run(ctx.on.relation_changed(bad), replace_relation(state, old, bad))
    assert isinstance(out.unit_status, ops.BlockedStatus)
    assert out.unit_status.message.startswith("service-mesh:")
    assert (pod_labels(kube, COORDINATOR), policy_specs(kube)) == before
    for relation in out.relations:
        if relation.endpoint == "cluster":
            assert json.loads(relation.local_app_data["worker_labels"]) == {
                **MEMBERSHIP,
                **MESH_LABELS,
            }
