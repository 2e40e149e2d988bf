# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""With auto_join, the consumer's leader puts the mesh labels on its pods; otherwise nobody does.

Kubernetes is the loopback fake of :mod:`service_mesh.testing`, reached by the real
``lightkube.Client`` the consumer builds from ``KUBECONFIG``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import TYPE_CHECKING, Any

import ops
import pytest
from ops import testing

from service_mesh import ServiceMeshConsumer, label_configmap_name_template
from service_mesh.testing import FakeKubernetes

if TYPE_CHECKING:
    import pathlib
    from collections.abc import Iterator

META: dict[str, Any] = {
    "name": "tempo",
    "requires": {
        "service-mesh": {"interface": "service_mesh", "limit": 1},
        "require-cmr-mesh": {"interface": "cross_model_mesh"},
    },
    "provides": {"provide-cmr-mesh": {"interface": "cross_model_mesh"}},
}
RECORD = label_configmap_name_template.format(app_name="tempo")


class _Joining(ops.CharmBase):
    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.mesh = ServiceMeshConsumer(self)


class _NotJoining(ops.CharmBase):
    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.mesh = ServiceMeshConsumer(self, auto_join=False)


@pytest.fixture
def kubernetes(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeKubernetes]:
    fake = FakeKubernetes()
    fake.add_juju_app("tempo", namespace="cos")
    with fake.serve(namespace="cos") as kubeconfig:
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
        yield fake


@pytest.fixture
def ambient(provider_vector: dict[str, Any]) -> dict[str, str]:
    return provider_vector["databag_ambient"]


@pytest.fixture
def ambient_labels(ambient: dict[str, str]) -> dict[str, str]:
    return json.loads(ambient["labels"])


def _mesh(provider_bag: dict[str, str]) -> testing.Relation:
    return testing.Relation(
        "service-mesh", remote_app_name="istio-beacon-k8s", remote_app_data=provider_bag
    )


def _run(
    charm: type[Any], event: str, relation: testing.Relation, leader: bool = True
) -> str | None:
    """Run a mesh relation event and return the consumer's problem afterwards."""
    ctx = testing.Context(charm, meta=META, app_name="tempo")
    state = testing.State(leader=leader, model=testing.Model(name="cos"), relations=[relation])
    with ctx(getattr(ctx.on, event)(relation), state) as manager:
        manager.run()
        mesh: ServiceMeshConsumer = manager.charm.mesh
        return mesh.problem


def _pod_labels(kubernetes: FakeKubernetes) -> dict[str, str]:
    statefulset = kubernetes.get("statefulsets", "cos", "tempo")
    assert statefulset is not None
    return statefulset["spec"]["template"]["metadata"]["labels"]


def _service_labels(kubernetes: FakeKubernetes) -> dict[str, str]:
    service = kubernetes.get("services", "cos", "tempo")
    assert service is not None
    return service["metadata"].get("labels", {})


def test_leader_joins_on_relation_changed(
    kubernetes: FakeKubernetes, ambient: dict[str, str], ambient_labels: dict[str, str]
):
    problem = _run(_Joining, "relation_changed", _mesh(ambient))

    assert problem is None
    assert ambient_labels.items() <= _pod_labels(kubernetes).items()
    assert ambient_labels.items() <= _service_labels(kubernetes).items()
    record = kubernetes.get("configmaps", "cos", RECORD)
    assert record is not None
    assert json.loads(record["data"]["labels"]) == ambient_labels


def test_leader_leaves_on_relation_broken(
    kubernetes: FakeKubernetes, ambient: dict[str, str], ambient_labels: dict[str, str]
):
    relation = _mesh(ambient)
    _run(_Joining, "relation_changed", relation)

    problem = _run(_Joining, "relation_broken", relation)

    assert problem is None
    assert not ambient_labels.keys() & _pod_labels(kubernetes).keys()
    assert not ambient_labels.keys() & _service_labels(kubernetes).keys()
    assert _pod_labels(kubernetes) == {"app.kubernetes.io/name": "tempo"}, "Juju's label stays"
    assert kubernetes.get("configmaps", "cos", RECORD) is None


