"""Regenerate the golden data that the published upstream packages produce.

``tox -e vectors`` runs this module: it runs charmlibs-interfaces-service-mesh and
canonical-service-mesh (the ``contract`` dependency group, pinned in ``pyproject.toml``), never
our own libraries, and rewrites the files of :data:`GENERATORS` in ``tests/vectors/``. With
``--check`` it rewrites nothing and exits 1 naming the files that differ.
``tests/contract/test_vectors.py`` runs the same generators in process and fails on a difference,
so a new upstream release or a hand edit of a golden file cannot go unnoticed.

Why the environment is part of the output: ``_produced_by`` names the versions of every package
that shaped a file, as the lock file installs them. Only the two upstream versions are part of the
contract; the others (ops, lightkube, pydantic) are recorded for the reader, and the contract
test ignores them so that a routine bump of ops does not read as an upstream change.

Kubernetes requests are made by a real ``lightkube.Client`` against
``service_mesh.testing.FakeKubernetes`` (our recording fake API server: the only part of this
repository involved, as the server side of the wire).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import ops
import yaml
from canonical_service_mesh.k8s.resource_manager import (
    PolicyResourceManager,
    create_charm_default_labels,
)
from canonical_service_mesh.utils import charm_kubernetes_label, generate_telemetry_labels
from canonical_service_mesh.utils.istio import build_policy_resources_istio
from charmlibs.interfaces import service_mesh as upstream
from ops import testing

from service_mesh.testing import FakeKubernetes

VECTORS_DIR = Path(__file__).resolve().parent

UPSTREAM_PACKAGES = ("charmlibs-interfaces-service-mesh", "canonical-service-mesh")
"""The packages whose behaviour the files record; their versions are compared."""

ENVIRONMENT_PACKAGES = ("lightkube", "ops", "pydantic")
"""Packages that shaped the run without being the subject of it; recorded, not compared."""

Document = dict[str, Any]

MESH_LABELS = {
    "istio.io/dataplane-mode": "ambient",
    "istio.io/use-waypoint": "cos-istio-beacon-k8s-waypoint",
    "istio.io/use-waypoint-namespace": "cos",
}


def produced_by(*names: str) -> dict[str, str]:
    """The installed version of each named distribution, in the order given."""
    return {name: version(name) for name in names}


def render(document: Document) -> str:
    """The committed text of a JSON vector: two-space indent, ASCII, one final newline."""
    return json.dumps(document, indent=2) + "\n"


# ----- service_mesh relation bags (ops.testing) -----

CONSUMER_META: dict[str, Any] = {
    "name": "tempo",
    "requires": {
        "service-mesh": {"interface": "service_mesh", "limit": 1},
        "require-cmr-mesh": {"interface": "cross_model_mesh"},
    },
    "provides": {
        "provide-cmr-mesh": {"interface": "cross_model_mesh"},
        "tempo-api": {"interface": "tempo_http"},
        "grafana-source": {"interface": "grafana_datasource"},
        "metrics-endpoint": {"interface": "prometheus_scrape"},
    },
}
PROVIDER_META: dict[str, Any] = {
    "name": "istio-beacon-k8s",
    "provides": {"service-mesh": {"interface": "service_mesh"}},
}


def _consumer_policies() -> list[upstream.AppPolicy | upstream.UnitPolicy]:
    return [
        upstream.AppPolicy(
            relation="tempo-api", endpoints=[upstream.Endpoint(ports=[3200, 9096])]
        ),
        upstream.AppPolicy(
            relation="grafana-source",
            endpoints=[
                upstream.Endpoint(ports=[3200], methods=[upstream.Method.get], paths=["/api/*"])
            ],
        ),
        upstream.UnitPolicy(relation="metrics-endpoint", ports=[8080]),
    ]


class _UpstreamConsumer(ops.CharmBase):
    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        # auto_join patches Kubernetes on relation-changed; the bags do not depend on it.
        self.mesh = upstream.ServiceMeshConsumer(
            self, policies=_consumer_policies(), auto_join=False
        )


class _UpstreamJoiningConsumer(ops.CharmBase):
    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.mesh = upstream.ServiceMeshConsumer(self, policies=_consumer_policies())


def _upstream_provider(labels: dict[str, str]) -> type[ops.CharmBase]:
    class UpstreamProvider(ops.CharmBase):
        def __init__(self, framework: ops.Framework):
            super().__init__(framework)
            self.mesh = upstream.ServiceMeshProvider(
                self, labels=labels, mesh_type=upstream.MeshType.istio
            )

    return UpstreamProvider


def _consumer_run(
    event: Callable[[testing.Context[Any]], Any],
    relations: list[testing.Relation],
    leader: bool = True,
) -> testing.State:
    ctx = testing.Context(_UpstreamConsumer, meta=CONSUMER_META, app_name="tempo")
    state = testing.State(leader=leader, model=testing.Model(name="cos"), relations=relations)
    return ctx.run(event(ctx), state)


def _policy_args(policy: upstream.AppPolicy | upstream.UnitPolicy) -> dict[str, Any]:
    return {"type": type(policy).__name__, **policy.model_dump(mode="json")}


def consumer_databag() -> Document:
    """The bags upstream's ServiceMeshConsumer writes for a tempo coordinator."""
    mesh = testing.Relation("service-mesh", remote_app_name="istio-beacon-k8s", id=1)
    relations = [
        mesh,
        testing.Relation("tempo-api", remote_app_name="grafana", id=2),
        testing.Relation("grafana-source", remote_app_name="grafana", id=3),
        testing.Relation("metrics-endpoint", remote_app_name="prometheus", id=4),
    ]
    bag = dict(
        _consumer_run(lambda ctx: ctx.on.upgrade_charm(), relations).get_relation(1).local_app_data
    )

    cmr_data = json.dumps({"app_name": "grafana", "juju_model_name": "observability"})
    cmr = testing.Relation(
        "provide-cmr-mesh",
        remote_app_name="grafana-remote",
        remote_app_data={"cmr_data": cmr_data},
        id=6,
    )
    cmr_relations = [
        mesh,
        testing.Relation("tempo-api", remote_app_name="grafana-remote", id=5),
        cmr,
    ]
    cmr_bag = dict(
        _consumer_run(lambda ctx: ctx.on.relation_changed(cmr, remote_unit=0), cmr_relations)
        .get_relation(1)
        .local_app_data
    )

    requirer = testing.Relation("require-cmr-mesh", remote_app_name="grafana", id=7)
    requirer_bag = dict(
        _consumer_run(lambda ctx: ctx.on.relation_created(requirer), [mesh, requirer])
        .get_relation(7)
        .local_app_data
    )
    non_leader_bag = dict(
        _consumer_run(lambda ctx: ctx.on.upgrade_charm(), relations, leader=False)
        .get_relation(1)
        .local_app_data
    )
    return {
        "_produced_by": produced_by(*UPSTREAM_PACKAGES, *ENVIRONMENT_PACKAGES),
        "_description": (
            "App databag written by ServiceMeshConsumer.update_service_mesh() for app 'tempo' in"
            " model 'cos' with policies: AppPolicy(tempo-api, ports [3200, 9096]);"
            " AppPolicy(grafana-source, ports [3200], methods [GET], paths ['/api/*']);"
            " UnitPolicy(metrics-endpoint, ports [8080]). Related: tempo-api<->grafana,"
            " grafana-source<->grafana, metrics-endpoint<->prometheus. Single key 'policies' ="
            " json.dumps([MeshPolicy.model_dump(), ...]) (default json.dumps separators, nulls"
            " kept, order = policies order x relations order)."
        ),
        "consumer_app": "tempo",
        "model": "cos",
        "consumer_policies_constructor_args": [_policy_args(p) for p in _consumer_policies()],
        "databag": bag,
        "decoded_policies": json.loads(bag["policies"]),
        "cross_model_variant": {
            "_description": (
                "tempo-api related to SaaS 'grafana-remote'; provide-cmr-mesh relation from the"
                " same SaaS carries cmr_data {app_name: grafana, juju_model_name: observability}."
                " Only the tempo-api relation exists in this state. Triggered by provide-cmr-mesh"
                " relation-changed."
            ),
            "provide_cmr_mesh_remote_app_databag": {"cmr_data": cmr_data},
            "databag": cmr_bag,
            "decoded_policies": json.loads(cmr_bag["policies"]),
        },
        "require_cmr_mesh_local_app_databag": requirer_bag,
        "non_leader_databag": non_leader_bag,
    }


