# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The worker charm through ops.testing, with Kubernetes faked at the HTTP boundary."""

from __future__ import annotations

import dataclasses
import json
import shlex
import subprocess

import ops
from ops import testing
from worker_scenario import APP, MODEL, state, workload

from coordinated_workers import ClusterProviderAppData
from coordinated_workers.testing import (
    coordinator_relation,
    read_worker_roles,
    read_worker_unit_data,
)
from service_mesh.testing import FakeKubernetes

CONFIG = "coordinator: coordinator-k8s.test.svc.cluster.local\n"
LABELS = {"app.kubernetes.io/part-of": "coordinator-k8s"}
MESH = {"istio.io/dataplane-mode": "ambient"}


def published(**overrides) -> ClusterProviderAppData:
    data = {"worker_config": CONFIG, "worker_labels": LABELS, "worker_ports": [8080], **overrides}
    return ClusterProviderAppData.model_validate(data)


def pod_labels(kube: FakeKubernetes) -> dict[str, str]:
    sts = kube.get("statefulsets", MODEL, APP)
    assert sts is not None
    return sts["spec"]["template"]["metadata"]["labels"]


def test_without_coordinator_is_blocked_and_runs_nothing(ctx, kube):
    out = ctx.run(ctx.on.config_changed(), state())
    assert out.unit_status == ops.BlockedStatus("missing relation to a coordinator")
    assert out.get_container("workload").plan.services == {}


def test_runs_workload_with_config_labels_and_announces_itself(ctx, kube):
    relation = coordinator_relation(published())
    out = ctx.run(ctx.on.config_changed(), state(relation))
    container = out.get_container("workload")
    assert "workload" in container.plan.services
    assert container.service_statuses["workload"] == ops.pebble.ServiceStatus.ACTIVE
    fs = container.get_filesystem(ctx)
    assert (fs / "etc/worker/config.yaml").read_text() == CONFIG
    assert pod_labels(kube) == {"app.kubernetes.io/name": APP, **LABELS}
    rel_out = out.get_relation(relation.id)
    assert read_worker_roles(rel_out) == frozenset({"all"})
    assert read_worker_unit_data(rel_out).address == (
        f"{APP}-0.{APP}-endpoints.{MODEL}.svc.cluster.local"
    )
    assert out.opened_ports == {testing.TCPPort(8080)}


def test_mesh_labels_follow_the_coordinator(ctx, kube):
    meshed = coordinator_relation(published(worker_labels={**LABELS, **MESH}))
    out = ctx.run(ctx.on.config_changed(), state(meshed))
    assert pod_labels(kube)["istio.io/dataplane-mode"] == "ambient"

    unmeshed = coordinator_relation(published(), id=meshed.id)
    ctx.run(ctx.on.relation_changed(unmeshed), state(unmeshed, containers=list(out.containers)))
    assert pod_labels(kube) == {"app.kubernetes.io/name": APP, **LABELS}


def test_no_role_is_blocked(ctx, kube):
    out = ctx.run(
        ctx.on.config_changed(),
        state(coordinator_relation(published()), config={"role-all": False}),
    )
    assert isinstance(out.unit_status, ops.BlockedStatus)
    assert "role-all=true" in out.unit_status.message
    assert out.get_container("workload").plan.services == {}


def test_waits_for_config(ctx, kube):
    out = ctx.run(ctx.on.config_changed(), state(coordinator_relation(None)))
    assert out.unit_status == ops.WaitingStatus("waiting for the coordinator to publish a config")


def test_restarts_only_when_config_changes(ctx, kube):
    relation = coordinator_relation(published())
    out = ctx.run(ctx.on.config_changed(), state(relation))
    kube.clear_requests()
    again = ctx.run(ctx.on.update_status(), out)
    assert again.get_container("workload").plan == out.get_container("workload").plan
    requests = kube.clear_requests()
    assert [r["method"] for r in requests] == ["GET"]


def test_malformed_coordinator_data_is_reported_not_raised(ctx, kube):
    relation = coordinator_relation(remote_app_data={"worker_config": "{not json"})
    out = ctx.run(ctx.on.config_changed(), state(relation))
    assert isinstance(out.unit_status, ops.BlockedStatus)
    assert out.unit_status.message.startswith("cluster:")


