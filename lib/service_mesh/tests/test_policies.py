# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""build_mesh_policies and get_data_from_cmr_relation reproduce upstream and skip bad input."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

import ops
import pytest
from ops import testing

from service_mesh import (
    AppPolicy,
    CMRData,
    Endpoint,
    Method,
    MissingEndpointError,
    UnitPolicy,
    build_mesh_policies,
    get_data_from_cmr_relation,
)
from service_mesh._policies import encode_policies

if TYPE_CHECKING:
    pass

META: dict[str, Any] = {
    "name": "tempo",
    "provides": {
        "tempo-api": {"interface": "tempo_http"},
        "grafana-source": {"interface": "grafana_datasource"},
        "metrics-endpoint": {"interface": "prometheus_scrape"},
        "provide-cmr-mesh": {"interface": "cross_model_mesh"},
    },
}

VECTOR_POLICIES = [
    AppPolicy(relation="tempo-api", endpoints=[Endpoint(ports=[3200, 9096])]),
    AppPolicy(
        relation="grafana-source",
        endpoints=[Endpoint(ports=[3200], methods=[Method.get], paths=["/api/*"])],
    ),
    UnitPolicy(relation="metrics-endpoint", ports=[8080]),
]


class _Charm(ops.CharmBase):
    pass


def _model_of(*relations: testing.Relation) -> ops.Model:
    """Run a no-op hook and hand back the live model, as a charm would see it."""
    ctx = testing.Context(_Charm, meta=META, app_name="tempo")
    state = testing.State(leader=True, model=testing.Model(name="cos"), relations=relations)
    with ctx(ctx.on.update_status(), state) as manager:
        return manager.charm.model


def test_vector_policies_in_upstream_order(consumer_vector: dict[str, Any]):
    # Relations deliberately listed out of policy order: policies drive the outer loop.
    model = _model_of(
        testing.Relation("metrics-endpoint", remote_app_name="prometheus"),
        testing.Relation("tempo-api", remote_app_name="grafana"),
        testing.Relation("grafana-source", remote_app_name="grafana"),
    )

    policies = build_mesh_policies(model.relations, "tempo", "cos", VECTOR_POLICIES)

    assert [p.model_dump(mode="json") for p in policies] == consumer_vector["decoded_policies"]
    assert encode_policies(policies) == consumer_vector["databag"]["policies"]


def test_cross_model_source_gets_its_real_identity(consumer_vector: dict[str, Any]):
    cmr_bag = consumer_vector["cross_model_variant"]["provide_cmr_mesh_remote_app_databag"]
    model = _model_of(
        testing.Relation("tempo-api", remote_app_name="grafana-remote"),
        testing.Relation(
            "provide-cmr-mesh", remote_app_name="grafana-remote", remote_app_data=cmr_bag
        ),
    )

    cmr = get_data_from_cmr_relation(model.relations["provide-cmr-mesh"])
    policies = build_mesh_policies(model.relations, "tempo", "cos", VECTOR_POLICIES, cmr)

    assert cmr == {"grafana-remote": CMRData(app_name="grafana", juju_model_name="observability")}
    expected = consumer_vector["cross_model_variant"]["databag"]["policies"]
    assert encode_policies(policies) == expected


def test_one_relation_per_related_app_in_model_order():
    model = _model_of(
        testing.Relation("tempo-api", remote_app_name="grafana"),
        testing.Relation("tempo-api", remote_app_name="otel"),
    )

    policies = build_mesh_policies(model.relations, "tempo", "cos", VECTOR_POLICIES[:1])

    # ops.testing lists an endpoint's relations in no fixed order (Juju: by relation id), so
    # compare with the order the model gives rather than a literal one.
    in_model_order = [relation.app.name for relation in model.relations["tempo-api"]]
    assert sorted(in_model_order) == ["grafana", "otel"]
    assert [p.source_app_name for p in policies] == in_model_order


def test_unit_policy_without_ports_allows_every_port():
    model = _model_of(testing.Relation("metrics-endpoint", remote_app_name="prometheus"))

    (policy,) = build_mesh_policies(
        model.relations, "tempo", "cos", [UnitPolicy(relation="metrics-endpoint")]
    )

    assert policy.endpoints == []


def test_invalid_policy_is_skipped_and_the_others_kept(caplog: pytest.LogCaptureFixture):
    model = _model_of(testing.Relation("tempo-api", remote_app_name="grafana"))
    policies = [
        AppPolicy(relation="tempo-api", endpoints=[], service="tempo-svc"),
        # Not a Service name Kubernetes accepts, so the policy could only ever fail to apply.
        AppPolicy(relation="tempo-api", endpoints=[], service="Tempo_Svc"),
    ]

    with caplog.at_level(logging.WARNING):
        built = build_mesh_policies(model.relations, "tempo", "cos", policies)

    assert [p.target_service for p in built] == ["tempo-svc"]
    assert "skipped the mesh policy for 'tempo-api' from 'grafana'" in caplog.text


def test_policy_on_undeclared_endpoint_names_it():
    model = _model_of()

    with pytest.raises(MissingEndpointError, match="'tempo-ap'"):
        build_mesh_policies(
            model.relations, "tempo", "cos", [AppPolicy(relation="tempo-ap", endpoints=[])]
        )


@pytest.mark.parametrize(
    "bad",
    [
        "not json",
        '{"app_name": "grafana"}',
        '["grafana", "observability"]',
        '{"app_name": "*", "juju_model_name": "observability"}',
        '{"app_name": "grafana", "juju_model_name": "obs/sa/x"}',
    ],
    ids=["malformed-json", "missing-field", "wrong-type", "wildcard-app", "path-in-model"],
)
def test_bad_cmr_data_is_skipped_per_relation(bad: str, caplog: pytest.LogCaptureFixture):
    good = json.dumps({"app_name": "loki", "juju_model_name": "logs"})
    model = _model_of(
        testing.Relation(
            "provide-cmr-mesh", remote_app_name="bad", remote_app_data={"cmr_data": bad}
        ),
        testing.Relation(
            "provide-cmr-mesh", remote_app_name="good", remote_app_data={"cmr_data": good}
        ),
        testing.Relation("provide-cmr-mesh", remote_app_name="silent"),
    )

    with caplog.at_level(logging.WARNING):
        cmr = get_data_from_cmr_relation(model.relations["provide-cmr-mesh"])

    assert cmr == {"good": CMRData(app_name="loki", juju_model_name="logs")}
    assert "invalid cmr_data from 'bad'" in caplog.text
    assert "silent" not in caplog.text