def provider_databag() -> Document:
    """The bags upstream's ServiceMeshProvider writes as istio-beacon-k8s does."""

    def bag(labels: dict[str, str]) -> dict[str, str]:
        relation = testing.Relation("service-mesh", remote_app_name="tempo")
        ctx = testing.Context(
            _upstream_provider(labels), meta=PROVIDER_META, app_name="istio-beacon-k8s"
        )
        state = testing.State(leader=True, model=testing.Model(name="cos"), relations=[relation])
        return dict(
            ctx.run(ctx.on.relation_created(relation), state)
            .get_relation(relation.id)
            .local_app_data
        )

    ambient = bag(MESH_LABELS)
    return {
        "_produced_by": produced_by(*UPSTREAM_PACKAGES, *ENVIRONMENT_PACKAGES),
        "_description": (
            "App databag written by ServiceMeshProvider.update_relations() (leader, on"
            " service-mesh relation-created / config-changed) for istio-beacon-k8s in model"
            " 'cos'. Every value is a JSON-encoded string (note mesh_type is the JSON string"
            " '\"istio\"'). labels as computed by istio-beacon-k8s mesh_labels(); with"
            " model-on-mesh=true the beacon passes labels={}."
        ),
        "provider_app": "istio-beacon-k8s",
        "model": "cos",
        "databag_ambient": ambient,
        "databag_model_on_mesh": bag({}),
        "decoded_ambient": {key: json.loads(value) for key, value in ambient.items()},
    }


