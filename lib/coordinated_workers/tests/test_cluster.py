# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Both ends of the cluster relation, driven through tiny charms in ops.testing."""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

import ops
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ops import testing

from coordinated_workers import (
    ClusterProvider,
    ClusterProviderAppData,
    ClusterRequirer,
    ClusterRolesConfig,
    JujuTopology,
    Problem,
    RemoteWriteEndpoint,
    WorkerApp,
    WorkerUnit,
)
from coordinated_workers._cluster import pod_host
from coordinated_workers.testing import (
    coordinator_relation,
    read_provider_data,
    read_worker_roles,
    read_worker_unit_data,
    worker_address,
    worker_relation,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

MODEL = testing.Model(name="test")
ROLES = ClusterRolesConfig(
    roles={"all", "read", "write"},
    meta_roles={"all": {"read", "write"}},
    minimal_deployment={"read", "write"},
)
CONFIG = ClusterProviderAppData(
    worker_config="server:\n  port: 8080\n",
    worker_labels={"app.kubernetes.io/part-of": "coordinator-k8s"},
    loki_endpoints={
        "loki/0": "http://coordinator-k8s.test.svc.cluster.local:8081/proxy/loki/loki-0/push"
    },
)


def _relation(state: testing.State, relation_id: int) -> testing.Relation:
    """The relation `relation_id` of `state`, as the bag readers take it."""
    relation = state.get_relation(relation_id)
    assert isinstance(relation, testing.Relation)
    return relation


def ports_for(roles: frozenset[str]) -> Sequence[int]:
    return [8080, 9000] if "write" in roles else [8080]


# --- the coordinator --------------------------------------------------------------------------


class Coordinator(ops.CharmBase):
    publish_with: tuple[ClusterProviderAppData, Callable[[frozenset[str]], Sequence[int]] | None]
    publish_with = (CONFIG, ports_for)

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.cluster = ClusterProvider(self, "cluster", roles_config=ROLES)
        self.published: bool | None = None
        framework.observe(self.on.update_status, self._reconcile)

    def _reconcile(self, _: ops.EventBase):
        data, ports = self.publish_with
        self.published = self.cluster.publish(data, worker_ports=ports)


COORDINATOR_META = {"name": "coordinator-k8s", "provides": {"cluster": {"interface": "cluster"}}}


def run_coordinator(
    *relations: testing.Relation, leader: bool = True, charm_type: type[Coordinator] = Coordinator
) -> tuple[Coordinator, testing.State]:
    ctx = testing.Context(charm_type, meta=COORDINATOR_META)
    state = testing.State(leader=leader, relations=relations, model=MODEL)
    with ctx(ctx.on.update_status(), state) as manager:
        out = manager.run()
        return manager.charm, out


def test_workers_are_read_with_expanded_roles_in_unit_order():
    charm, _ = run_coordinator(
        worker_relation("worker-write", ["write"], units=11),
        worker_relation("worker-all", ["all"], units=1),
    )
    workers = charm.cluster.workers()
    assert [w.name for w in workers] == ["worker-all", "worker-write"]
    assert workers[0] == WorkerApp(
        name="worker-all",
        roles=frozenset({"read", "write"}),
        units=(WorkerUnit("worker-all/0", worker_address("worker-all", 0), "worker-k8s"),),
    )
    assert [u.name for u in workers[1].units] == [f"worker-write/{n}" for n in range(11)]
    assert (
        workers[1].units[10].address
        == "worker-write-10.worker-write-endpoints.test.svc.cluster.local"
    )
    assert charm.cluster.problems == ()
    assert charm.cluster.deployed_roles() == {"read", "write"}
    assert ROLES.is_coherent_with(charm.cluster.deployed_roles())


def test_a_worker_leaving_is_gone_during_its_relation_broken_hook():
    staying = worker_relation("staying", ["all"])
    leaving = worker_relation("leaving", ["read"])
    ctx = testing.Context(Coordinator, meta=COORDINATOR_META)
    state = testing.State(leader=True, relations=[staying, leaving], model=MODEL)
    with ctx(ctx.on.relation_broken(leaving), state) as manager:
        manager.run()
        assert [w.name for w in manager.charm.cluster.workers()] == ["staying"]


def test_units_that_have_not_published_are_not_listed_and_are_no_problem():
    relation = worker_relation("worker", ["read"], units=2)
    relation = dataclasses.replace(
        relation,
        remote_units_data={**relation.remote_units_data, 2: {"ingress-address": "10.0.0.3"}},
    )
    charm, _ = run_coordinator(relation)
    (worker,) = charm.cluster.workers()
    assert [u.name for u in worker.units] == ["worker/0", "worker/1"]
    assert worker.problem is None


def test_app_without_units_or_roles_yet_deploys_nothing():
    charm, _ = run_coordinator(
        worker_relation("no-units", ["read"], units=0),
        worker_relation("no-role", ["write"], remote_app_data={}),
    )
    assert charm.cluster.deployed_roles() == frozenset()
    assert charm.cluster.problems == ()
    assert {w.name: w.roles for w in charm.cluster.workers()} == {
        "no-role": frozenset(),
        "no-units": frozenset({"read"}),
    }


@pytest.mark.parametrize(
    ("app_data", "reason"),
    [
        ({"role": "read"}, "application data ignored: role: not valid JSON"),
        ({"role": '["read"]'}, "application data ignored: role: Input should be a valid string"),
        ({"role": '"read,admin"'}, "application data ignored: unknown role(s): admin"),
        (
            {"role": json.dumps("read," * 400_000)},
            "application data ignored: role: value too large",
        ),
        ({"role": "[" * 50_000 + "]" * 50_000}, "application data ignored: role: not valid JSON"),
    ],
)
def test_a_malformed_worker_app_is_excluded_without_affecting_others(
    app_data: dict[str, str], reason: str
):
    charm, _ = run_coordinator(
        worker_relation("good", ["read"]),
        worker_relation("bad", ["write"], remote_app_data=app_data),
    )
    bad, good = charm.cluster.workers()
    assert bad.roles == frozenset()
    assert bad.problem is not None
    assert bad.problem.message.startswith(reason)
    assert good.problem is None
    assert good.roles == {"read"}
    assert charm.cluster.problems == (Problem.blocked(f"worker bad: {bad.problem.message}"),)
    assert charm.cluster.deployed_roles() == {"read"}


@pytest.mark.parametrize(
    ("unit_data", "reason"),
    [
        ({"address": "worker-1"}, "address: not valid JSON"),
        ({"address": '"x; include /etc/passwd"'}, "address: Value error, not a DNS name or IP"),
        ({"address": '"w-1"', "juju_topology": '"w/1"'}, "juju_topology: Input should be"),
        (
            {"address": '"w-1"', "juju_topology": '{"unit": "w/1"}'},
            "juju_topology.application: Field required",
        ),
    ],
)
def test_a_malformed_unit_is_left_out_and_its_app_keeps_serving(
    unit_data: dict[str, str], reason: str
):
    relation = worker_relation("w", ["read"], units=1)
    relation = dataclasses.replace(
        relation, remote_units_data={**relation.remote_units_data, 1: unit_data}
    )
    charm, _ = run_coordinator(relation)
    (worker,) = charm.cluster.workers()
    assert [u.name for u in worker.units] == ["w/0"]
    assert worker.roles == {"read"}
    assert worker.problem is not None
    assert worker.problem.message.startswith("w/1 ignored: ")
    assert reason in worker.problem.message
    assert charm.cluster.deployed_roles() == {"read"}


def test_publish_writes_config_and_per_role_ports_to_every_worker():
    reader = worker_relation("reader", ["read"])
    writer = worker_relation("writer", ["all"])
    charm, out = run_coordinator(reader, writer)
    assert charm.published is True
    read_bag = read_provider_data(_relation(out, reader.id))
    write_bag = read_provider_data(_relation(out, writer.id))
    assert read_bag == CONFIG.with_worker_ports([8080])
    assert write_bag == CONFIG.with_worker_ports([8080, 9000])


def test_publish_omits_ports_for_workers_without_usable_roles():
    pending = worker_relation("pending", ["read"], remote_app_data={})
    broken = worker_relation("broken", ["read"], remote_app_data={"role": '"nope"'})
    _, out = run_coordinator(pending, broken)
    for relation in (pending, broken):
        assert read_provider_data(_relation(out, relation.id)) == CONFIG


def test_publish_without_port_callback_sends_no_ports():
    class PortlessCoordinator(Coordinator):
        publish_with = (CONFIG, None)

    reader = worker_relation("reader", ["read"])
    _, out = run_coordinator(reader, charm_type=PortlessCoordinator)
    assert "worker_ports" not in out.get_relation(reader.id).local_app_data


def test_publish_gives_each_worker_app_its_own_labels():
    enrolled = {"app.kubernetes.io/part-of": "coordinator-k8s", "istio.io/dataplane-mode": "x"}

    class GatingCoordinator(Coordinator):
        def _reconcile(self, _: ops.EventBase):
            self.published = self.cluster.publish(
                CONFIG,
                worker_ports=ports_for,
                worker_labels=lambda app: enrolled if app == "reader" else {"b": "1", "a": "2"},
            )

    reader = worker_relation("reader", ["read"])
    writer = worker_relation("writer", ["read"])  # same roles: same cached encoding but labels
    _, out = run_coordinator(reader, writer, charm_type=GatingCoordinator)
    read_bag = read_provider_data(_relation(out, reader.id))
    assert read_bag.worker_labels == enrolled
    assert out.get_relation(writer.id).local_app_data["worker_labels"] == '{"a": "2", "b": "1"}'
    assert read_bag.worker_ports == (8080,)


def test_non_leader_publish_is_a_noop():
    reader = worker_relation("reader", ["read"])
    charm, out = run_coordinator(reader, leader=False)
    assert charm.published is False
    assert out.get_relation(reader.id).local_app_data == {}


def test_unchanged_publish_writes_nothing():
    reader = worker_relation("reader", ["read"])
    _, first = run_coordinator(reader)
    ctx = testing.Context(Coordinator, meta=COORDINATOR_META)
    with ctx(ctx.on.update_status(), first) as manager:
        second = manager.run()
        assert manager.charm.published is False
    assert (
        second.get_relation(reader.id).local_app_data
        == first.get_relation(reader.id).local_app_data
    )


def test_publish_replaces_changed_keys_and_removes_stale_ones():
    stale = {
        "worker_config": json.dumps("old config"),
        "ca_cert": json.dumps("old CA"),
        "worker_labels": CONFIG.dump()["worker_labels"],
        "legacy_key": "x",
    }
    reader = worker_relation("reader", ["read"], local_app_data=stale)
    charm, out = run_coordinator(reader)
    assert charm.published is True
    assert out.get_relation(reader.id).local_app_data == CONFIG.with_worker_ports([8080]).dump()


# --- the worker -------------------------------------------------------------------------------


class Worker(ops.CharmBase):
    roles: tuple[str, ...] = ("all",)

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.cluster = ClusterRequirer(self, "cluster")
        self.unit_published: bool | None = None
        self.roles_published: bool | None = None
        self.seen_config: list[str | None] = []
        framework.observe(self.on.update_status, self._reconcile)
        framework.observe(self.on.cluster_relation_changed, self._on_changed)

    def _on_changed(self, event: ops.RelationChangedEvent):
        # A workload that is not up yet: try again later. Upstream loses the config here.
        event.defer()

    def _reconcile(self, _: ops.EventBase):
        fqdn = worker_address(self.app.name, int(self.unit.name.split("/")[1]), self.model.name)
        self.unit_published = self.cluster.publish_unit(fqdn, JujuTopology.from_charm(self))
        self.roles_published = self.cluster.publish_roles(self.roles)
        self.seen_config.append(self.cluster.workload_config)


WORKER_META = {
    "name": "tempo",
    "requires": {"cluster": {"interface": "cluster", "limit": 1}},
}


def worker_context() -> testing.Context[Worker]:
    return testing.Context(Worker, meta=WORKER_META, app_name="worker", unit_id=0)


def run_worker(state: testing.State, event: Any = None) -> tuple[Worker, testing.State]:
    ctx = worker_context()
    with ctx(event or ctx.on.update_status(), state) as manager:
        out = manager.run()
        return manager.charm, out


def worker_state(*relations: testing.Relation, leader: bool = True) -> testing.State:
    return testing.State(leader=leader, relations=relations, model=testing.Model(name="m"))


def test_worker_bags_match_upstream_byte_for_byte():
    relation = coordinator_relation()
    charm, out = run_worker(worker_state(relation))
    assert charm.unit_published is True
    assert charm.roles_published is True
    published = _relation(out, relation.id)
    assert published.local_app_data == {"role": '"all"'}
    assert (
        published.local_unit_data["address"] == '"worker-0.worker-endpoints.m.svc.cluster.local"'
    )
    assert published.local_unit_data["juju_topology"] == (
        '{"application": "worker", "unit": "worker/0", "charm_name": "tempo"}'
    )
    # Juju's own keys in the unit bag are left alone.
    assert "ingress-address" in published.local_unit_data
    assert read_worker_roles(published) == {"all"}
    assert read_worker_unit_data(published).address == worker_address("worker", 0, "m")


def test_worker_republishing_the_same_facts_writes_nothing():
    _, first = run_worker(worker_state(coordinator_relation()))
    charm, second = run_worker(first)
    assert charm.unit_published is False
    assert charm.roles_published is False
    assert second.relations == first.relations


def test_non_leader_worker_publishes_its_unit_but_not_roles():
    relation = coordinator_relation()
    charm, out = run_worker(worker_state(relation, leader=False))
    assert charm.roles_published is False
    assert out.get_relation(relation.id).local_app_data == {}
    assert "address" in out.get_relation(relation.id).local_unit_data


def test_worker_without_relation_reads_nothing_and_publishes_nothing():
    charm, _ = run_worker(worker_state())
    assert charm.unit_published is False
    assert charm.roles_published is False
    assert charm.cluster.provider_data() is None
    assert charm.cluster.problems == ()
    assert charm.seen_config == [None]


def test_worker_reads_everything_the_coordinator_published():
    data = CONFIG.model_copy(
        update={
            "charm_tracing_receivers": {"otlp_http": "http://c:4318"},
            "workload_tracing_receivers": {"otlp_grpc": "c:4317"},
            "remote_write_endpoints": (RemoteWriteEndpoint(url="http://c/write"),),
        }
    ).with_worker_ports([8080])
    charm, _ = run_worker(worker_state(coordinator_relation(data)))
    cluster = charm.cluster
    assert cluster.provider_data() == data
    assert cluster.problems == ()
    assert cluster.workload_config == CONFIG.worker_config
    assert cluster.worker_labels == {"app.kubernetes.io/part-of": "coordinator-k8s"}
    assert cluster.worker_ports == (8080,)
    assert cluster.loki_endpoints == CONFIG.loki_endpoints
    assert cluster.charm_tracing_receivers == {"otlp_http": "http://c:4318"}
    assert cluster.workload_tracing_receivers == {"otlp_grpc": "c:4317"}
    assert cluster.remote_write_endpoints == (RemoteWriteEndpoint(url="http://c/write"),)


def test_worker_before_the_coordinator_published_has_empty_accessors():
    charm, _ = run_worker(worker_state(coordinator_relation()))
    cluster = charm.cluster
    assert cluster.provider_data() == ClusterProviderAppData()
    assert cluster.workload_config is None
    assert cluster.worker_labels == {}
    assert cluster.worker_ports == ()
    assert cluster.remote_write_endpoints == ()


def test_malformed_coordinator_data_reads_as_none_with_a_reason():
    relation = coordinator_relation(
        remote_app_data={"worker_config": "not: json", "worker_ports": "[80]"}
    )
    charm, _ = run_worker(worker_state(relation))
    assert charm.cluster.provider_data() is None
    assert charm.cluster.problems == (
        Problem.blocked(
            "cluster: coordinator data from coordinator-k8s ignored: worker_config: not valid JSON"
        ),
    )
    assert charm.cluster.worker_ports == ()
    assert charm.cluster.worker_labels == {}


def test_deferred_event_then_rerun_still_sees_the_config():
    relation = coordinator_relation(CONFIG)
    ctx = worker_context()
    state = worker_state(relation)
    deferred_out = ctx.run(ctx.on.relation_changed(relation, remote_unit=0), state)
    assert [e.name for e in deferred_out.deferred] == ["cluster_relation_changed"]
    # Next hook: ops re-emits the deferred event first, then update-status reconciles.
    charm, out = run_worker(deferred_out)
    assert charm.seen_config == [CONFIG.worker_config]
    assert [e.name for e in out.deferred] == ["cluster_relation_changed"]


def test_worker_reads_nothing_while_its_coordinator_relation_breaks():
    relation = coordinator_relation(CONFIG)
    ctx = worker_context()
    with ctx(ctx.on.relation_broken(relation), worker_state(relation)) as manager:
        manager.run()
        assert manager.charm.cluster.provider_data() is None
        assert manager.charm.cluster.problems == ()


def test_worker_uses_the_oldest_relation_if_limit_is_exceeded():
    old = coordinator_relation(CONFIG, "first", relation_id=3)
    new = coordinator_relation(
        ClusterProviderAppData(worker_config="other"), "second", relation_id=7
    )
    charm, _ = run_worker(worker_state(new, old))
    assert charm.cluster.workload_config == CONFIG.worker_config


# --- fuzzing: nothing a remote app writes makes either side raise --------------------------

_KNOWN_KEYS = [
    "role",
    "address",
    "juju_topology",
    *ClusterProviderAppData.model_fields,
]
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
_plausible = st.one_of(
    st.sampled_from(["read", "write", "all", "read,write", "admin", "", "w-0.w-endpoints"]).map(
        json.dumps
    ),
    st.lists(st.integers(-5, 70000), max_size=4).map(json.dumps),
    st.dictionaries(
        st.sampled_from(["application", "unit", "charm_name", "x"]), st.text(max_size=8)
    ).map(json.dumps),
    st.lists(st.fixed_dictionaries({"url": st.text(max_size=10)})).map(json.dumps),
)
_values = st.one_of(
    _plausible,
    _json.map(json.dumps),
    st.text(max_size=50),
    st.sampled_from(["[" * 3000, "NaN", "-Infinity", "1e999", '"\\ud800"', "{" * 20 + "}" * 20]),
)
_bags = st.dictionaries(
    st.sampled_from(_KNOWN_KEYS) | st.text(min_size=1, max_size=10), _values, max_size=6
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(app_bag=_bags, unit_bags=st.lists(_bags, max_size=3))
def test_fuzzed_worker_bags_never_break_the_coordinator(
    app_bag: dict[str, str], unit_bags: list[dict[str, str]]
):
    fuzzed = worker_relation(
        "fuzzed", ["read"], remote_app_data=app_bag, remote_units_data=dict(enumerate(unit_bags))
    )
    good = worker_relation("good", ["write"])
    charm, out = run_coordinator(fuzzed, good)
    workers = {w.name: w for w in charm.cluster.workers()}
    assert workers["good"].problem is None
    assert "write" in charm.cluster.deployed_roles()
    assert workers["fuzzed"].roles <= ROLES.concrete_roles
    if workers["fuzzed"].problem is not None:
        assert len(workers["fuzzed"].problem.message) < 4000
    read_provider_data(_relation(out, fuzzed.id))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bag=_bags)
def test_fuzzed_coordinator_bags_never_break_the_worker(bag: dict[str, str]):
    charm, _ = run_worker(worker_state(coordinator_relation(remote_app_data=bag)))
    cluster = charm.cluster
    data = cluster.provider_data()
    assert (data is None) is bool(cluster.problems)
    assert isinstance(cluster.worker_labels, dict)
    assert all(1 <= port <= 65535 for port in cluster.worker_ports)
    if data is not None:
        assert ClusterProviderAppData.load(data.dump()) == data


def test_a_units_pod_host_is_its_pod_under_the_apps_headless_service():
    assert (
        pod_host("worker-read/12", "cos")
        == "worker-read-12.worker-read-endpoints.cos.svc.cluster.local"
    )
