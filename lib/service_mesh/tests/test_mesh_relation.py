# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""service_mesh.testing.mesh_relation builds the beacon's side as the provider writes it."""

from __future__ import annotations

import json

from service_mesh.testing import mesh_relation


def test_defaults_are_an_istio_beacon_with_the_ambient_label():
    relation = mesh_relation()

    assert (relation.endpoint, relation.interface, relation.limit) == (
        "service-mesh",
        "service_mesh",
        1,
    )
    assert relation.remote_app_name == "istio-beacon-k8s"
    assert json.loads(relation.remote_app_data["labels"]) == {"istio.io/dataplane-mode": "ambient"}
    assert json.loads(relation.remote_app_data["mesh_type"]) == "istio"


def test_a_provider_from_before_mesh_type_and_a_bag_of_ones_own():
    assert "mesh_type" not in mesh_relation({}, mesh_type=None).remote_app_data
    assert mesh_relation(remote_app_data={"labels": "{"}).remote_app_data == {"labels": "{"}