# ----- Istio policy builder -----

COORDINATOR, MODEL, WORKERS = "tempo", "cos", ("tempo-querier", "tempo-ingester")


def cluster_internal_policies(workers: tuple[str, ...] = WORKERS) -> list[upstream.MeshPolicy]:
    """The cluster-internal policies of a coordinated-workers cluster, in its order."""
    members = {"app.kubernetes.io/part-of": COORDINATOR}

    def policy(source: str, **target: Any) -> upstream.MeshPolicy:
        return upstream.MeshPolicy(
            source_namespace=MODEL,
            source_app_name=source,
            target_namespace=MODEL,
            endpoints=[],
            **target,
        )

    policies = [policy(COORDINATOR, target_selector_labels=members, target_type="unit")]
    for worker in workers:
        policies.append(policy(worker, target_selector_labels=members, target_type="unit"))
        policies.append(policy(worker, target_app_name=COORDINATOR, target_type="app"))
    return policies


def _to_dict(resource: Any) -> Any:
    return None if resource is None else resource.to_dict()


def builder_raw_cluster_internal() -> Document:
    """What upstream's builder makes of the cluster-internal policies, before PRM labels."""
    resources = build_policy_resources_istio(COORDINATOR, MODEL, cluster_internal_policies())
    return {
        "_produced_by": produced_by(*UPSTREAM_PACKAGES, *ENVIRONMENT_PACKAGES),
        "_description": (
            "canonical_service_mesh.utils.istio.build_policy_resources_istio('tempo','cos',"
            " policies).to_dict() (before PRM adds labels)"
        ),
        "resources": [_to_dict(resource) for resource in resources],
    }