def test_forbidden_labels_ask_for_trust(ctx, kube):
    kube.fail(status=403, times=None)
    out = ctx.run(ctx.on.config_changed(), state(coordinator_relation(published())))
    assert isinstance(out.unit_status, ops.BlockedStatus)
    assert f"juju trust {APP}" in out.unit_status.message


def test_container_not_ready_waits(ctx, kube):
    out = ctx.run(
        ctx.on.config_changed(),
        state(coordinator_relation(published()), containers=[workload(can_connect=False)]),
    )
    assert out.unit_status == ops.WaitingStatus("waiting for the workload container")


def test_unchanged_config_on_disk_is_not_pushed_again(ctx, kube, tmp_path):
    (tmp_path / "config.yaml").write_text(CONFIG)
    mounted = workload(mounts={"cfg": testing.Mount(location="/etc/worker", source=tmp_path)})
    before = (tmp_path / "config.yaml").stat().st_mtime_ns
    ctx.run(
        ctx.on.config_changed(), state(coordinator_relation(published()), containers=[mounted])
    )
    assert (tmp_path / "config.yaml").stat().st_mtime_ns == before


def test_scaling_down_even_to_zero_leaves_the_pod_labels_alone(ctx, kube):
    # planned_units() == 0 also when the app is only scaled to zero: taking the labels off the
    # pod template would roll the units still shutting down out of the cluster and the mesh.
    out = ctx.run(ctx.on.config_changed(), state(coordinator_relation(published())))
    sts = kube.get("statefulsets", MODEL, APP)
    record = kube.get("configmaps", MODEL, f"{APP}-pod-labels")
    kube.clear_requests()

    for planned_units in (2, 0):  # a unit scaling down, then the last one
        ctx.run(ctx.on.remove(), dataclasses.replace(out, planned_units=planned_units))

    assert kube.requests == []
    assert kube.get("statefulsets", MODEL, APP) == sts
    assert kube.get("configmaps", MODEL, f"{APP}-pod-labels") == record


def test_labels_kubernetes_refuses_or_juju_owns_keep_the_last_good_labels(ctx, kube, tmp_path):
    relation = coordinator_relation(published(worker_labels={**LABELS, **MESH}))
    mounted = workload(mounts={"cfg": testing.Mount(location="/etc/worker", source=tmp_path)})
    out = ctx.run(ctx.on.config_changed(), state(relation, containers=[mounted]))
    good = pod_labels(kube)

    # "/x" has an empty prefix, which Kubernetes refuses (issue 17.5): the new config that
    # comes with it must not be applied either.
    for bad in ({"app.kubernetes.io/name": "evil"}, {"bad key!": "x"}, {"/x": "1"}):
        hostile = coordinator_relation(
            published(worker_labels={**LABELS, **bad}, worker_config="new: config\n"),
            id=relation.id,
        )
        after = ctx.run(
            ctx.on.relation_changed(hostile), state(hostile, containers=list(out.containers))
        )

        assert pod_labels(kube) == good
        assert (tmp_path / "config.yaml").read_text() == CONFIG
        assert isinstance(after.unit_status, ops.BlockedStatus)
        assert after.unit_status.message.startswith("cluster:")


def test_unchanged_labels_need_no_kubernetes_request_until_update_status(ctx, kube):
    out = ctx.run(ctx.on.config_changed(), state(coordinator_relation(published())))
    kube.clear_requests()
    out = ctx.run(ctx.on.config_changed(), out)
    assert kube.clear_requests() == []
    ctx.run(ctx.on.update_status(), out)
    assert [r["method"] for r in kube.clear_requests()] == ["GET"]


# The flags prometheus-example-app defines (rhobs/prometheus-example-app main.go): any other
# flag makes it exit at once ("flag provided but not defined"), so the workload never runs.
EXAMPLE_APP_FLAGS = {"bind", "h2c"}


def _workload_script(container: testing.Container) -> str:
    """The shell script the workload service runs (`/bin/sh -c <script>`)."""
    shell, option, script = shlex.split(container.plan.services["workload"].command)
    assert (shell, option) == ("/bin/sh", "-c")
    return script