def test_broken_without_a_record_is_fine(kubernetes: FakeKubernetes, ambient: dict[str, str]):
    # A leader that never joined (say, elected after the join) still cleans up without error.
    problem = _run(_Joining, "relation_broken", _mesh(ambient))

    assert problem is None
    assert kubernetes.get("configmaps", "cos", RECORD) is None


def test_provider_dropping_labels_removes_them(
    kubernetes: FakeKubernetes, ambient: dict[str, str], ambient_labels: dict[str, str]
):
    _run(_Joining, "relation_changed", _mesh(ambient))

    _run(_Joining, "relation_changed", _mesh({**ambient, "labels": "{}"}))

    assert not ambient_labels.keys() & _pod_labels(kubernetes).keys()


@pytest.mark.parametrize("event", ["relation_changed", "relation_broken"])
def test_non_leader_never_touches_kubernetes(
    kubernetes: FakeKubernetes, ambient: dict[str, str], event: str
):
    problem = _run(_Joining, event, _mesh(ambient), leader=False)

    assert problem is None
    assert kubernetes.requests == []


@pytest.mark.parametrize("event", ["relation_changed", "relation_broken"])
def test_without_auto_join_kubernetes_is_left_alone(
    kubernetes: FakeKubernetes, ambient: dict[str, str], event: str
):
    _run(_NotJoining, event, _mesh(ambient))

    assert kubernetes.requests == []


def test_forbidden_patch_is_a_problem_not_a_crash(
    kubernetes: FakeKubernetes, ambient: dict[str, str]
):
    kubernetes.fail("PATCH", path_contains="statefulsets", status=403)

    problem = _run(_Joining, "relation_changed", _mesh(ambient))

    assert problem is not None
    assert problem.startswith("could not update the mesh labels:")


def test_unreachable_api_is_a_problem_not_a_crash(
    kubernetes: FakeKubernetes, ambient: dict[str, str]
):
    kubernetes.fail_transport(times=None)

    problem = _run(_Joining, "relation_changed", _mesh(ambient))

    assert problem is not None
    assert problem.startswith("could not update the mesh labels:")


def test_failed_record_delete_is_a_problem_not_a_crash(
    kubernetes: FakeKubernetes, ambient: dict[str, str]
):
    relation = _mesh(ambient)
    _run(_Joining, "relation_changed", relation)
    kubernetes.fail("DELETE", path_contains=RECORD, status=500)

    problem = _run(_Joining, "relation_broken", relation)

    assert problem is not None
    assert problem.startswith("could not remove the mesh labels:")


def test_outside_kubernetes_is_a_problem_not_a_crash(
    monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path, ambient: dict[str, str]
):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))

    problem = _run(_Joining, "relation_changed", _mesh(ambient))

    assert problem is not None
    assert problem.startswith("could not update the mesh labels:")


@pytest.mark.parametrize("event", ["leader_elected", "upgrade_charm"])
def test_new_leader_and_refresh_repair_the_labels(
    kubernetes: FakeKubernetes, ambient: dict[str, str], ambient_labels: dict[str, str], event: str
):
    relation = _mesh(ambient)
    ctx = testing.Context(_Joining, meta=META, app_name="tempo")
    state = testing.State(leader=True, model=testing.Model(name="cos"), relations=[relation])

    ctx.run(getattr(ctx.on, event)(), state)

    assert ambient_labels.items() <= _pod_labels(kubernetes).items()


@pytest.mark.parametrize("event", ["leader_elected", "upgrade_charm"])
def test_charm_off_the_mesh_never_needs_kubernetes(kubernetes: FakeKubernetes, event: str):
    ctx = testing.Context(_Joining, meta=META, app_name="tempo")

    ctx.run(getattr(ctx.on, event)(), testing.State(leader=True, model=testing.Model(name="cos")))

    assert kubernetes.requests == []