def _edge_policies() -> list[tuple[str, str, str, dict[str, Any]]]:
    """(description, owner app, owner model, MeshPolicy fields) of each builder edge case."""
    names = {"source_namespace": "a", "source_app_name": "b", "target_namespace": "c"}
    long_ = {letter: letter * 63 for letter in "amnst"}
    return [
        (
            "app policy with target_service, hosts, two endpoints (cross-namespace source)",
            "app",
            "m",
            {
                **names,
                "source_namespace": "other",
                "target_app_name": "t",
                "target_service": "t-svc",
                "target_type": "app",
                "endpoints": [
                    {
                        "hosts": ["t.c.svc.cluster.local"],
                        "ports": [80],
                        "methods": ["POST", "PUT"],
                        "paths": ["/x"],
                    },
                    {"ports": [90]},
                ],
            },
        ),
        (
            "app policy, Endpoint() with nothing set -> operation.ports == []",
            "app",
            "m",
            {**names, "target_app_name": "t", "target_type": "app", "endpoints": [{}]},
        ),
        (
            "app policy, no endpoints -> rules[0].to == []",
            "app",
            "m",
            {**names, "target_app_name": "t", "target_type": "app", "endpoints": []},
        ),
        (
            "app policy with only target_service (no target_app_name); name uses target_service",
            "app",
            "m",
            {
                **names,
                "target_service": "svc-x",
                "target_type": "app",
                "endpoints": [{"ports": [1]}],
            },
        ),
        (
            "unit policy targeting app -> selector app.kubernetes.io/name",
            "app",
            "m",
            {
                **names,
                "target_app_name": "t",
                "target_type": "unit",
                "endpoints": [{"ports": [8080, 9090]}],
            },
        ),
        (
            "unit policy with neither target_app_name nor selector labels -> NO selector"
            " (namespace-wide!)",
            "app",
            "m",
            {**names, "target_type": "unit", "endpoints": []},
        ),
        (
            "unit policy with methods -> builder returns None (logged error); PRM.reconcile then"
            " crashes with AttributeError",
            "app",
            "m",
            {
                **names,
                "target_app_name": "t",
                "target_type": "unit",
                "endpoints": [{"ports": [1], "methods": ["GET"]}],
            },
        ),
        (
            "very long names -> truncated form (>253 chars)",
            long_["a"],
            long_["m"],
            {
                "source_namespace": long_["n"],
                "source_app_name": long_["s"],
                "target_namespace": "c",
                "target_app_name": long_["t"],
                "target_type": "app",
                "endpoints": [],
            },
        ),
    ]


def _quietly(function: Callable[[], Any]) -> Any:
    """Run ``function`` with upstream's expected error logs (the refused unit policy) muted."""
    previous = logging.root.manager.disable
    logging.disable(logging.ERROR)
    try:
        return function()
    finally:
        logging.disable(previous)


def builder_edge_cases() -> Document:
    """Upstream's builder on edge cases, and its label and name helpers."""
    cases: list[dict[str, Any]] = []
    for description, app, model, fields in _edge_policies():
        policy = upstream.MeshPolicy.model_validate(fields)
        [resource] = _quietly(lambda: build_policy_resources_istio(app, model, [policy]))  # noqa: B023
        cases.append(
            {
                "description": description,
                "prm_app": app,
                "prm_model": model,
                "meshpolicy": policy.model_dump(mode="json"),
                "str_for_hash": str(policy),
                "resource": _to_dict(resource),
            }
        )
    a40, m40 = "a" * 40, "m" * 40
    return {
        "_produced_by": produced_by(*sorted(UPSTREAM_PACKAGES), "pydantic"),
        "_description": (
            "build_policy_resources_istio(app, model, [policy]) edge cases (resource.to_dict(),"
            " before PRM labels) and label/name helpers. name = '-'.join([app, model, 'policy',"
            " source_app, source_ns, target_app or target_service or 'custom-selector',"
            " sha256(str(MeshPolicy))[:8]])."
        ),
        "builder_cases": cases,
        "label_helpers": {
            "charm_kubernetes_label(model='cos', app='istio-beacon-k8s', suffix='-waypoint',"
            " separator='-')": charm_kubernetes_label(
                model_name="cos", app_name="istio-beacon-k8s", suffix="-waypoint", separator="-"
            ),
            "charm_kubernetes_label(model='m'*40, app='a'*40, suffix='-waypoint',"
            " separator='-')": charm_kubernetes_label(
                model_name=m40, app_name=a40, suffix="-waypoint", separator="-"
            ),
            "create_charm_default_labels('istio-beacon-k8s','cos','istio-authorization-policy')": (
                create_charm_default_labels(
                    "istio-beacon-k8s", "cos", "istio-authorization-policy"
                )
            ),
            "create_charm_default_labels('a'*40,'m'*40,'s')": create_charm_default_labels(
                a40, m40, "s"
            ),
            "generate_telemetry_labels(app='istio-beacon-k8s', model='cos')": (
                generate_telemetry_labels("istio-beacon-k8s", "cos")
            ),
            "generate_telemetry_labels(app='a'*40, model='m'*40)": generate_telemetry_labels(
                a40, m40
            ),
        },
    }


# ----- Kubernetes requests (a real lightkube Client against FakeKubernetes) -----