def test_workload_listens_on_the_port_it_opens_and_checks(ctx, kube):
    out = ctx.run(ctx.on.config_changed(), state(coordinator_relation(published())))
    container = out.get_container("workload")
    exec_line = _workload_script(container).rpartition(";")[2]
    exec_, binary, *args = shlex.split(exec_line)
    flags = {name: value for name, _, value in (arg.lstrip("-").partition("=") for arg in args)}
    assert (exec_, binary) == ("exec", "/bin/prometheus-example-app")
    assert set(flags) <= EXAMPLE_APP_FLAGS
    assert flags["bind"] == ":8080"
    assert out.opened_ports == {testing.TCPPort(8080)}
    assert container.plan.checks["ready"].http == {"url": "http://localhost:8080/metrics"}


def test_workload_prints_a_start_up_line_before_it_runs_the_app(ctx, kube):
    # The app logs nothing itself: the start-up line is the worker's log that Loki receives.
    out = ctx.run(ctx.on.config_changed(), state(coordinator_relation(published())))
    script = _workload_script(out.get_container("workload"))
    # A real shell runs the script, with `echo` standing in for the app (not in this image).
    stand_in = script.replace("exec /bin/prometheus-example-app", "exec echo app:")
    result = subprocess.run(
        ["/bin/sh", "-c", stand_in], capture_output=True, text=True, check=True, timeout=10
    )
    banner, app = result.stdout.splitlines()
    assert banner.startswith("prometheus-example-app starting on :8080, roles ")
    assert app == "app: --bind=:8080"


def _gone(tmp_path) -> testing.Mount:
    """/etc/worker as a mount whose host directory is gone: Pebble refuses to write there."""
    return testing.Mount(location="/etc/worker", source=tmp_path / "gone")


def test_a_pebble_error_is_a_waiting_status_not_a_crash(ctx, kube, tmp_path):
    # Pebble answering with an error (here its file API: the config cannot be written) is not
    # "away": the worker waits and says why.
    gone = workload(mounts={"cfg": _gone(tmp_path)})

    out = ctx.run(
        ctx.on.config_changed(), state(coordinator_relation(published()), containers=[gone])
    )

    assert isinstance(out.unit_status, ops.WaitingStatus)
    assert out.unit_status.message.startswith("workload: Pebble failed (not-found - ")
    assert out.unit_status.message.endswith("); retrying on the next event")


def test_a_config_pushed_but_never_restarted_is_restarted_by_the_next_hook(ctx, kube, tmp_path):
    # Pebble fails between the push and the restart (the file landed, the charm saw an error):
    # the file already looks applied to the next hook, so only the worker's record of the
    # pending restart gets the workload to read it. A stopped service shows whether a hook
    # (re)started it: nothing else in these hooks starts one.
    config_dir = tmp_path / "etc-worker"
    config_dir.mkdir()
    relation = coordinator_relation(published())
    mounted = workload(mounts={"cfg": testing.Mount(location="/etc/worker", source=config_dir)})
    out = ctx.run(ctx.on.config_changed(), state(relation, containers=[mounted]))
    assert isinstance(out.unit_status, ops.ActiveStatus)
    changed = "coordinator: changed.test.svc.cluster.local\n"
    relation = coordinator_relation(published(worker_config=changed), relation_id=relation.id)

    def after(out: testing.State, mount: testing.Mount) -> testing.State:
        container = dataclasses.replace(
            out.get_container("workload"),
            mounts={"cfg": mount},
            service_statuses={"workload": ops.pebble.ServiceStatus.INACTIVE},
        )
        return dataclasses.replace(out, relations=[relation], containers=[container])

    out = ctx.run(ctx.on.relation_changed(relation), after(out, _gone(tmp_path)))
    assert isinstance(out.unit_status, ops.WaitingStatus), "Pebble failed on the push"
    (config_dir / "config.yaml").write_text(changed)  # the push had landed all the same

    out = ctx.run(ctx.on.update_status(), after(out, mounted.mounts["cfg"]))
    assert out.get_container("workload").service_statuses["workload"] == (
        ops.pebble.ServiceStatus.ACTIVE
    ), "restarted"
    out = ctx.run(ctx.on.update_status(), after(out, mounted.mounts["cfg"]))
    assert out.get_container("workload").service_statuses["workload"] == (
        ops.pebble.ServiceStatus.INACTIVE
    ), "once done, the restart is not repeated"