def test_refresh_repairs_a_statefulset_juju_rewrote(
    kubernetes: FakeKubernetes, ambient: dict[str, str], ambient_labels: dict[str, str]
):
    relation = _mesh(ambient)
    _run(_Joining, "relation_changed", relation)
    kubernetes.add_juju_app("tempo", namespace="cos")  # as Juju does on refresh; record intact
    ctx = testing.Context(_Joining, meta=META, app_name="tempo")
    state = testing.State(leader=True, model=testing.Model(name="cos"), relations=[relation])

    ctx.run(ctx.on.upgrade_charm(), state)

    assert ambient_labels.items() <= _pod_labels(kubernetes).items()


def test_malformed_provider_data_keeps_the_pods_on_the_mesh(
    kubernetes: FakeKubernetes, ambient: dict[str, str], ambient_labels: dict[str, str]
):
    # Garbage is not "no mesh": leaving would roll every pod out of the mesh (provider_problem).
    _run(_Joining, "relation_changed", _mesh(ambient))

    problem = _run(_Joining, "relation_changed", _mesh({**ambient, "labels": "{not json"}))

    assert problem is not None
    assert ambient_labels.items() <= _pod_labels(kubernetes).items()
    assert ambient_labels.items() <= _service_labels(kubernetes).items()


@pytest.mark.parametrize(
    "labels",
    [
        {"app.kubernetes.io/name": "istio"},  # Juju's pod selector label
        {"istio.io/dataplane-mode": "ambient", "bad key!": "x"},
        {"istio.io/dataplane-mode": "not a label value"},
    ],
    ids=["juju-selector-label", "invalid-key", "invalid-value"],
)
def test_provider_labels_kubernetes_would_refuse_or_juju_owns_are_ignored(
    kubernetes: FakeKubernetes, labels: dict[str, str]
):
    problem = _run(
        _Joining, "relation_changed", _mesh({"labels": json.dumps(labels), "mesh_type": '"istio"'})
    )

    assert problem is not None
    assert problem.startswith("ignored mesh data from 'istio-beacon-k8s': labels")
    assert _pod_labels(kubernetes) == {"app.kubernetes.io/name": "tempo"}
    assert [r for r in kubernetes.requests if r["method"] != "GET"] == []


@pytest.fixture
def chatty_transport() -> Iterator[None]:
    """httpx2/httpcore2 loggers at their default level, as in a fresh hook process."""
    loggers = [logging.getLogger(name) for name in ("httpx2", "httpcore2")]
    saved = [log.level for log in loggers]
    for log in loggers:
        log.setLevel(logging.NOTSET)
    yield
    for log, level in zip(loggers, saved, strict=True):
        log.setLevel(level)


@pytest.mark.usefixtures("chatty_transport")
def test_http_transport_chatter_stays_out_of_juju_log(
    kubernetes: FakeKubernetes, ambient: dict[str, str]
):
    # ops turns every log record into a `juju-log` process; the transport logs ~13 per request.
    relation = _mesh(ambient)
    ctx = testing.Context(_Joining, meta=META, app_name="tempo")
    state = testing.State(leader=True, model=testing.Model(name="cos"), relations=[relation])

    ctx.run(ctx.on.relation_changed(relation), state)

    assert kubernetes.requests, "the hook talked to Kubernetes"
    chatter = [
        line.message
        for line in ctx.juju_log
        if "HTTP" in line.message or ".started" in line.message
    ]
    assert chatter == []