# coordinated-workers' own owner labels (instance "<app>-<model>"), not upstream's default
# ("<model>-<app>"): the file records what a coordinator's manager sends.
PRM_LABELS = {
    "app.kubernetes.io/instance": f"{COORDINATOR}-{MODEL}",
    "kubernetes-resource-handler-scope": f"{COORDINATOR}-{MODEL}-cluster-internal",
}


def _policy_record(policy: upstream.MeshPolicy) -> dict[str, Any]:
    return {"meshpolicy_json": policy.model_dump(mode="json"), "str_for_hash": str(policy)}


def _deletes_sorted(requests: list[Any]) -> list[Any]:
    """``requests`` with each run of consecutive DELETEs sorted by path.

    Upstream deletes what it finds in the order of a Python ``set`` of (group, version, kind,
    name, namespace) tuples, which changes with ``PYTHONHASHSEED`` from one process to the next;
    sorting makes the log reproducible without claiming an order upstream does not keep.
    """
    ordered: list[Any] = []
    run: list[Any] = []
    for request in [*requests, None]:
        if request is not None and request["method"] == "DELETE":
            run.append(request)
            continue
        ordered.extend(sorted(run, key=lambda r: r["path"]))
        run = []
        if request is not None:
            ordered.append(request)
    return ordered


def prm_cluster_internal_wire() -> Document:
    """Every request upstream's PolicyResourceManager sends for the cluster-internal policies."""
    fake = FakeKubernetes()
    charm = SimpleNamespace(
        app=SimpleNamespace(name=COORDINATOR), model=SimpleNamespace(name=MODEL)
    )
    client = fake.client(namespace=MODEL, field_manager=f"{COORDINATOR}-{MODEL}")
    try:
        prm = PolicyResourceManager(charm, client, dict(PRM_LABELS))  # type: ignore[arg-type]
        prm.reconcile(cluster_internal_policies(), upstream.MeshType.istio)
        pass1 = fake.clear_requests()
        prm.reconcile(cluster_internal_policies(WORKERS[:1]), upstream.MeshType.istio)
        pass2 = _deletes_sorted(fake.clear_requests())
        prm.delete()
        pass3 = _deletes_sorted(fake.clear_requests())
    finally:
        client.close()
    return {
        "_produced_by": produced_by(*UPSTREAM_PACKAGES, *ENVIRONMENT_PACKAGES),
        "_description": (
            "Full HTTP request log of PolicyResourceManager (canonical_service_mesh) for the"
            " coordinated-workers cluster-internal policies. Pass 1: 5 policies (1 coordinator"
            " unit, 2 per worker). Pass 2: tempo-ingester removed -> its 2 policies DELETEd, the"
            " rest re-applied. Pass 3: prm.delete() -> list + delete all labelled. Upstream"
            " deletes in Python set order (it varies with PYTHONHASHSEED): each run of DELETEs"
            " is listed sorted by path."
            " Client(field_manager='tempo-cos')."
        ),
        "prm_labels": PRM_LABELS,
        "mesh_policies": [_policy_record(p) for p in cluster_internal_policies()],
        "pass1_reconcile_requests": pass1,
        "pass2_reconcile_without_tempo_ingester": pass2,
        "pass3_delete": pass3,
    }


CLUSTER_INTERNAL_YAML_HEADER = """\
# Istio AuthorizationPolicies that canonical-service-mesh {version} PolicyResourceManager
# .reconcile(policies, MeshType.istio) applies for the coordinated-workers cluster-internal
# MeshPolicies of model 'cos', coordinator 'tempo', workers 'tempo-querier', 'tempo-ingester'
# (PRM charm app='tempo', model='cos': names embed these). Bodies are exactly what it sends as
# server-side-apply PATCH (application/apply-patch+yaml) through a real lightkube Client.
# Labels = coordinated-workers PRM labels (instance '<app>-<model>',
# scope '<app>-<model>-cluster-internal'). Written by tests/vectors/generate.py.
"""


def cluster_internal_yaml() -> str:
    """The apply bodies of PRM's first pass as one YAML stream (what the cluster holds)."""
    bodies = [
        request["body"] for request in prm_cluster_internal_wire()["pass1_reconcile_requests"]
    ]
    applied = [body for body in bodies if body is not None]
    header = CLUSTER_INTERNAL_YAML_HEADER.format(version=version("canonical-service-mesh"))
    return header + yaml.safe_dump_all(applied, sort_keys=False)


