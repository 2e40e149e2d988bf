# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Vectors of the service_mesh relation: upstream's consumer and provider in ops.testing.

Also the consumer's label reconciliation (``auto_join``), whose requests a real
``lightkube.Client()`` sends to ``FakeKubernetes`` over loopback HTTP.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import ops
from charmlibs.interfaces import service_mesh as upstream
from ops import testing

from service_mesh.testing import FakeKubernetes
from tests.support.mesh_charms import BEACON_META, TEMPO_META

from ._upstream_common import (
    COORDINATOR,
    ENVIRONMENT_PACKAGES,
    MESH_LABELS,
    MODEL,
    UPSTREAM_PACKAGES,
    Document,
    produced_by,
)

# ----- service_mesh relation bags (ops.testing) -----

CONSUMER_META = TEMPO_META
PROVIDER_META = BEACON_META


def _consumer_policies() -> list[upstream.Policy | upstream.AppPolicy | upstream.UnitPolicy]:
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


def upstream_provider(labels: dict[str, str]) -> type[ops.CharmBase]:
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


def _policy_args(
    policy: upstream.Policy | upstream.AppPolicy | upstream.UnitPolicy,
) -> dict[str, Any]:
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
            upstream_provider(labels), meta=PROVIDER_META, app_name="istio-beacon-k8s"
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


# ----- label reconciliation (Kubernetes requests over loopback HTTP) -----

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
