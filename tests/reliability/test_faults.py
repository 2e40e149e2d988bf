# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Every Kubernetes call either charm makes, failed every way an API server can fail.

A *story* is a short run of hooks (first contact, a change that writes and deletes, removal)
that between them make every kind of Kubernetes call. The kinds are enumerated by recording
the stories against a healthy fake (and a test checks that enumeration stays complete). Each
(call kind, fault) case then replays the story up to the step that makes that call, injects
the fault for every matching request of that step, and checks:

- no hook raises (ops.testing would raise ``UncaughtCharmError``);
- the unit status names the cause (403 asks for ``juju trust``);
- no policy in place before is lost, unless the healthy run deletes it too, and when an apply
  failed no policy letting in a source of the failed one was deleted (make before break, for
  that source only: other sources' revocations still happen);
- no label the healthy run keeps is removed from the pod template or the Service;
- the next hook, with the fault cleared, ends exactly where the healthy run ends.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable
from typing import Any

import ops
import pytest
from ops import testing
from reliability_charms import (
    COORDINATOR,
    MESH_LABELS,
    MODEL,
    WORKERS,
    cluster_to_coordinator,
    coordinator_context,
    coordinator_state,
    mesh_relation,
    new_kubernetes,
    provider_data,
    relation_by_endpoint,
    replace_relation,
    with_fields,
    worker_context,
    worker_state,
    workers_relations,
)

from service_mesh.testing import FakeKubernetes

WORKER = WORKERS[0]

# ----- the stories --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Step:
    """One hook: which event, given the state the previous step left."""

    name: str
    run: Callable[[testing.Context, testing.State], tuple[Any, testing.State]]


# A third worker app also runs ``write``, so the cluster stays consistent when one leaves and
# the only problem a status can show is the injected one.
STORY_WORKERS = (*WORKERS, "worker-extra")


def _coordinator_first_contact(ctx: testing.Context, _: testing.State):
    relations = workers_relations(STORY_WORKERS)
    return ctx.on.config_changed(), coordinator_state(*relations, mesh_relation())


def _coordinator_worker_leaves_mesh_relabels(ctx: testing.Context, state: testing.State):
    # The beacon drops one label and changes another while a worker app leaves: the record is
    # widened then trimmed, labels are removed, and two policies become stale.
    labels = {**MESH_LABELS, "istio.io/use-waypoint": "other-waypoint"}
    labels.pop("istio.io/use-waypoint-namespace")
    old_mesh = relation_by_endpoint(state, "service-mesh")
    state = replace_relation(
        state,
        old_mesh,
        mesh_relation(labels, id=old_mesh.id),
    )
    leaving = next(
        r
        for r in state.relations
        if isinstance(r, testing.Relation) and r.remote_app_name == WORKERS[1]
    )
    return ctx.on.relation_broken(leaving), state


def _coordinator_removed(ctx: testing.Context, state: testing.State):
    return ctx.on.remove(), with_fields(state, planned_units=0)


def _worker_first_contact(ctx: testing.Context, _: testing.State):
    return ctx.on.config_changed(), worker_state(cluster_to_coordinator(relation_id=7))


def _worker_mesh_relabels(ctx: testing.Context, state: testing.State):
    labels = {"app.kubernetes.io/part-of": COORDINATOR, "istio.io/dataplane-mode": "ambient"}
    relation = cluster_to_coordinator(provider_data(labels), relation_id=7)
    old = relation_by_endpoint(state, "cluster")
    return ctx.on.relation_changed(relation), replace_relation(state, old, relation)


def _worker_coordinator_leaves(ctx: testing.Context, state: testing.State):
    return ctx.on.relation_broken(relation_by_endpoint(state, "cluster")), state


@dataclasses.dataclass(frozen=True)
class Story:
    charm: str
    app: str
    context: Callable[[], testing.Context]
    steps: tuple[Step, ...]
    what: str
    """How the charm names the failing step in its status."""


STORIES = {
    "coordinator": Story(
        "coordinator",
        COORDINATOR,
        coordinator_context,
        (
            Step("first contact", _coordinator_first_contact),
            Step("worker leaves, mesh relabels", _coordinator_worker_leaves_mesh_relabels),
            Step("remove", _coordinator_removed),
        ),
        "",
    ),
    "worker": Story(
        "worker",
        WORKER,
        lambda: worker_context(WORKER),
        (
            Step("first contact", _worker_first_contact),
            Step("mesh relabels", _worker_mesh_relabels),
            Step("coordinator leaves", _worker_coordinator_leaves),
        ),
        "pod labels",
    ),
}


def call_kind(method: str, path: str) -> str:
    """``METHOD plural[/name]``: what a request does, without the object's name."""
    parts = path.strip("/").split("/")
    if "namespaces" in parts:
        index = parts.index("namespaces")
        rest = parts[index + 2 :]
    else:
        rest = parts[3:] if parts[0] == "apis" else parts[2:]
    return f"{method} {rest[0]}{'/name' if len(rest) > 1 else ''}"


@dataclasses.dataclass
class Snapshot:
    """What a step left in Kubernetes and Juju."""

    objects: list[dict[str, Any]]
    state: testing.State
    status: object  # ops.testing's status of the unit, compared with ==
    kinds: list[str]

    def view(self, app: str) -> dict[str, Any]:
        return _view(self.objects, app)


def _dump(kube: FakeKubernetes) -> list[dict[str, Any]]:
    return [
        obj
        for plural in ("statefulsets", "services", "configmaps", "authorizationpolicies")
        for obj in kube.list(plural)
    ]


def _view(objects: list[dict[str, Any]], app: str) -> dict[str, Any]:
    """The parts of Kubernetes the charms own: labels, the label record, policy specs."""
    by_kind: dict[tuple[str, str], dict[str, Any]] = {
        (o["kind"], o["metadata"]["name"]): o for o in objects
    }
    sts = by_kind.get(("StatefulSet", app))
    svc = by_kind.get(("Service", app))
    record = by_kind.get(("ConfigMap", f"{app}-pod-labels"))
    return {
        "pod": dict(sts["spec"]["template"]["metadata"].get("labels") or {}) if sts else None,
        "service": dict(svc["metadata"].get("labels") or {}) if svc else None,
        "record": json.loads(record["data"]["labels"]) if record else None,
        "policies": {
            o["metadata"]["name"]: o["spec"] for o in objects if o["kind"] == "AuthorizationPolicy"
        },
    }


def _seed(objects: list[dict[str, Any]], kube: FakeKubernetes) -> None:
    """Make ``kube`` hold exactly ``objects`` (it starts with the Juju-created ones)."""
    for obj in objects:
        kube.add(obj)


@functools.cache
def healthy_run(story_name: str) -> tuple[Snapshot, ...]:
    """Each step of the story against a healthy API: the reference every case compares with."""
    story = STORIES[story_name]
    snapshots: list[Snapshot] = []
    kube = new_kubernetes()
    with kube.serve_to_environment(namespace=MODEL):
        ctx = story.context()
        state = testing.State()
        for step in story.steps:
            event, state = step.run(ctx, state)
            kube.clear_requests()
            out = ctx.run(event, state)
            kinds = [call_kind(r["method"], r["path"]) for r in kube.clear_requests()]
            snapshots.append(Snapshot(_dump(kube), _after(out, event), out.unit_status, kinds))
            state = snapshots[-1].state
    return tuple(snapshots)


def _after(out: testing.State, event: Any) -> testing.State:
    """The state Juju would continue from: a broken relation is gone afterwards."""
    if getattr(event, "name", "").endswith("_relation_broken"):
        relation = event.relation
        return replace_relation(out, relation, None)
    return out


# ----- the call kinds and faults ------------------------------------------------------------

CALL_KINDS = {
    "coordinator": {
        "GET configmaps/name": 0,
        "POST configmaps": 0,
        "PATCH statefulsets/name": 0,
        "PATCH services/name": 0,
        "GET authorizationpolicies": 0,
        "GET statefulsets/name": 0,
        "PATCH authorizationpolicies/name": 0,
        "PATCH configmaps/name": 0,
        "DELETE authorizationpolicies/name": 1,
    },
    "worker": {
        "GET configmaps/name": 0,
        "POST configmaps": 0,
        "PATCH statefulsets/name": 0,
        "PATCH services/name": 0,
        "PATCH configmaps/name": 0,
    },
}
"""Call kind -> the first step of the story that makes it (checked against a recording)."""

FAULTS: dict[str, dict[str, Any]] = {
    "401": {"status": 401},
    "403": {"status": 403},
    "404": {"status": 404},
    "409": {"status": 409},
    "422": {"status": 422},
    "429": {"status": 429},
    "500": {"status": 500},
    "503": {"status": 503},
    "connect": {"error": "connect"},
    "timeout": {"error": "timeout"},
    "not-json": {"body": "not-json"},
    "truncated": {"body": "truncated"},
    "wrong-kind": {"body": "wrong-kind"},
}

CAUSES = {
    "401": "(401)",
    "403": "`juju trust",
    "404": "(404)",
    "409": "(409)",
    "422": "(422)",
    "429": "(429)",
    "500": "(500)",
    "503": "(503)",
    "connect": "unreachable",
    "timeout": "unreachable",
    "not-json": "malformed answer",
    "truncated": "malformed answer",
    "wrong-kind": "malformed answer",
}
"""What the status must say for each fault."""


@pytest.mark.parametrize("story_name", sorted(STORIES))
def test_the_enumeration_covers_every_call_the_story_makes(story_name):
    recorded = {
        kind: index
        for index, snapshot in reversed(list(enumerate(healthy_run(story_name))))
        for kind in snapshot.kinds
    }
    assert recorded == CALL_KINDS[story_name]


CASES = [
    pytest.param(story, kind, fault, id=f"{story}-{kind.replace(' ', '_')}-{fault}")
    for story, kinds in CALL_KINDS.items()
    for kind in kinds
    for fault in FAULTS
]


def _inject(kube: FakeKubernetes, kind: str, fault: str) -> tuple[str, str]:
    method, _, target = kind.partition(" ")
    plural = target.split("/")[0]
    path_contains = f"/{plural}/" if target.endswith("/name") else f"/{plural}"
    spec = FAULTS[fault]
    if "error" in spec:
        kube.fail_transport(
            method=method, path_contains=path_contains, error=spec["error"], times=None
        )
    elif "body" in spec:
        kube.fail_body(spec["body"], method=method, path_contains=path_contains, times=None)
    else:
        kube.fail(method=method, path_contains=path_contains, status=spec["status"], times=None)
    return method, path_contains


@pytest.mark.parametrize(("story_name", "kind", "fault"), CASES)
def test_fault_is_survived_reported_and_recovered(kube, story_name, kind, fault):
    story = STORIES[story_name]
    step_index = CALL_KINDS[story_name][kind]
    reference = healthy_run(story_name)
    before = reference[step_index - 1] if step_index else None
    if before is not None:
        _seed(before.objects, kube)
    before_view = _view(before.objects if before else _dump(kube), story.app)
    ctx = story.context()
    event, state = story.steps[step_index].run(ctx, before.state if before else testing.State())

    method, path_contains = _inject(kube, kind, fault)
    kube.clear_requests()
    out = ctx.run(event, state)  # raises UncaughtCharmError if any hook raised
    hit = [r for r in kube.requests if r["method"] == method and path_contains in r["path"]]
    assert hit, f"the step never made a {kind} call"

    healthy = reference[step_index].view(story.app)
    after = _view(_dump(kube), story.app)
    _assert_policies_kept(before_view["policies"], after["policies"], healthy["policies"])
    for where in ("pod", "service"):
        if before_view[where] is not None and healthy[where] is not None:
            should_stay = {
                k: v for k, v in before_view[where].items() if healthy[where].get(k) == v
            }
            assert should_stay.items() <= (after[where] or {}).items(), where
    # A 404 answering a DELETE says the object is gone already: the charm rightly believes it,
    # and the next reconcile, seeing it listed again, deletes it (checked below).
    believed_gone = method == "DELETE" and fault == "404"
    if after != healthy and not believed_gone:
        message = getattr(out.unit_status, "message", "")
        assert isinstance(out.unit_status, (ops.BlockedStatus, ops.WaitingStatus)), out.unit_status
        assert _names_cause(message, fault), message

    kube.clear_faults()
    if story.steps[step_index].name == "remove":
        # Juju runs remove once; an operator re-runs the cleanup by resolving, so check that a
        # second remove finishes the job.
        again = ctx.run(ctx.on.remove(), state)
    else:
        again = ctx.run(ctx.on.update_status(), _after(out, event))
    assert _view(_dump(kube), story.app) == healthy
    assert again.unit_status == reference[step_index].status


def _names_cause(message: str, fault: str) -> bool:
    if CAUSES[fault] in message:
        return True
    # A 404 on a read means "absent": the charm then acts on that and may hit a 409 (the
    # record exists after all) or conclude Istio is not installed. Both are named.
    return fault == "404" and ("(409)" in message or "CRD missing" in message)


def _principals(spec: dict[str, Any]) -> set[str]:
    return {
        principal
        for rule in spec.get("rules") or []
        for source in rule.get("from") or []
        for principal in source.get("source", {}).get("principals") or []
    }


def _assert_policies_kept(
    before: dict[str, Any], after: dict[str, Any], healthy: dict[str, Any]
) -> None:
    lost = set(before) - set(after)
    assert lost <= set(before) - set(healthy), f"lost policies the healthy run keeps: {lost}"
    for name in set(before) & set(after):
        assert after[name] == before[name] or after[name] == healthy.get(name)
    # Some apply failed: make before break for the sources of the policies not in place.
    missing = {p for name in set(healthy) - set(after) for p in _principals(healthy[name])}
    for name in lost:
        shared = _principals(before[name]) & missing
        assert not shared, f"deleted {name} although the apply for {shared} failed"


@pytest.mark.parametrize("story_name", sorted(STORIES))
def test_missing_istio_crds_block_with_advice_and_recover(kube, story_name):
    story = STORIES[story_name]
    reference = healthy_run(story_name)
    kube.crds_installed = False
    ctx = story.context()
    event, state = story.steps[0].run(ctx, testing.State())
    out = ctx.run(event, state)
    if story_name == "coordinator":
        assert out.unit_status == ops.BlockedStatus(
            "cluster-internal policies: Istio AuthorizationPolicy CRD missing; is Istio installed?"
        )
    else:  # workers never touch Istio resources
        assert out.unit_status == reference[0].status
    kube.crds_installed = True
    again = ctx.run(ctx.on.update_status(), out)
    assert _view(_dump(kube), story.app) == reference[0].view(story.app)
    assert again.unit_status == reference[0].status