BEACON = "istio-beacon-k8s"
BEACON_YAML_HEADER = """\
# AuthorizationPolicies istio-beacon-k8s (managed mode) would apply for the consumer databag in
# consumer-databag-tempo.json: ServiceMeshProvider.mesh_info() -> PolicyResourceManager(app=
# 'istio-beacon-k8s', model='cos', labels=create_charm_default_labels(..., scope=
# 'istio-authorization-policy')).reconcile(..., MeshType.istio). canonical-service-mesh {version}.
# NOTE instance label is '<model>-<app>' here (canonical-service-mesh>=0.0.2 /
# lightkube-extensions 1.0.0); older lightkube-extensions<=0.3.0 produced '<app>-<model>'
# (e.g. 'istio-beacon-k8s-cos'). Written by tests/vectors/generate.py.
"""


def beacon_from_consumer_wire() -> Document:
    """What the beacon's library calls send for the consumer bag of :func:`consumer_databag`.

    The beacon charm itself is not installable; its managed mode is these two calls: read the
    consumer's policies with ``ServiceMeshProvider.mesh_info()``, reconcile them with
    ``PolicyResourceManager`` under its own labels.
    """
    relation = testing.Relation(
        "service-mesh", remote_app_name=COORDINATOR, remote_app_data=consumer_databag()["databag"]
    )
    ctx = testing.Context(_upstream_provider(MESH_LABELS), meta=PROVIDER_META, app_name=BEACON)
    state = testing.State(model=testing.Model(name=MODEL), relations=[relation])
    with ctx(ctx.on.update_status(), state) as manager:
        policies = manager.charm.mesh.mesh_info()
    labels = create_charm_default_labels(BEACON, MODEL, "istio-authorization-policy")
    fake = FakeKubernetes()
    charm = SimpleNamespace(app=SimpleNamespace(name=BEACON), model=SimpleNamespace(name=MODEL))
    client = fake.client(namespace=MODEL, field_manager=BEACON)
    try:
        prm = PolicyResourceManager(charm, client, dict(labels))  # type: ignore[arg-type]
        prm.reconcile(policies, upstream.MeshType.istio)
    finally:
        client.close()
    return {
        "_produced_by": produced_by(*UPSTREAM_PACKAGES, *ENVIRONMENT_PACKAGES),
        "prm_labels": labels,
        "mesh_policies": [_policy_record(p) for p in policies],
        "requests": fake.clear_requests(),
    }


def beacon_from_consumer_yaml() -> str:
    """The apply bodies of :func:`beacon_from_consumer_wire` as one YAML stream."""
    bodies = [r["body"] for r in beacon_from_consumer_wire()["requests"] if r["body"] is not None]
    header = BEACON_YAML_HEADER.format(version=version("canonical-service-mesh"))
    return header + yaml.safe_dump_all(bodies, sort_keys=False)


SERVER_SET_METADATA = ("uid", "creationTimestamp", "resourceVersion")
"""Metadata the fake API server sets; upstream echoes it back in the ConfigMap it re-sends.

They are dropped from the log: ``uid`` is random, and the server of the first recording set
none of them (so the committed log shows upstream's requests without them).
"""


def _without_server_metadata(requests: list[Any]) -> list[Any]:
    for request in requests:
        body = request["body"]
        if isinstance(body, dict):
            for field in SERVER_SET_METADATA:
                body.get("metadata", {}).pop(field, None)
    return requests


def _provider_bag(labels: dict[str, str]) -> dict[str, str]:
    return {"labels": json.dumps(labels), "mesh_type": json.dumps("istio")}


def _consumer_state(labels: dict[str, str]) -> tuple[testing.Relation, testing.State]:
    mesh = testing.Relation(
        "service-mesh",
        remote_app_name="istio-beacon-k8s",
        remote_app_data=_provider_bag(labels),
        remote_units_data={0: {}},
        id=1,
    )
    return mesh, testing.State(leader=True, model=testing.Model(name=MODEL), relations=[mesh])


