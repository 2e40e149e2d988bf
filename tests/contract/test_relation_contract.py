# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Our service_mesh relation ends interoperate with the published upstream library.

Both sides run as tiny charms through ops.testing: whatever one end writes is fed as remote
data to the other end of the other implementation, in both directions.
"""

from __future__ import annotations

from typing import Any

import ops
import pytest
from charmlibs.interfaces import service_mesh as upstream
from ops import testing

import service_mesh as ours
from tests.support.mesh_charms import BEACON_META, TEMPO_META

pytestmark = pytest.mark.contract

CONSUMER_META = TEMPO_META
PROVIDER_META = BEACON_META
LABELS = {
    "istio.io/dataplane-mode": "ambient",
    "istio.io/use-waypoint": "cos-istio-beacon-k8s-waypoint",
    "istio.io/use-waypoint-namespace": "cos",
}


def _policies(lib: Any) -> list[Any]:
    """The same policies, built from either library's models."""
    return [
        lib.AppPolicy(relation="tempo-api", endpoints=[lib.Endpoint(ports=[3200, 9096])]),
        lib.AppPolicy(
            relation="grafana-source",
            endpoints=[lib.Endpoint(ports=[3200], methods=[lib.Method.get], paths=["/api/*"])],
        ),
        lib.AppPolicy(relation="tempo-api", endpoints=[], service="tempo-gateway"),
        lib.UnitPolicy(relation="metrics-endpoint", ports=[8080]),
        lib.UnitPolicy(relation="metrics-endpoint"),
    ]


class OurConsumer(ops.CharmBase):
    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.mesh = ours.ServiceMeshConsumer(self, policies=_policies(ours), auto_join=False)


class UpstreamConsumer(ops.CharmBase):
    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        # auto_join would patch Kubernetes on relation-changed; these tests only read data.
        self.mesh = upstream.ServiceMeshConsumer(
            self, policies=_policies(upstream), auto_join=False
        )


class OurProvider(ops.CharmBase):
    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.mesh = ours.ServiceMeshProvider(self, labels=LABELS, mesh_type=ours.MeshType.istio)


class UpstreamProvider(ops.CharmBase):
    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.mesh = upstream.ServiceMeshProvider(
            self, labels=LABELS, mesh_type=upstream.MeshType.istio
        )


def _consumer_relations(cross_model: bool) -> list[testing.Relation]:
    # Fixed ids: ops.testing lists an endpoint's relations in an order that depends on their
    # ids, and fresh ids come from a global counter, so two runs built with fresh ids could see
    # the two tempo-api relations in different orders (the bag follows relation order).
    grafana = "grafana-remote" if cross_model else "grafana"
    relations = [
        testing.Relation("service-mesh", remote_app_name="istio-beacon-k8s", id=1),
        testing.Relation("tempo-api", remote_app_name=grafana, id=2),
        testing.Relation("tempo-api", remote_app_name="otel-collector", id=3),
        testing.Relation("grafana-source", remote_app_name=grafana, id=4),
        testing.Relation("metrics-endpoint", remote_app_name="prometheus", id=5),
    ]
    if cross_model:
        cmr_data = '{"app_name": "grafana", "juju_model_name": "observability"}'
        relations.append(
            testing.Relation(
                "provide-cmr-mesh",
                remote_app_name=grafana,
                remote_app_data={"cmr_data": cmr_data},
                id=6,
            )
        )
    return relations


def _consumer_bag(charm: type[ops.CharmBase], cross_model: bool) -> dict[str, str]:
    relations = _consumer_relations(cross_model)
    ctx = testing.Context(charm, meta=CONSUMER_META, app_name="tempo")
    state = testing.State(leader=True, model=testing.Model(name="cos"), relations=relations)
    out = ctx.run(ctx.on.upgrade_charm(), state)
    return dict(out.get_relation(relations[0].id).local_app_data)


def _provider_bag(charm: type[ops.CharmBase]) -> dict[str, str]:
    relation = testing.Relation("service-mesh", remote_app_name="tempo")
    ctx = testing.Context(charm, meta=PROVIDER_META, app_name="istio-beacon-k8s")
    state = testing.State(leader=True, model=testing.Model(name="cos"), relations=[relation])
    out = ctx.run(ctx.on.relation_created(relation), state)
    return dict(out.get_relation(relation.id).local_app_data)