def test_a_client_the_charm_set_is_used_and_left_open(
    kubernetes: FakeKubernetes, ambient: dict[str, str], ambient_labels: dict[str, str]
):
    # Upstream's tests assign `_lightkube_client`; a client handed in is not ours to close.
    from lightkube.resources.core_v1 import ConfigMap

    relation = _mesh(ambient)
    ctx = testing.Context(_Joining, meta=META, app_name="tempo")
    state = testing.State(leader=True, model=testing.Model(name="cos"), relations=[relation])
    client = kubernetes.client(namespace="cos", field_manager="tempo")
    kubernetes.clear_requests()

    with ctx(ctx.on.relation_changed(relation), state) as manager:
        manager.charm.mesh._lightkube_client = client
        manager.run()

    assert ambient_labels.items() <= _pod_labels(kubernetes).items()
    assert client.get(ConfigMap, RECORD, namespace="cos").data is not None  # still open
    assert len(kubernetes.requests) > 1


# ----- label work converges (issue 11.6) ---------------------------------------------------


def _hook(
    event: str, state: testing.State, relation: testing.Relation | None = None
) -> tuple[testing.State, str | None]:
    """Run one hook on ``state`` (stored state carried over); the output and the problem."""
    ctx = testing.Context(_Joining, meta=META, app_name="tempo")
    on = getattr(ctx.on, event)
    with ctx(on(relation) if relation is not None else on(), state) as manager:
        out = manager.run()
        mesh: ServiceMeshConsumer = manager.charm.mesh
        return out, mesh.problem


def test_a_join_refused_before_trust_is_retried_by_every_later_hook(
    kubernetes: FakeKubernetes, ambient: dict[str, str], ambient_labels: dict[str, str]
):
    relation = _mesh(ambient)
    state = testing.State(leader=True, model=testing.Model(name="cos"), relations=[relation])
    kubernetes.fail(status=403, times=None)  # no `juju trust` yet

    out, problem = _hook("relation_changed", state, relation)
    assert problem is not None and "juju trust tempo" in problem
    out, problem = _hook("update_status", out)
    assert problem is not None and "juju trust tempo" in problem, "the problem stays"

    kubernetes.clear_faults()  # `juju trust tempo --scope=cluster`
    out, problem = _hook("config_changed", out)

    assert problem is None
    assert ambient_labels.items() <= _pod_labels(kubernetes).items()
    kubernetes.clear_requests()
    out, problem = _hook("update_status", out)
    assert (problem, kubernetes.requests) == (None, []), "steady state: no request"


def test_a_leave_that_failed_once_is_retried_until_the_pods_are_off_the_mesh(
    kubernetes: FakeKubernetes, ambient: dict[str, str], ambient_labels: dict[str, str]
):
    relation = _mesh(ambient)
    state = testing.State(leader=True, model=testing.Model(name="cos"), relations=[relation])
    joined, _ = _hook("relation_changed", state, relation)
    kubernetes.fail("PATCH", path_contains="statefulsets", status=500)

    out, problem = _hook("relation_broken", joined, relation)
    assert problem is not None and problem.startswith("could not remove the mesh labels:")
    assert ambient_labels.items() <= _pod_labels(kubernetes).items()

    gone = dataclasses.replace(out, relations=[])
    out, problem = _hook("update_status", gone)

    assert problem is None
    assert _pod_labels(kubernetes) == {"app.kubernetes.io/name": "tempo"}
    assert kubernetes.get("configmaps", "cos", RECORD) is None
    kubernetes.clear_requests()
    _hook("config_changed", out)
    assert kubernetes.requests == [], "steady state: no request"


def test_a_charm_that_never_joined_makes_no_request_in_any_hook(kubernetes: FakeKubernetes):
    state = testing.State(leader=True, model=testing.Model(name="cos"))
    for event in ("install", "config_changed", "start", "update_status"):
        state, problem = _hook(event, state)
        assert problem is None
    assert kubernetes.requests == []


def test_a_mesh_that_has_not_published_needs_no_request_outside_its_own_events(
    kubernetes: FakeKubernetes,
):
    relation = _mesh({})
    state = testing.State(leader=True, model=testing.Model(name="cos"), relations=[relation])

    for event in ("config_changed", "update_status"):
        state, problem = _hook(event, state)
        assert problem is None
    _hook("relation_created", state, relation)

    assert kubernetes.requests == []