def _run_and_close(ctx: testing.Context[Any], event: Any, state: testing.State) -> None:
    """Run one hook, then close the lightkube client upstream's consumer opened (it never does)."""
    with ctx(event, state) as manager:
        manager.run()
        client = manager.charm.mesh._lightkube_client
        if client is not None:
            client.close()


def reconcile_charm_labels_wire() -> Document:
    """The requests upstream's consumer makes to put the mesh labels on and take them off.

    Each phase starts from a cluster where the consumer has joined: labels on, record filled.
    """
    ctx = testing.Context(_UpstreamJoiningConsumer, meta=CONSUMER_META, app_name=COORDINATOR)
    phases: dict[str, Any] = {}
    for phase, labels, broken in (
        ("1_join_on_service_mesh_relation_changed", MESH_LABELS, False),
        ("2_provider_labels_become_empty", {}, False),
        ("3_service_mesh_relation_broken", MESH_LABELS, True),
    ):
        fake = FakeKubernetes()
        fake.add_juju_app(COORDINATOR, namespace=MODEL)
        with fake.serve_to_environment(namespace=MODEL):
            if phase != "1_join_on_service_mesh_relation_changed":
                mesh, state = _consumer_state(MESH_LABELS)
                _run_and_close(ctx, ctx.on.relation_changed(mesh, remote_unit=0), state)
                fake.clear_requests()
            mesh, state = _consumer_state(labels)
            event = (
                ctx.on.relation_broken(mesh)
                if broken
                else ctx.on.relation_changed(mesh, remote_unit=0)
            )
            _run_and_close(ctx, event, state)
        phases[phase] = _without_server_metadata(fake.clear_requests())
    statefulset = fake.get("statefulsets", MODEL, COORDINATOR)
    assert statefulset is not None
    for field in SERVER_SET_METADATA:
        statefulset["metadata"].pop(field)
    return {
        "_produced_by": produced_by(*UPSTREAM_PACKAGES, *ENVIRONMENT_PACKAGES),
        "_description": (
            "HTTP requests issued (real lightkube Client -> loopback fake API) by"
            " ServiceMeshConsumer auto_join via"
            " canonical_service_mesh.utils.istio.reconcile_charm_labels for app 'tempo' in"
            " model 'cos'. Client(namespace=model, field_manager=app). ConfigMap name"
            " 'juju-service-mesh-tempo-labels', data key 'labels' = JSON object of labels last"
            " set. StatefulSet and Service patches use lightkube default PatchType.STRATEGIC;"
            " null removes a label."
        ),
        **phases,
        "statefulset_after_broken": statefulset,
    }


# ----- the command -----

GENERATORS: dict[str, Callable[[], str]] = {
    "consumer-databag-tempo.json": lambda: render(consumer_databag()),
    "provider-databag-istio-beacon.json": lambda: render(provider_databag()),
    "policy-builder-raw-cluster-internal-tempo.json": lambda: render(
        builder_raw_cluster_internal()
    ),
    "policy-builder-edge-cases.json": lambda: render(builder_edge_cases()),
    "prm-cluster-internal-tempo-wire.json": lambda: render(prm_cluster_internal_wire()),
    "authorizationpolicies-cluster-internal-tempo.yaml": cluster_internal_yaml,
    "reconcile-charm-labels-wire.json": lambda: render(reconcile_charm_labels_wire()),
    "beacon-from-consumer-tempo-wire.json": lambda: render(beacon_from_consumer_wire()),
    "authorizationpolicies-beacon-from-consumer-tempo.yaml": beacon_from_consumer_yaml,
}
"""Each regenerated file, and the function that produces its text."""


def main(argv: list[str] | None = None) -> int:
    """Rewrite (or, with --check, compare) every file of :data:`GENERATORS`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="compare only; exit 1 on a difference"
    )
    args = parser.parse_args(argv)
    differ: list[str] = []
    for name, generate in GENERATORS.items():
        path = VECTORS_DIR / name
        text = generate()
        current = path.read_text() if path.exists() else None
        if current == text:
            print(f"unchanged  tests/vectors/{name}")
            continue
        differ.append(name)
        if not args.check:
            path.write_text(text)
        print(f"{'differs' if args.check else 'rewritten'}  tests/vectors/{name}")
    if args.check and differ:
        print(
            f"{len(differ)} file(s) differ from what the upstream packages produce;"
            " run tox -e vectors"
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
