# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""No enrolment before authorisation: mesh labels follow the policies that let an app talk.

In a hardened mesh an enrolled pod may only talk where an AuthorizationPolicy lets it, so the
coordinator applies the cluster-internal policies first and gives an app (itself, or a worker
app through its cluster bag) the mesh labels only once that app's policies are in place.
"""

from __future__ import annotations

import json

import ops
from reliability_charms import (
    COORDINATOR,
    MEMBERSHIP,
    MESH_LABELS,
    MODEL,
    coordinator_context,
    coordinator_state,
    mesh_relation,
    pod_labels,
    policy_specs,
    with_relations,
    workers_relations,
)

from coordinated_workers.testing import worker_relation

ENROLLED = {**MEMBERSHIP, **MESH_LABELS}
JUJU_POD_LABELS = {"app.kubernetes.io/name": COORDINATOR}


def _bag_labels(state, app: str) -> dict[str, str] | None:
    relation = next(r for r in state.relations if r.remote_app_name == app)
    raw = relation.local_app_data.get("worker_labels")
    return None if raw is None else json.loads(raw)


def test_policies_are_applied_before_any_pod_is_labelled(kube):
    ctx = coordinator_context()

    out = ctx.run(
        ctx.on.config_changed(), coordinator_state(*workers_relations(), mesh_relation())
    )

    writes = [(r["method"], r["path"]) for r in kube.requests if r["method"] != "GET"]
    policy_writes = [i for i, (_, path) in enumerate(writes) if "authorizationpolicies" in path]
    label_writes = [i for i, (_, path) in enumerate(writes) if "/statefulsets/" in path]
    assert len(policy_writes) == 5
    assert label_writes
    assert max(policy_writes) < min(label_writes)
    assert pod_labels(kube, COORDINATOR) == {**JUJU_POD_LABELS, **ENROLLED}
    assert _bag_labels(out, "worker-read") == _bag_labels(out, "worker-write") == ENROLLED


def test_a_new_worker_app_joins_the_mesh_only_once_its_policies_exist(kube):
    ctx = coordinator_context()
    state = ctx.run(
        ctx.on.config_changed(), coordinator_state(*workers_relations(), mesh_relation())
    )
    extra = worker_relation("worker-extra", ["write"], model=MODEL)
    kube.fail(method="PATCH", path_contains="worker-extra", status=500, times=None)

    out = ctx.run(ctx.on.relation_joined(extra), with_relations(state, extra))

    # The new app is a member (the policies select members by it) but not enrolled; the
    # apps already authorised stay enrolled, and the status says why.
    assert _bag_labels(out, "worker-extra") == MEMBERSHIP
    assert _bag_labels(out, "worker-read") == _bag_labels(out, "worker-write") == ENROLLED
    assert pod_labels(kube, COORDINATOR) == {**JUJU_POD_LABELS, **ENROLLED}
    assert isinstance(out.unit_status, ops.WaitingStatus)
    assert "cluster-internal policies" in out.unit_status.message
    assert not any("worker-extra" in name for name in policy_specs(kube))

    kube.clear_faults()
    again = ctx.run(ctx.on.update_status(), out)

    assert sum("worker-extra" in name for name in policy_specs(kube)) == 2
    assert _bag_labels(again, "worker-extra") == ENROLLED
    assert again.unit_status == ops.ActiveStatus()


def test_the_coordinator_joins_only_once_its_own_policy_exists(kube):
    ctx = coordinator_context()
    own_policy = f"{COORDINATOR}-{MODEL}-policy-{COORDINATOR}-{MODEL}-custom-selector"
    kube.fail(method="PATCH", path_contains=own_policy, status=422, times=None)

    out = ctx.run(
        ctx.on.config_changed(), coordinator_state(*workers_relations(), mesh_relation())
    )

    assert pod_labels(kube, COORDINATOR) == {**JUJU_POD_LABELS, **MEMBERSHIP}
    assert _bag_labels(out, "worker-read") == ENROLLED  # its two policies are in place
    kube.clear_faults()
    ctx.run(ctx.on.update_status(), out)
    assert pod_labels(kube, COORDINATOR) == {**JUJU_POD_LABELS, **ENROLLED}


def test_when_the_policies_cannot_be_listed_nobody_new_is_enrolled(kube):
    ctx = coordinator_context()
    kube.fail(method="GET", path_contains="authorizationpolicies", status=500, times=None)

    out = ctx.run(
        ctx.on.config_changed(), coordinator_state(*workers_relations(), mesh_relation())
    )

    assert _bag_labels(out, "worker-read") == _bag_labels(out, "worker-write") == MEMBERSHIP
    assert pod_labels(kube, COORDINATOR) == JUJU_POD_LABELS  # left as it was
    kube.clear_faults()
    again = ctx.run(ctx.on.update_status(), out)
    assert _bag_labels(again, "worker-read") == ENROLLED
    assert pod_labels(kube, COORDINATOR) == {**JUJU_POD_LABELS, **ENROLLED}


def test_a_worker_app_name_our_rules_refuse_costs_only_that_app(kube):
    # Juju never relates such an app; if a rule of ours were ever stricter than Juju's, the
    # coordinator must not crash, and the other apps keep their policies and labels.
    ctx = coordinator_context()
    long_name = "worker-" + "x" * 60  # Juju's pattern, but no Kubernetes Service can have it
    odd = worker_relation(long_name, ["write"], units=0, model=MODEL)

    out = ctx.run(
        ctx.on.config_changed(), coordinator_state(*workers_relations(), odd, mesh_relation())
    )

    assert len(policy_specs(kube)) == 5
    assert _bag_labels(out, "worker-read") == ENROLLED
    assert _bag_labels(out, long_name) == MEMBERSHIP
    assert isinstance(out.unit_status, ops.BlockedStatus)
    assert out.unit_status.message.startswith("cluster-internal policies: worker app name")
    assert out.unit_status.message.endswith("is not one Juju and Kubernetes accept")
    again = ctx.run(ctx.on.config_changed(), out)  # not a verifying event
    assert again.unit_status == out.unit_status
