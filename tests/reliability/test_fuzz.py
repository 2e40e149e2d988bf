# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Property-based fuzzing of every databag either charm reads.

Two layers per endpoint, both counted in the printed figures:

- the pure parser the charm calls, many cases (only its documented error may come out);
- the whole charm through ops.testing, fewer cases (each is a hook): starting from a healthy
  meshed cluster, one endpoint's remote data is replaced by hostile data. No hook may raise, and
  when the data is unusable the last good state is kept: pod labels and policies in Kubernetes
  unchanged, and (worker) the workload still running.

Issue 11's kinds are generated on purpose: IPv6 zone ids in every telemetry URL, remote-write
URL sets whose labels collide, lone surrogates and control characters in remote text, and
keys of hundreds of kilobytes. Every charm hook must leave a status and log records that
``status-set`` and ``juju-log`` can take (escaped, at most ``STATUS_LIMIT`` long), and the
first distinct nginx.conf files rendered per endpoint are checked with the host's real
``nginx -t`` (every one must be accepted; the counts are printed after the figures).

``HYPOTHESIS_PROFILE=long`` (``tox -e fuzz``) multiplies the counts: 10,000 cases per parser
and 1,250 charm runs per endpoint.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pathlib
import tempfile
from typing import Any, cast

import ops
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ops import testing
from reliability_charms import (
    COORDINATOR,
    MODEL,
    REPO_ROOT,
    WORKERS,
    cluster_to_coordinator,
    coordinator_charm,
    coordinator_context,
    coordinator_state,
    mesh_relation,
    pod_labels,
    policy_specs,
    provider_data,
    relation_by_endpoint,
    replace_relation,
    with_fields,
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
from coordinated_workers._datasource_exchange import DatasourceExchangeError, parse_datasources
from coordinated_workers._nginx import NginxInputs, render
from coordinated_workers._s3 import S3DataError, from_provider_bag, from_secret_content
from coordinated_workers._telemetry_proxy import TelemetryTargets, plan_proxy
from coordinated_workers.telemetry._databag import DatabagError
from coordinated_workers.telemetry.loki_push_api import push_url
from coordinated_workers.telemetry.remote_write import remote_write_url
from coordinated_workers.telemetry.tracing import receivers_from_bag
from service_mesh import STATUS_LIMIT, istio
from service_mesh._consumer import decode_provider_data
from service_mesh._fake_api import label_problems, name_problems
from service_mesh._policies import get_data_from_cmr_relation_with_problems
from service_mesh._provider import decode_policies
from tests.support import hostile_data as hostile
from tests.support import mesh_strategies
from tests.support.live_nginx import find_nginx, nginx_t, write_config
from tests.support.pki import CA

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

# ----- issue 11's kinds: each defect, generated ------------------------------------------------

# Remote text a hook tool cannot take: lone surrogates (pure ASCII on the wire as "\ud800"),
# control characters, and sizes far beyond any status.
_unprintable = st.characters(categories=["Cs", "Cc", "Zl", "Zp"])
_remote_text = st.one_of(
    st.text(max_size=20),
    st.text(st.one_of(st.characters(), _unprintable), min_size=1, max_size=20),
    st.integers(100_000, 250_000).map(lambda n: "k" * n),
)
# URLs whose host is an IPv6 literal with a zone id, which Python's ipaddress accepts whatever
# its text (``%25$evil``), in every place a telemetry URL can be published.
_zone_ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789$%{}._~-", min_size=1)
_zone_id_urls = st.builds(
    lambda zone, path: f"http://[fe80::1%25{zone}]:3100{path}",
    _zone_ids,
    st.sampled_from(["/loki/api/v1/push", "/api/v1/write", "", "/"]),
)
_urls = hostile.url_like | _zone_id_urls
_labels = st.dictionaries(_remote_text, st.text(max_size=20) | st.integers(), max_size=4)


def _hash8(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:8]


# Remote-write URL sets whose first DNS labels collide, including a host named like another
# URL's hash-suffixed label (``prom-<first 8 hex of sha256 of that URL>``).
_remote_write_sets = st.lists(
    st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=4, unique=True
).flatmap(
    lambda zones: st.builds(
        lambda first, named_like: [
            first,
            *(f"http://prom.{zone}.svc:9090/api/v1/write" for zone in zones),
            *([f"http://prom-{_hash8(first)}.x.svc:9090/api/v1/write"] if named_like else []),
        ],
        st.just("http://prom.first.svc:9090/api/v1/write"),
        st.booleans(),
    )
)

# Real TLS data, so near-valid bags reach the worker's certificate and key checks.
_TLS = CA("fuzz-ca").issue(f"{WORKERS[0]}-0.{WORKERS[0]}-endpoints.{MODEL}.svc.cluster.local")
_TLS_NEAR = {
    "ca_cert": hostile.pem_variants(_TLS.ca),
    "server_cert": hostile.pem_variants(_TLS.cert),
    "privkey_secret_id": hostile.secret_id_like,
}

_NEAR = {
    **_TLS_NEAR,
    "role": st.text(max_size=20)
    | st.just("read,write")
    | st.just("all")
    | _remote_text.map(lambda text: "read," + text),
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
    "charm_tracing_receivers": st.dictionaries(
        st.sampled_from(["otlp_http", "zipkin"]), _urls | _remote_text, max_size=2
    ),
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
    "datasources": hostile.datasource_entries,
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


def _relations(bag: dict[str, str]) -> list[ops.Relation]:
    """One stand-in relation holding `bag`, typed as what the reader takes."""
    return cast("list[ops.Relation]", [_Relation(bag)])


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
    _parse("cmr_data", lambda b: get_data_from_cmr_relation_with_problems(_relations(b)), bag, ())


@parser_settings
@given(bag=bags("cmr_data"))
def test_parser_cmr_data_accepts_only_names_juju_and_kubernetes_accept(bag):
    cmr_data, problems = get_data_from_cmr_relation_with_problems(_relations(bag))
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
            policies, problem = decode_policies(raw, "consumer")
            for policy in policies:
                _applicable(policy)
            assert problem is None or isinstance(problem, str)
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


# ----- nginx.conf: the renderer on fuzzed telemetry, and the real nginx -t on a sample --------

NGINX_T_SAMPLE = 400 if LONG else 30
"""Distinct rendered configs per endpoint that the real ``nginx -t`` checks."""


class _NginxT:
    """Runs the host's nginx -t on the first distinct configs of each endpoint; counts in FIGURES.

    The sample is per process: under pytest-xdist each worker checks its own first configs.
    """

    def __init__(self) -> None:
        self.binary = find_nginx()
        self.seen: dict[str, set[str]] = {}

    def check(self, endpoint: str, config: str) -> None:
        seen = self.seen.setdefault(endpoint, set())
        counts = FIGURES.nginx_t_for(endpoint)
        digest = hashlib.sha256(config.encode()).hexdigest()
        if digest in seen or len(seen) >= NGINX_T_SAMPLE:
            return
        if self.binary is None:
            if os.environ.get("REQUIRE_NGINX") == "1":
                pytest.fail(
                    "nginx is not installed, so configs cannot be checked (REQUIRE_NGINX=1)"
                )
            FIGURES.nginx_missing = True
            return
        seen.add(digest)
        counts.checked += 1
        with tempfile.TemporaryDirectory() as prefix:
            result = nginx_t(self.binary, write_config(pathlib.Path(prefix), config))
        assert result.returncode == 0, f"nginx -t refused a rendered config: {result.stderr}"
        counts.accepted += 1


NGINX_T = _NginxT()


@parser_settings
@given(
    loki=st.dictionaries(st.sampled_from(["loki/0", "loki/1", "Loki/2"]), _urls, max_size=3),
    remote_write=st.lists(_urls, max_size=3) | _remote_write_sets,
    tracing=st.dictionaries(st.sampled_from(["otlp_http", "zipkin", "otlp_grpc"]), _urls),
)
def test_parser_nginx_renderer(loki, remote_write, tracing):
    """Fuzzed telemetry through plan_proxy and the renderer: the grammar alone keeps nginx safe."""
    endpoint = "nginx.conf (renderer)"
    with FIGURES.case(endpoint) as tally:
        targets = TelemetryTargets(
            loki_push_urls=loki,
            remote_write_urls=remote_write,
            charm_tracing=tracing,
            workload_tracing=tracing,
        )
        plan = plan_proxy(targets, f"{COORDINATOR}.rel.svc.cluster.local", 8081)
        rendered = render(
            NginxInputs(
                model="rel",
                api_port=8080,
                routes=coordinator_charm.ROUTES,
                workers_by_role={"read": [WORKERS[0]], "write": [WORKERS[1]]},
                resolver="10.152.183.10",
                proxy_port=8081,
                proxy=plan,
                worker_apps=list(WORKERS),
            )
        )
        # The final check found nothing to refuse: plan_proxy's grammar had kept it all out.
        assert rendered.refused == ()
        tally.kept += 1
    NGINX_T.check(endpoint, rendered.text)


# ----- the charms ---------------------------------------------------------------------------


def _assert_hook_tools_can_take_it(ctx: testing.Context, out: testing.State) -> None:
    """``juju-log`` and ``status-set`` take argv: encodable text, and a status of bounded size."""
    for record in ctx.juju_log:
        record.message.encode("utf-8")
    message = out.unit_status.message
    assert message.isprintable(), message
    assert len(message) <= STATUS_LIMIT


def _checked_config(ctx: testing.Context, out: testing.State, endpoint: str) -> None:
    config = out.get_container("nginx").get_filesystem(ctx) / "etc/nginx/nginx.conf"
    if config.exists():
        NGINX_T.check(endpoint, config.read_text())


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
        _assert_hook_tools_can_take_it(ctx, out)
        assert _kept(kube, good), "hostile data changed labels or policies"
        tally.kept += 1
    _checked_config(ctx, out, endpoint)


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
            out = ctx.run(ctx.on.relation_changed(new), replace_relation(healthy, old, new))
            _assert_hook_tools_can_take_it(ctx, out)
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
@given(urls=_remote_write_sets)
def test_charm_coordinator_remote_write_label_collisions(kube, urls):
    def build(ctx, healthy):
        relation = testing.Relation(
            "send-remote-write",
            remote_app_name="prometheus",
            remote_units_data={
                n: {"remote_write": json.dumps({"url": url})} for n, url in enumerate(urls)
            },
        )
        event = ctx.on.relation_changed(relation, remote_unit=0)
        return event, with_relations(healthy, relation)

    _coordinator_case(kube, "send-remote-write", build)


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
        _assert_hook_tools_can_take_it(ctx, out)
        if not usable:
            assert pod_labels(kube, WORKERS[0]) == good
            services = out.get_container("workload").service_statuses
            assert services.get("workload") == ops.pebble.ServiceStatus.ACTIVE
            tally.kept += 1
    if usable:  # restore the healthy labels for the next example (update-status checks them)
        ctx.run(ctx.on.update_status(), healthy)


# ----- round 3 (issue 17): the worker's cluster bag, the provider's consumer bags, the label --
# ----- record. Each gets its own endpoint line in the figures. --------------------------------

_ROUND3_NEAR = {
    "worker_config": hostile.surrogate_text,
    "worker_labels": st.dictionaries(
        hostile.record_label_keys, st.text(max_size=10) | hostile.surrogate_text, max_size=3
    ),
    "worker_ports": hostile.many_ports | st.lists(st.integers(-5, 70000), max_size=3),
    "loki_endpoints": st.dictionaries(
        st.sampled_from(["loki/0", "loki 0", ""]) | hostile.surrogate_text,
        hostile.injecting_urls | _urls | hostile.surrogate_text,
        max_size=2,
    ),
    "charm_tracing_receivers": st.dictionaries(
        st.sampled_from(["otlp_http", "otlp_grpc"]) | hostile.surrogate_text,
        hostile.injecting_urls | _urls,
        max_size=2,
    ),
    "workload_tracing_receivers": st.dictionaries(
        st.sampled_from(["otlp_http", "otlp_grpc"]) | hostile.surrogate_text,
        hostile.injecting_urls | _urls,
        max_size=2,
    ),
    "remote_write_endpoints": st.lists(
        st.fixed_dictionaries({"url": hostile.injecting_urls | _urls}), max_size=2
    ),
    "ca_cert": hostile.surrogate_text | hostile.pem_variants(_TLS.ca),
    "server_cert": hostile.surrogate_text | hostile.pem_variants(_TLS.cert),
    "privkey_secret_id": hostile.secret_id_like,
}


def _round3_cluster_bags() -> st.SearchStrategy[dict[str, str]]:
    """Coordinator bags whose values hold surrogates, injecting URLs, bad labels, many ports."""
    values = {key: st.none() | hostile.databag_values(near) for key, near in _ROUND3_NEAR.items()}
    return st.fixed_dictionaries(values).map(
        lambda chosen: {k: v for k, v in chosen.items() if v is not None}
    )


def _usable_by_a_worker(data: ClusterProviderAppData) -> None:
    """What a worker may rely on in a bag it accepted (issue 17.2, 17.5, also-look-at)."""
    import json

    from coordinated_workers._cluster_data import MAX_WORKER_PORTS
    from service_mesh import label_problem

    json.dumps(data.model_dump(mode="json"), ensure_ascii=False).encode()  # no surrogate
    assert len(data.worker_ports or ()) <= MAX_WORKER_PORTS
    for key, value in (data.worker_labels or {}).items():
        assert label_problem(key, value) is None
    urls = [
        *(data.loki_endpoints or {}).values(),
        *(data.charm_tracing_receivers or {}).values(),
        *(data.workload_tracing_receivers or {}).values(),
        *(endpoint.url for endpoint in data.remote_write_endpoints or ()),
    ]
    for url in urls:
        assert not set(url) & set(" \t\n\"';$`%?#@"), url
        assert not url.startswith("-"), url


@parser_settings
@given(bag=_round3_cluster_bags())
def test_parser_worker_cluster_bag_hostile_text(bag):
    # What ClusterRequirer does with the bag: load it, then check the labels it would set.
    from coordinated_workers._cluster import _check_worker_labels

    with FIGURES.case("cluster (worker side)") as tally:
        try:
            data = ClusterProviderAppData.load(bag)
            _check_worker_labels(data.worker_labels or {})
        except ClusterDataError as e:
            str(e).encode()  # the reason goes into a status: it must encode
        else:
            _usable_by_a_worker(data)
        tally.kept += 1


@charm_settings
@given(bag=_round3_cluster_bags())
def test_charm_worker_cluster_hostile_text(kube, bag):
    """No hook raises, refused data keeps the last good state, layers serialise as ops does."""
    from coordinated_workers.testing import layers_as_ops_sends_them

    ctx = worker_context()
    start = worker_state(cluster_to_coordinator(relation_id=5))
    healthy = ctx.run(ctx.on.config_changed(), start)
    good_labels = pod_labels(kube, WORKERS[0])
    good_layers = layers_as_ops_sends_them(healthy.get_container("workload"))
    try:
        ClusterProviderAppData.load(bag)
        usable = True
    except ClusterDataError:
        usable = False
    old = relation_by_endpoint(healthy, "cluster")
    hostile_coordinator = cluster_to_coordinator(
        relation_id=5, remote_app_data=bag, local_app_data=old.local_app_data
    )
    with FIGURES.case("cluster (worker side)") as tally:
        out = ctx.run(
            ctx.on.relation_changed(hostile_coordinator),
            replace_relation(healthy, old, hostile_coordinator),
        )
        layers = layers_as_ops_sends_them(out.get_container("workload"))
        out.unit_status.message.encode()
        if not usable:
            assert pod_labels(kube, WORKERS[0]) == good_labels
            assert layers == good_layers
            tally.kept += 1


# ----- issue 14: the worker's TLS keys and the key's secret -------------------------------

_SECRET_ID = "secret:d5g1k2qr0000c0ord1na"
_TLS_FILES = {
    "etc": ("ca.cert", "server.cert", "private.key"),
    "trust": ("ca.crt",),
}


def _tls_worker_state(root: pathlib.Path, bag: dict[str, str], key: dict[str, str]):
    """A worker whose TLS files live under ``root``, the key's secret holding ``key``."""
    mounts = {
        name: testing.Mount(location=location, source=root / name)
        for name, location in (
            ("etc", "/etc/worker"),
            ("trust", "/usr/local/share/ca-certificates"),
        )
    }
    for mount in mounts.values():
        pathlib.Path(mount.source).mkdir(exist_ok=True)
    workload = testing.Container(
        "workload",
        can_connect=True,
        mounts=mounts,
        execs={testing.Exec(["update-ca-certificates", "--fresh"])},
    )
    relation = cluster_to_coordinator(relation_id=5, remote_app_data=bag)
    secret = testing.Secret(tracked_content=key, id=_SECRET_ID, owner=None)
    return worker_state(relation, containers=[workload], secrets=[secret])


def _tls_files_in(root: pathlib.Path) -> dict[str, str | None]:
    files = {}
    for folder, names in _TLS_FILES.items():
        for name in names:
            path = root / folder / name
            files[name] = path.read_text() if path.exists() else None
    return files


def _key_belongs_to_cert(root: pathlib.Path) -> bool:
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(root / "etc" / "server.cert", root / "etc" / "private.key")
    except ssl.SSLError:
        return False
    return True


@charm_settings
@given(
    tls=bags(*_TLS_NEAR),
    key=hostile.key_secret_contents(_TLS.key)
    | hostile.key_secret_contents(CA("k").issue("x").key),
)
def test_charm_worker_tls(kube, tls, key):
    """TLS files are the last good set or exactly the new one, the key always the cert's."""
    ctx = worker_context()
    good_bag = provider_data(
        ca_cert=_TLS.ca, server_cert=_TLS.cert, privkey_secret_id=_SECRET_ID
    ).dump()
    good = {
        "ca.cert": _TLS.ca,
        "server.cert": _TLS.cert,
        "private.key": _TLS.key,
        "ca.crt": _TLS.ca,
    }
    with tempfile.TemporaryDirectory() as directory:
        root = pathlib.Path(directory)
        start = _tls_worker_state(root, good_bag, {"private-key": _TLS.key})
        healthy = ctx.run(ctx.on.config_changed(), start)
        assert isinstance(healthy.unit_status, testing.ActiveStatus), healthy.unit_status
        assert _tls_files_in(root) == good
        bag = {**{k: v for k, v in good_bag.items() if k not in _TLS_NEAR}, **tls}
        relation = cluster_to_coordinator(relation_id=5, remote_app_data=bag)
        secret = testing.Secret(tracked_content=key, id=_SECRET_ID, owner=None)
        state = with_fields(healthy, relations=[relation], secrets=[secret])
        with FIGURES.case("cluster TLS (worker side)") as tally:
            out = ctx.run(ctx.on.relation_changed(relation), state)
            _assert_hook_tools_can_take_it(ctx, out)
            files = _tls_files_in(root)
            if files != good:
                assert isinstance(out.unit_status, testing.ActiveStatus), out.unit_status
                data = ClusterProviderAppData.load(bag)
                if data.ca_cert is None:
                    assert set(files.values()) == {None}, "TLS removed: every file goes"
                else:
                    assert files == {
                        "ca.cert": data.ca_cert,
                        "server.cert": data.server_cert,
                        "private.key": key["private-key"],
                        "ca.crt": data.ca_cert,
                    }
            else:
                tally.kept += 1
                services = out.get_container("workload").service_statuses
                assert services.get("workload") == ops.pebble.ServiceStatus.ACTIVE
            if files["private.key"] is not None:
                assert _key_belongs_to_cert(root)


_CONSUMER = "tempo"
_BEACON_META = {
    "name": "istio-beacon-k8s",
    "provides": {"service-mesh": {"interface": "service_mesh"}},
}


class _Beacon(ops.CharmBase):
    """A beacon built on our provider: every policy it is asked for becomes a real object."""

    def __init__(self, framework: ops.Framework):
        from service_mesh import MeshType, ServiceMeshProvider

        super().__init__(framework)
        self.mesh = ServiceMeshProvider(self, labels={}, mesh_type=MeshType.istio)
        framework.observe(self.on["service-mesh"].relation_changed, self._reconcile)

    def _reconcile(self, _event: ops.EventBase) -> None:
        from service_mesh import MeshType, PolicyResourceManager, kubernetes_client

        labels = {"app.kubernetes.io/instance": "beacon", "kubernetes-resource-handler-scope": "x"}
        with kubernetes_client(self.model.name, "beacon") as client:
            PolicyResourceManager(self, client, labels).reconcile(
                self.mesh.mesh_info(), MeshType.istio
            )


def _consumer_policies_bags() -> st.SearchStrategy[str]:
    import json

    from tests.support.mesh_strategies import consumer_policy_dicts

    policies = st.lists(consumer_policy_dicts(_CONSUMER, MODEL), max_size=6).map(json.dumps)
    flood = st.sampled_from([1_000, 20_000]).map(lambda n: json.dumps([{}] * n))
    return st.one_of(policies, flood, hostile.databag_values(st.none()))


def _only_the_consumers_own_door(policies: list) -> None:
    for policy in policies:
        assert policy.target_app_name == _CONSUMER
        assert policy.target_namespace == MODEL
        assert not policy.target_selector_labels
        assert policy.target_service in (None, _CONSUMER)


@parser_settings
@given(raw=_consumer_policies_bags())
def test_parser_provider_consumer_policies(raw):
    from service_mesh._provider import decode_policies

    with FIGURES.case("service-mesh (provider side)") as tally:
        policies, problem = decode_policies(raw, _CONSUMER, consumer_namespace=MODEL)
        _only_the_consumers_own_door(policies)
        if problem is not None:
            assert len(problem) < 1_000 and "\n" not in problem
            problem.encode()
        tally.kept += 1


@charm_settings
@given(raws=st.lists(_consumer_policies_bags(), min_size=1, max_size=3))
def test_charm_beacon_applies_only_what_each_consumer_may_ask(kube, raws):
    """Issue 17.1, 17.4: the objects open only the consumer's door; a log line a relation."""
    ctx = testing.Context(_Beacon, meta=_BEACON_META, app_name="istio-beacon-k8s")
    relations = [
        testing.Relation(
            "service-mesh", remote_app_name=_CONSUMER, remote_app_data={"policies": raw}
        )
        for raw in raws
    ]
    state = testing.State(leader=True, model=testing.Model(name=MODEL), relations=relations)
    with FIGURES.case("service-mesh (provider side)") as tally:
        ctx.run(ctx.on.relation_changed(relations[0]), state)
        for policy in kube.list("authorizationpolicies"):
            spec = policy["spec"]
            assert policy["metadata"]["namespace"] == MODEL
            refs = [ref["name"] for ref in spec.get("targetRefs", [])]
            selector = spec.get("selector", {}).get("matchLabels", {})
            assert refs == [_CONSUMER] or selector == {"app.kubernetes.io/name": _CONSUMER}
        warnings = [
            log for log in ctx.juju_log if log.level == "WARNING" and "policies" in log.message
        ]
        assert len(warnings) <= len(relations)
        tally.kept += 1


@parser_settings
@given(
    raw=hostile.record_labels_json,
    # A real API server stores UTF-8 only: a raw lone surrogate cannot be in a ConfigMap.
    pending=st.sampled_from([None, "true", "false", "TRUE", ""]),
    owner=st.sampled_from([None, "tempo", "someone-else"]),
    wanted=st.dictionaries(
        st.sampled_from(["istio.io/dataplane-mode", "app.kubernetes.io/part-of", "a"]),
        st.sampled_from(["ambient", "x", ""]),
        max_size=2,
    ),
)
def test_label_record_edited_by_anyone_never_breaks_the_workload(raw, pending, owner, wanted):
    """Issue 17.3, 17.6: whatever the record says, the StatefulSet stays valid and selectable."""
    from service_mesh import (
        KubernetesError,
        LabelRecordOwnerError,
        reconcile_charm_labels,
        remove_charm_labels,
    )
    from service_mesh.testing import FakeKubernetes

    fake = FakeKubernetes()
    fake.add_juju_app("tempo", namespace=MODEL)
    record = "juju-service-mesh-tempo-labels"
    metadata: dict[str, Any] = {"name": record, "namespace": MODEL}
    if owner is not None:
        metadata["ownerReferences"] = [
            {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": owner, "uid": "u"}
        ]
    data = {"labels": raw} if pending is None else {"labels": raw, "pending": pending}
    fake.add({"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data})
    with FIGURES.case("label record") as tally, fake.client(namespace=MODEL) as client:
        try:
            reconcile_charm_labels(client, "tempo", MODEL, record, wanted)
            if owner in (None, "tempo"):
                remove_charm_labels(client, "tempo", MODEL, record)
        except LabelRecordOwnerError:
            assert owner == "someone-else"
        except KubernetesError as e:
            raise AssertionError(f"the API server refused our own writes: {e}") from e
        sts = fake.get("statefulsets", MODEL, "tempo")
        assert sts is not None
        assert sts["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] == "tempo"
        tally.kept += 1


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


# ----- object storage (issue 16): the s3 provider's bag ----------------------------------------

_S3_VECTOR = json.loads(
    (pathlib.Path(__file__).parents[1] / "vectors" / "cos" / "s3.json").read_text()
)
_S3_GOOD: dict[str, str] = _S3_VECTOR["requirer_side_after_changed"]["databags"]["s3-integrator"]
_S3_NEAR: dict[str, st.SearchStrategy[str]] = {
    "access-key": _remote_text,
    "secret-key": _remote_text,
    "bucket": _remote_text | st.just("relation-7"),
    "endpoint": _urls | _remote_text,
    "region": _remote_text,
    "path": _remote_text,
    "s3-uri-style": st.sampled_from(["path", "host", "virtual", ""]) | _remote_text,
    "tls-ca-chain": hostile.databag_values(
        st.lists(
            st.sampled_from([_S3_VECTOR["dummy_s3_ca_pem"], "-----BEGIN CERTIFICATE-----"])
            | _remote_text,
            max_size=3,
        )
    ),
}


@st.composite
def _s3_bags(draw: st.DrawFn) -> dict[str, str]:
    """The real s3-integrator's bag with some keys dropped or made hostile, plus junk keys."""
    bag = dict(_S3_GOOD)
    for key, near in _S3_NEAR.items():
        choice = draw(st.sampled_from(["keep", "drop", "hostile"]))
        if choice == "drop":
            bag.pop(key, None)
        elif choice == "hostile":
            bag[key] = draw(near)
    return {**draw(st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=2)), **bag}


@parser_settings
@given(bag=_s3_bags())
def test_parser_s3_provider_bag(bag):
    _parse("s3", from_provider_bag, bag, (S3DataError,))


@parser_settings
@given(content=_s3_bags())
def test_parser_s3_secret_content(content):
    # What a worker reads from the coordinator's secret: checked as strictly as a provider bag.
    _parse("s3 (worker's secret)", from_secret_content, content, (S3DataError,))


_HEALTHY_S3: dict[int, tuple[testing.State, tuple[dict, dict]]] = {}


@charm_settings
@given(bag=_s3_bags())
def test_charm_coordinator_s3(kube, bag):
    """Hostile s3 data: no crash, labels and policies kept, workers keep the last good storage."""
    ctx = coordinator_context()
    if id(kube) not in _HEALTHY_S3:
        _HEALTHY_S3.clear()
        s3 = testing.Relation("s3", remote_app_name="s3-integrator", remote_app_data=_S3_GOOD)
        healthy, _ = _healthy_coordinator(kube)
        first = ctx.run(ctx.on.relation_changed(s3), with_relations(healthy, s3))
        _HEALTHY_S3[id(kube)] = (first, (pod_labels(kube, COORDINATOR), policy_specs(kube)))
    healthy, good = _HEALTHY_S3[id(kube)]
    try:
        usable = from_provider_bag(bag) is not None
        malformed = False
    except S3DataError:
        usable, malformed = False, True
    old = relation_by_endpoint(healthy, "s3")
    new = testing.Relation(
        "s3",
        id=old.id,
        remote_app_name="s3-integrator",
        remote_app_data=bag,
        local_app_data=old.local_app_data,
    )
    with FIGURES.case("s3") as tally:
        out = ctx.run(ctx.on.relation_changed(new), replace_relation(healthy, old, new))
        assert not isinstance(out.unit_status, ops.ErrorStatus)
        _assert_hook_tools_can_take_it(ctx, out)
        assert _kept(kube, good), "hostile s3 data changed labels or policies"
        for relation in out.relations:
            if relation.endpoint != "cluster":
                continue
            published = ClusterProviderAppData.load(relation.local_app_data)
            before = ClusterProviderAppData.load(healthy.get_relation(relation.id).local_app_data)
            if malformed:
                assert out.unit_status.message.startswith("s3: ")
                assert published == before, "malformed s3 data changed what workers have"
            else:
                assert (published.s3_secret_id is not None) == usable
        tally.kept += 1


# ----- TLS (issue 14): the certificate provider's bag ------------------------------------------

_TLS_VECTOR = json.loads(
    (
        pathlib.Path(__file__).parents[1] / "vectors" / "cos" / "tls_certificates-v1.json"
    ).read_text()
)
_PEMS = st.sampled_from(
    [_TLS_VECTOR["dummy_ca_pem"], "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"]
)
_CERTIFICATE_ENTRY = st.fixed_dictionaries(
    {},
    optional={
        "ca": _PEMS | _remote_text,
        "certificate": _PEMS | _remote_text,
        "certificate_signing_request": _remote_text,
        "chain": st.lists(_PEMS | _remote_text, max_size=2) | _remote_text,
        "revoked": st.booleans() | _remote_text,
    },
)
_CERTIFICATES_BAGS = st.one_of(
    st.just(_TLS_VECTOR["provider_app_databag_ca"]),
    st.fixed_dictionaries(
        {"certificates": hostile.databag_values(st.lists(_CERTIFICATE_ENTRY, max_size=2))}
    ),
    st.dictionaries(st.text(max_size=12), _remote_text, max_size=2),
)


@charm_settings
@given(bag=_CERTIFICATES_BAGS)
def test_charm_coordinator_certificates(kube, bag):
    """Hostile certificate provider data: no crash, nothing served or shared from it."""

    def build(ctx, healthy):
        relation = testing.Relation(
            "certificates", remote_app_name="self-signed-certificates", remote_app_data=bag
        )
        return ctx.on.relation_changed(relation), with_relations(healthy, relation)

    _coordinator_case(kube, "certificates", build)


# ----- grafana_datasource_exchange: the reference charm with both endpoints declared ---------


@parser_settings
@given(bag=bags("datasources"))
def test_parser_datasource_exchange(bag):
    _parse("grafana_datasource_exchange", parse_datasources, bag, (DatasourceExchangeError,))


def _exchange_context() -> testing.Context:
    """The reference coordinator, its metadata plus both datasource exchange endpoints."""
    spec = yaml.safe_load((REPO_ROOT / "coordinator" / "charmcraft.yaml").read_text())
    meta = {k: v for k, v in spec.items() if k not in ("config", "actions")}
    exchange = {"interface": "grafana_datasource_exchange", "optional": True}
    meta["provides"] = {**meta["provides"], "send-datasource": exchange}
    meta["requires"] = {**meta["requires"], "receive-datasource": exchange}
    return testing.Context(
        coordinator_charm.CoordinatorCharm,
        meta=meta,
        config=spec["config"],
        actions=spec["actions"],
        app_name=COORDINATOR,
    )


_GOOD_DATASOURCES = {"datasources": '[{"type":"loki","uid":"l-1","grafana_uid":"g-1"}]'}
_HEALTHY_EXCHANGE: dict[tuple[int, str], tuple[testing.State, tuple[dict, dict]]] = {}


@charm_settings
@given(
    bag=bags("datasources"), endpoint=st.sampled_from(["send-datasource", "receive-datasource"])
)
def test_charm_coordinator_datasource_exchange(kube, bag, endpoint):
    """Hostile datasources: no crash, labels and policies kept, the last good datasources too."""
    ctx = _exchange_context()
    key = (id(kube), endpoint)
    if key not in _HEALTHY_EXCHANGE:
        _HEALTHY_EXCHANGE.clear()
        good = testing.Relation(
            endpoint, remote_app_name="loki", remote_app_data=_GOOD_DATASOURCES
        )
        start = coordinator_state(*workers_relations(), mesh_relation(), good)
        healthy = ctx.run(ctx.on.config_changed(), start)
        _HEALTHY_EXCHANGE[key] = (healthy, (pod_labels(kube, COORDINATOR), policy_specs(kube)))
    healthy, good_k8s = _HEALTHY_EXCHANGE[key]
    try:
        expected = parse_datasources(bag) if bag else ()
        usable = True
    except DatasourceExchangeError:
        expected, usable = parse_datasources(_GOOD_DATASOURCES), False
    old = relation_by_endpoint(healthy, endpoint)
    new = testing.Relation(endpoint, id=old.id, remote_app_name="loki", remote_app_data=bag)
    state = replace_relation(healthy, old, new)
    with FIGURES.case("grafana_datasource_exchange") as tally:
        with ctx(ctx.on.relation_changed(new), state) as manager:
            out = manager.run()
            exchange = manager.charm.coordinator.datasource_exchange
            received = exchange.received().value
        assert not isinstance(out.unit_status, ops.ErrorStatus)
        _assert_hook_tools_can_take_it(ctx, out)
        assert _kept(kube, good_k8s), "hostile datasources changed labels or policies"
        assert received == expected
        if not usable:
            assert out.unit_status.message.startswith("datasource exchange: ")
            tally.kept += 1