def _mesh_info(charm: type[Any], consumer_bag: dict[str, str]) -> list[dict[str, Any]]:
    relation = testing.Relation(
        "service-mesh", remote_app_name="tempo", remote_app_data=consumer_bag
    )
    ctx = testing.Context(charm, meta=PROVIDER_META, app_name="istio-beacon-k8s")
    state = testing.State(model=testing.Model(name="cos"), relations=[relation])
    with ctx(ctx.on.update_status(), state) as manager:
        mesh = manager.charm.mesh
        return [policy.model_dump(mode="json") for policy in mesh.mesh_info()]


def _joined(charm: type[Any], provider_bag: dict[str, str]) -> tuple[Any, str | None]:
    relation = testing.Relation(
        "service-mesh", remote_app_name="istio-beacon-k8s", remote_app_data=provider_bag
    )
    ctx = testing.Context(charm, meta=CONSUMER_META, app_name="tempo")
    state = testing.State(model=testing.Model(name="cos"), relations=[relation])
    with ctx(ctx.on.update_status(), state) as manager:
        mesh = manager.charm.mesh
        mesh_type = mesh.mesh_type()
        return mesh.labels(), mesh_type.value if mesh_type else None


@pytest.mark.parametrize("cross_model", [False, True], ids=["same-model", "cross-model"])
def test_consumer_bags_are_byte_identical(cross_model: bool):
    assert _consumer_bag(OurConsumer, cross_model) == _consumer_bag(UpstreamConsumer, cross_model)


@pytest.mark.parametrize("cross_model", [False, True], ids=["same-model", "cross-model"])
def test_upstream_provider_reads_our_policies_as_we_do(cross_model: bool):
    bag = _consumer_bag(OurConsumer, cross_model)

    theirs = _mesh_info(UpstreamProvider, bag)

    # Ours is stricter on purpose (issue 17.1): a consumer may only target its own Service,
    # so the policy for the Service "tempo-gateway" (one per tempo-api app) is dropped.
    own = [policy for policy in theirs if policy["target_service"] in (None, "tempo")]
    assert _mesh_info(OurProvider, bag) == own
    assert len(theirs) == 7  # tempo-api: 2 apps x 2 policies; grafana-source; metrics: 2
    assert len(own) == 5


def test_provider_bags_are_byte_identical():
    assert _provider_bag(OurProvider) == _provider_bag(UpstreamProvider)


def test_our_consumer_reads_the_upstream_provider_as_upstream_does():
    bag = _provider_bag(UpstreamProvider)

    assert _joined(OurConsumer, bag) == _joined(UpstreamConsumer, bag) == (LABELS, "istio")


def test_our_cmr_data_is_what_upstream_writes():
    def cmr_bag(charm: type[ops.CharmBase]) -> dict[str, str]:
        relation = testing.Relation("require-cmr-mesh", remote_app_name="reviews")
        ctx = testing.Context(charm, meta=CONSUMER_META, app_name="tempo")
        state = testing.State(leader=True, model=testing.Model(name="cos"), relations=[relation])
        return dict(
            ctx.run(ctx.on.relation_created(relation), state)
            .get_relation(relation.id)
            .local_app_data
        )

    assert cmr_bag(OurConsumer) == cmr_bag(UpstreamConsumer)


def test_upstream_reads_our_cmr_data():
    # Our requirer's cmr_data, seen by upstream's get_data_from_cmr_relation on the target side.
    def cmr_bag() -> dict[str, str]:
        relation = testing.Relation("require-cmr-mesh", remote_app_name="reviews")
        ctx = testing.Context(OurConsumer, meta=CONSUMER_META, app_name="tempo")
        state = testing.State(leader=True, model=testing.Model(name="cos"), relations=[relation])
        return dict(
            ctx.run(ctx.on.relation_created(relation), state)
            .get_relation(relation.id)
            .local_app_data
        )

    relation = testing.Relation(
        "provide-cmr-mesh", remote_app_name="tempo-remote", remote_app_data=cmr_bag()
    )
    ctx = testing.Context(UpstreamConsumer, meta=CONSUMER_META, app_name="reviews")
    state = testing.State(model=testing.Model(name="bookinfo"), relations=[relation])
    with ctx(ctx.on.update_status(), state) as manager:
        read = upstream.get_data_from_cmr_relation(
            manager.charm.model.relations["provide-cmr-mesh"]
        )

    assert {alias: data.model_dump() for alias, data in read.items()} == {
        "tempo-remote": {"app_name": "tempo", "juju_model_name": "cos"}
    }
