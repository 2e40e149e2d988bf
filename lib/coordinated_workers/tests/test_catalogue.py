# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The catalogue entry, byte for byte as the catalogue library (v1.3) writes it."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterator
from typing import Any

import pytest
from ops import testing

from coordinated_workers._catalogue import CatalogueItem, catalogue_bag
from coordinated_workers.testing import worker_relation
from service_mesh.testing import FakeKubernetes
from tests.support.coordinators import (
    COORDINATOR_CONTAINERS,
    coordinator_charm,
    coordinator_state,
    kubernetes_with,
    minimal_coordinator_config,
)

VECTOR = json.loads(
    (pathlib.Path(__file__).parents[3] / "tests/vectors/cos/catalogue-consumer.json").read_text()
)


def _item(variant: str) -> CatalogueItem:
    given: dict[str, Any] = dict(VECTOR["variants"][variant]["item_input"])
    raw = VECTOR["variants"][variant]["relation"]["databags"]["coordinator"]
    if given.get("api_endpoints"):  # the charm's order, as the raw bag keeps it
        given["api_endpoints"] = json.loads(raw["api_endpoints"])
    return CatalogueItem(**given)


def _expected(variant: str) -> dict[str, str]:
    return VECTOR["variants"][variant]["relation"]["databags"]["coordinator"]


@pytest.mark.parametrize("variant", sorted(VECTOR["variants"]))
def test_the_bag_is_the_librarys(variant: str):
    written = {k: v for k, v in catalogue_bag(_item(variant)).items() if v}  # "" deletes
    assert written == _expected(variant)


ITEM = _item("tempo_like_no_url")
CatalogueCoordinator = coordinator_charm(
    minimal_coordinator_config(
        role="a",
        workload_config="",
        # The charm builds its URLs on the host it is given: the Service FQDN.
        catalogue=lambda host: (
            ITEM
            if host == "coordinator.obs.svc.cluster.local"
            else CatalogueItem(name="wrong host", icon="x")
        ),
    )
)

META = {
    "name": "coordinator",
    "containers": COORDINATOR_CONTAINERS,
    "provides": {"cluster": {"interface": "cluster"}},
    "requires": {"catalogue": {"interface": "catalogue"}},
}


@pytest.fixture
def kube() -> Iterator[FakeKubernetes]:
    with kubernetes_with("coordinator", "obs") as fake:
        yield fake


def _run(leader: bool) -> testing.Relation:
    ctx = testing.Context(CatalogueCoordinator, meta=META, app_name="coordinator")
    catalogue = testing.Relation("catalogue", interface="catalogue", remote_app_name="catalogue")
    state = coordinator_state(
        catalogue, worker_relation("w", ["a"], model="obs"), model="obs", leader=leader
    )
    out = ctx.run(ctx.on.relation_joined(catalogue), state)
    relation = out.get_relation(catalogue.id)
    assert isinstance(relation, testing.Relation)
    return relation


def test_the_leader_publishes_the_entry_as_the_library_does(kube):
    assert _run(leader=True).local_app_data == _expected("tempo_like_no_url")


def test_other_units_publish_nothing(kube):
    assert _run(leader=False).local_app_data == {}


def test_empty_fields_delete_their_keys():
    bag = catalogue_bag(CatalogueItem(name="n", icon="i"))
    assert bag == {
        "name": "n",
        "url": "",
        "icon": "i",
        "description": "",
        "api_docs": "",
        "api_endpoints": "null",
    }
