"""Property-based fuzzing of every databag either charm reads.

Two layers per endpoint, both counted in the printed figures:

- the pure parser the charm calls, many cases (only its documented error may come out);
- the whole charm through ops.testing, fewer cases (each is a hook): starting from a healthy
  meshed cluster, one endpoint's remote data is replaced by hostile data. No hook may raise, and
  when the data is unusable the last good state is kept: pod labels and policies in Kubernetes
  unchanged, and (worker) the workload still running.

``HYPOTHESIS_PROFILE=long`` (``tox -e fuzz``) multiplies the counts: 10,000 cases per parser
and 1,250 charm runs per endpoint.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any

import ops
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ops import testing
from reliability_charms import (
    COORDINATOR,
    WORKERS,
    cluster_to_coordinator,
    coordinator_context,
    coordinator_state,
    mesh_relation,
    pod_labels,
    policy_specs,
    relation_by_endpoint,
    replace_relation,
    with_relations,
    worker_context,
    worker_state,
    workers_relations,
)
from reliability_figures import FIGURES

from coordinated_workers._cluster_data import (
    ClusterDataError,
    ClusterProviderAppData,
    ClusterRequirerAppData,
    ClusterRequirerUnitData,
)
from coordinated_workers.telemetry._databag import DatabagError
from coordinated_workers.telemetry.loki_push_api import push_url
from coordinated_workers.telemetry.remote_write import remote_write_url
from coordinated_workers.telemetry.tracing import receivers_from_bag
from service_mesh import istio
from service_mesh._consumer import decode_provider_data
from service_mesh._fake_api import label_problems, name_problems
from service_mesh._policies import get_data_from_cmr_relation_with_problems
from service_mesh._provider import decode_policies
from tests.support import hostile_data as hostile
from tests.support import mesh_strategies

LONG = os.environ.get("HYPOTHESIS_PROFILE") == "long"
PARSER_CASES = 10_000 if LONG else 300
CHARM_CASES = 1_250 if LONG else 20

parser_settings = settings(max_examples=PARSER_CASES, deadline=None)
charm_settings = settings(
    max_examples=CHARM_CASES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# The coordinator parses nothing from its metrics-endpoint relation (it only writes there), so
# there is no parser to fuzz: the charm itself gets the 200 cases.
metrics_settings = settings(charm_settings, max_examples=max(CHARM_CASES, 200))

# ----- near-valid values per key, so the deeper branches of each reader run -----------------

_urls = hostile.url_like
_labels = st.dictionaries(st.text(max_size=20), st.text(max_size=20) | st.integers(), max_size=4)
_NEAR = {
    "role": st.text(max_size=20) | st.just("read,write") | st.just("all"),
    "address": st.text(max_size=30)
    | st.just("worker-0.worker-endpoints.rel.svc")
    | st.builds(lambda zone: f"fe80::1%{zone}", st.text(max_size=20)),
    "juju_topology": st.fixed_dictionaries(
        {"application": st.text(max_size=10), "unit": st.text(max_size=10)},
        optional={"charm_name": st.text(max_size=10) | st.integers()},
    ),
    "worker_config": st.text(max_size=50),
    "worker_labels": _labels,
    "worker_ports": st.lists(st.integers(-5, 70000), max_size=3),
    "loki_endpoints": st.dictionaries(st.text(max_size=8), _urls, max_size=2),
    "remote_write_endpoints": st.lists(st.fixed_dictionaries({"url": _urls}), max_size=2),
    "labels": _labels,
    "mesh_type": st.sampled_from(["istio", "linkerd", "", "ISTIO"]) | st.integers(),
    "cmr_data": st.fixed_dictionaries(
        {},
        optional={
            "app_name": st.text(max_size=12)
            | mesh_strategies.app_names
            | mesh_strategies.invalid_app_names,
            "juju_model_name": st.text(max_size=12)
            | mesh_strategies.model_names_with_double_hyphens
            | mesh_strategies.invalid_namespaces,
        },
    ),
    "policies": st.lists(mesh_strategies.near_valid_consumer_policies(), max_size=4),
    "endpoint": st.fixed_dictionaries({"url": _urls}),
    "remote_write": st.fixed_dictionaries({"url": _urls}),
    "receivers": st.lists(
        st.fixed_dictionaries(
            {
                "protocol": st.fixed_dictionaries(
                    {
                        "name": st.sampled_from(["otlp_http", "otlp_grpc", "bad name", ""]),
                        "type": st.sampled_from(["http", "grpc", "udp"]),
                    }
                ),
                "url": _urls,
            }
        ),
        max_size=3,
    ),
}


def bags(*keys: str) -> st.SearchStrategy[dict[str, str]]:
    """Databags in which each of ``keys`` is absent, garbage, any JSON or near valid."""
    value = {key: st.none() | hostile.databag_values(_NEAR.get(key, st.none())) for key in keys}
    return st.builds(
        lambda extra, chosen: {**extra, **{k: v for k, v in chosen.items() if v is not None}},
        st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=2),
        st.fixed_dictionaries(value),
    )


_PROVIDER_KEYS = tuple(ClusterProviderAppData.model_fields)

# ----- the pure parsers ---------------------------------------------------------------------


class _App:
    name = "remote"


class _Relation:
    """Just what the cmr_data reader touches: ``relation.app`` and ``relation.data``."""

    def __init__(self, bag: dict[str, str]) -> None:
        self.app = _App()
        self.data = {self.app: bag}


def _parse(endpoint: str, parse: Any, bag: dict[str, str], allowed: tuple[type, ...]) -> None:
    with FIGURES.case(endpoint) as tally:
        with contextlib.suppress(*allowed):
            parse(bag)
        tally.kept += 1  # a pure parser keeps nothing; it returned or raised what it documents


@parser_settings
@given(app=bags("role"), unit=bags("address", "juju_topology"))
def test_parser_cluster_as_the_coordinator_reads_it(app, unit):
    _parse("cluster (coordinator side)", ClusterRequirerAppData.load, app, (ClusterDataError,))
    _parse("cluster (coordinator side)", ClusterRequirerUnitData.load, unit, (ClusterDataError,))


@parser_settings
@given(bag=bags(*_PROVIDER_KEYS))
def test_parser_cluster_as_the_worker_reads_it(bag):
    _parse("cluster (worker side)", ClusterProviderAppData.load, bag, (ClusterDataError,))


@parser_settings
@given(bag=bags("labels", "mesh_type"))
def test_parser_service_mesh_provider_bag(bag):
    _parse("service-mesh", lambda b: decode_provider_data(b, "beacon"), bag, ())


@parser_settings
@given(bag=bags("cmr_data"))
def test_parser_cmr_data(bag):
    _parse("cmr_data", lambda b: get_data_from_cmr_relation_with_problems([_Relation(b)]), bag, ())


@parser_settings
@given(bag=bags("cmr_data"))
def test_parser_cmr_data_accepts_only_names_juju_and_kubernetes_accept(bag):
    cmr_data, problems = get_data_from_cmr_relation_with_problems([_Relation(bag)])
    for identity in cmr_data.values():
        principal = f"cluster.local/ns/{identity.juju_model_name}/sa/{identity.app_name}"
        assert not name_problems(identity.juju_model_name), principal
        assert not name_problems(identity.app_name), principal
    assert len(problems) <= 1


def _applicable(policy) -> None:
    """What the API server would check of the manifest: its name and its selector labels."""
    [manifest] = istio.authorization_policies("istio-beacon-k8s", "cos", [policy])
    assert not name_problems(manifest["metadata"]["name"])
    assert not name_problems(manifest["metadata"]["namespace"])
    selector = manifest["spec"].get("selector", {}).get("matchLabels")
    if policy.target_selector_labels is None:
        assert not label_problems(selector)


@parser_settings
@given(bag=bags("policies"))
def test_parser_consumer_policies(bag):
    # The provider's read of a consumer bag: every policy it keeps is one the API server
    # accepts (names, namespace), so a bad one is skipped and reported here, at decode time,
    # rather than failing every reconcile (issue 11, defect 5).
    with FIGURES.case("service-mesh (consumer bag)") as tally:
        raw = bag.get("policies")
        if raw is not None:
            policies, problems = decode_policies(raw, "consumer")
            for policy in policies:
                _applicable(policy)
            assert all(isinstance(problem, str) for problem in problems)
        tally.kept += 1


@parser_settings
@given(bag=bags("endpoint"))
def test_parser_logging(bag):
    _parse("logging", push_url, bag, (DatabagError,))


@parser_settings
@given(bag=bags("remote_write"))
def test_parser_remote_write(bag):
    _parse("send-remote-write", remote_write_url, bag, (DatabagError,))


@parser_settings
@given(bag=bags("receivers"))
def test_parser_tracing(bag):
    _parse("tracing", receivers_from_bag, bag, (DatabagError,))


# ----- the charms ---------------------------------------------------------------------------


def _kept(kube, good: tuple[dict, dict]) -> bool:
    return (pod_labels(kube, COORDINATOR), policy_specs(kube)) == good


_HEALTHY: dict[int, tuple[testing.State, tuple[dict, dict]]] = {}


def _healthy_coordinator(kube) -> tuple[testing.State, tuple[dict, dict]]:
    """A healthy meshed cluster, made once per test (per fake): hostile hooks keep it as is."""
    if id(kube) not in _HEALTHY:
        _HEALTHY.clear()
        ctx = coordinator_context()
        start = coordinator_state(*workers_relations(), mesh_relation())
        healthy = ctx.run(ctx.on.config_changed(), start)
        _HEALTHY[id(kube)] = (healthy, (pod_labels(kube, COORDINATOR), policy_specs(kube)))
    return _HEALTHY[id(kube)]


def _coordinator_case(kube, endpoint: str, build) -> None:
    """Healthy meshed cluster, then one hook with ``build(state)`` -> (event, state)."""
    ctx = coordinator_context()
    healthy, good = _healthy_coordinator(kube)
    event, state = build(ctx, healthy)
    with FIGURES.case(endpoint) as tally:
        out = ctx.run(event, state)
        assert not isinstance(out.unit_status, ops.ErrorStatus)
        assert _kept(kube, good), "hostile data changed labels or policies"
        tally.kept += 1


def _swap_remote(endpoint: str, app_bag=None, unit_bag=None, remote_app="remote"):
    def build(ctx, healthy):
        fields: dict[str, Any] = {"remote_app_name": remote_app}
        if app_bag is not None:
            fields["remote_app_data"] = app_bag
        if unit_bag is not None:
            fields["remote_units_data"] = {0: unit_bag}
        relation = testing.Relation(endpoint, **fields)
        return ctx.on.relation_changed(relation), with_relations(healthy, relation)

    return build


@charm_settings
@given(app=bags("role"), unit=bags("address", "juju_topology"))
def test_charm_coordinator_cluster(kube, app, unit):
    def build(ctx, healthy):
        old = next(r for r in healthy.relations if r.remote_app_name == WORKERS[0])
        hostile_worker = testing.Relation(
            "cluster",
            id=old.id,
            remote_app_name=WORKERS[0],
            remote_app_data=app,
            remote_units_data={0: unit},
            local_app_data=old.local_app_data,
        )
        state = replace_relation(healthy, old, hostile_worker)
        return ctx.on.relation_changed(hostile_worker), state

    _coordinator_case(kube, "cluster (coordinator side)", build)


@charm_settings
@given(bag=bags("labels", "mesh_type"))
def test_charm_coordinator_service_mesh(kube, bag):
    _, problem = decode_provider_data(bag, "beacon")
    if problem is None:
        # Usable (or empty) data is acted upon, as it should be; only count that it ran, then
        # restore the healthy cluster for the next example.
        ctx = coordinator_context()
        healthy, _ = _healthy_coordinator(kube)
        old = relation_by_endpoint(healthy, "service-mesh")
        new = mesh_relation(id=old.id, remote_app_data=bag, local_app_data=old.local_app_data)
        with FIGURES.case("service-mesh"):
            ctx.run(ctx.on.relation_changed(new), replace_relation(healthy, old, new))
        # update-status always checks the cluster: `healthy` remembers applying the healthy
        # state, which the run above (whose output is dropped) has just changed behind its back.
        ctx.run(ctx.on.update_status(), healthy)
        return

    def build(ctx, healthy):
        old = relation_by_endpoint(healthy, "service-mesh")
        new = mesh_relation(id=old.id, remote_app_data=bag, local_app_data=old.local_app_data)
        return ctx.on.relation_changed(new), replace_relation(healthy, old, new)

    _coordinator_case(kube, "service-mesh", build)


@charm_settings
@given(bag=bags("cmr_data"))
def test_charm_coordinator_cmr_data(kube, bag):
    _coordinator_case(kube, "cmr_data", _swap_remote("provide-cmr-mesh", app_bag=bag))


@metrics_settings
@given(app=bags("scrape_jobs", "alert_rules"), unit=bags("prometheus_scrape_unit_address"))
def test_charm_coordinator_metrics(kube, app, unit):
    _coordinator_case(
        kube, "metrics-endpoint", _swap_remote("metrics-endpoint", app_bag=app, unit_bag=unit)
    )


@charm_settings
@given(unit=bags("endpoint"))
def test_charm_coordinator_logging(kube, unit):
    _coordinator_case(kube, "logging", _swap_remote("logging", unit_bag=unit))


@charm_settings
@given(unit=bags("remote_write"))
def test_charm_coordinator_remote_write(kube, unit):
    _coordinator_case(kube, "send-remote-write", _swap_remote("send-remote-write", unit_bag=unit))


@charm_settings
@given(app=bags("receivers"), endpoint=st.sampled_from(["charm-tracing", "workload-tracing"]))
def test_charm_coordinator_tracing(kube, app, endpoint):
    _coordinator_case(kube, "tracing", _swap_remote(endpoint, app_bag=app))


@charm_settings
@given(bag=bags(*_PROVIDER_KEYS))
def test_charm_worker_cluster(kube, bag):
    ctx = worker_context()
    if id(kube) not in _HEALTHY:
        _HEALTHY.clear()
        start = worker_state(cluster_to_coordinator(relation_id=5))
        _HEALTHY[id(kube)] = (ctx.run(ctx.on.config_changed(), start), ({}, {}))
    healthy = _HEALTHY[id(kube)][0]
    good = pod_labels(kube, WORKERS[0])
    try:
        ClusterProviderAppData.load(bag)
        usable = True
    except ClusterDataError:
        usable = False
    old = relation_by_endpoint(healthy, "cluster")
    hostile_coordinator = cluster_to_coordinator(
        relation_id=5, remote_app_data=bag, local_app_data=old.local_app_data
    )
    state = replace_relation(healthy, old, hostile_coordinator)
    with FIGURES.case("cluster (worker side)") as tally:
        out = ctx.run(ctx.on.relation_changed(hostile_coordinator), state)
        if not usable:
            assert pod_labels(kube, WORKERS[0]) == good
            services = out.get_container("workload").service_statuses
            assert services.get("workload") == ops.pebble.ServiceStatus.ACTIVE
            tally.kept += 1
    if usable:  # restore the healthy labels for the next example (update-status checks them)
        ctx.run(ctx.on.update_status(), healthy)


@charm_settings
@given(model=mesh_strategies.model_names_with_double_hyphens | mesh_strategies.dns_labels)
def test_charm_coordinator_in_any_model_juju_accepts_publishes_its_identity(kube, model):
    # Issue 11, defect 7: a model named like `obs--prod` crashed leader-elected in every
    # consumer charm, with or without a cross-model relation.
    ctx = coordinator_context()
    require = testing.Relation("require-cmr-mesh", remote_app_name="remote-consumer")
    state = coordinator_state(*workers_relations(), mesh_relation(), require)
    state = testing.State(
        **{**{f: getattr(state, f) for f in ("relations", "containers", "leader")}},
        model=testing.Model(name=model),
    )
    with FIGURES.case("cmr_data (own model name)") as tally:
        out = ctx.run(ctx.on.leader_elected(), state)
        assert not isinstance(out.unit_status, ops.ErrorStatus)
        published = out.get_relation(require.id).local_app_data["cmr_data"]
        assert json.loads(published) == {"app_name": COORDINATOR, "juju_model_name": model}
        tally.kept += 1