def test_a_lone_surrogate_from_the_coordinator_keeps_the_last_good_state(ctx, kube, tmp_path):
    """Issue 17.2: real ops cannot push such a config nor dump such a layer; refused on load."""
    from coordinated_workers.testing import layers_as_ops_sends_them

    loki = {"loki-0": "http://coordinator-k8s.test.svc.cluster.local:8080/proxy/loki/0/push"}
    relation = coordinator_relation(published(loki_endpoints=loki))
    mounted = workload(mounts={"cfg": testing.Mount(location="/etc/worker", source=tmp_path)})
    out = ctx.run(ctx.on.config_changed(), state(relation, containers=[mounted]))
    good_layers = layers_as_ops_sends_them(out.get_container("workload"))

    for key, value in (
        ("worker_config", '"new: \\ud800"'),
        ("loki_endpoints", '{"\\ud800": "http://l.test.svc:3100/push"}'),
        ("loki_endpoints", '{"loki-0": "http://l.test.svc:3100/\\ud800"}'),
    ):
        bag = {**published(loki_endpoints=loki).dump(), key: value}
        hostile = coordinator_relation(remote_app_data=bag, id=relation.id)
        after = ctx.run(
            ctx.on.relation_changed(hostile), state(hostile, containers=list(out.containers))
        )

        assert isinstance(after.unit_status, ops.BlockedStatus)
        assert "not valid Unicode" in after.unit_status.message
        assert layers_as_ops_sends_them(after.get_container("workload")) == good_layers
        assert (tmp_path / "config.yaml").read_text() == CONFIG


def test_labels_refused_before_trust_are_applied_by_the_next_hook(ctx, kube):
    """Issue 11.6 on the worker side: a failed label step is retried until it succeeds."""
    kube.fail(status=403, times=None)
    out = ctx.run(ctx.on.config_changed(), state(coordinator_relation(published())))
    out = ctx.run(ctx.on.config_changed(), out)
    assert isinstance(out.unit_status, ops.BlockedStatus), "the problem stays"

    kube.clear_faults()  # juju trust
    out = ctx.run(ctx.on.config_changed(), out)

    assert pod_labels(kube) == {"app.kubernetes.io/name": APP, **LABELS}
    assert not isinstance(out.unit_status, ops.BlockedStatus)


def test_the_label_record_dies_with_the_app_even_if_remove_fails(ctx, kube):
    """The record names the app's StatefulSet as owner, so Kubernetes garbage-collects it."""
    ctx.run(ctx.on.config_changed(), state(coordinator_relation(published())))

    record = kube.get("configmaps", MODEL, f"{APP}-pod-labels")
    sts = kube.get("statefulsets", MODEL, APP)
    assert record is not None and sts is not None
    assert record["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "name": APP,
            "uid": sts["metadata"]["uid"],
        }
    ]


def test_a_config_file_that_is_not_utf8_is_replaced_not_a_crash(ctx, kube, tmp_path):
    """Issue 17 "also look at": comparing used to decode it (UnicodeDecodeError)."""
    (tmp_path / "config.yaml").write_bytes(b"\xff\xfe not utf-8 \x80")
    mounted = workload(mounts={"cfg": testing.Mount(location="/etc/worker", source=tmp_path)})

    out = ctx.run(
        ctx.on.config_changed(), state(coordinator_relation(published()), containers=[mounted])
    )

    assert (tmp_path / "config.yaml").read_text() == CONFIG
    assert "workload" in out.get_container("workload").plan.services


def test_a_coordinator_asking_for_every_port_is_refused_not_65535_open_port_calls(ctx, kube):
    """Issue 17 "also look at": the worker keeps its ports and says why."""
    relation = coordinator_relation(published())
    out = ctx.run(ctx.on.config_changed(), state(relation))
    bag = {**published().dump(), "worker_ports": json.dumps(list(range(1, 65536)))}
    hostile = coordinator_relation(remote_app_data=bag, id=relation.id)

    before = state(hostile, containers=list(out.containers), opened_ports=out.opened_ports)
    after = ctx.run(ctx.on.relation_changed(hostile), before)

    assert isinstance(after.unit_status, ops.BlockedStatus)
    assert "a worker opens at most" in after.unit_status.message
    assert after.opened_ports == {testing.TCPPort(8080)}
