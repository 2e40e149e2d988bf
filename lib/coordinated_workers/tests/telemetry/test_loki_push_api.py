# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""loki_push_api requirer: reading Loki push URLs, and the Pebble log forwarding layer."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import ops
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ops import testing

from coordinated_workers.telemetry import (
    DatabagError,
    LokiPushApiRequirer,
    Reading,
    enabled_log_targets,
    log_forwarding_layer,
    topology_labels,
)
from coordinated_workers.telemetry.loki_push_api import log_target_name, push_url
from tests.support import hostile_data, interface_schemas
from tests.support.charm_hook import run_in_hook

if TYPE_CHECKING:
    from collections.abc import Callable

MODEL = testing.Model(name="test", uuid="00000000-0000-4000-8000-000000000002")
META: dict[str, Any] = {
    "name": "coordinator-k8s",
    "requires": {"logging": {"interface": "loki_push_api"}},
    "containers": {"workload": {}},
}
LOKI_0 = "http://loki-0.loki-endpoints.cos.svc.cluster.local:3100/loki/api/v1/push"
LOKI_1 = "http://loki-1.loki-endpoints.cos.svc.cluster.local:3100/loki/api/v1/push"


def _loki_unit_bag(url: str) -> dict[str, str]:
    """A Loki unit's databag as the Loki charm writes it."""
    bag = {
        "endpoint": json.dumps({"url": url}),
        "public_address": "loki-0.loki-endpoints.cos.svc.cluster.local",
    }
    interface_schemas.validate(
        bag,
        interface_schemas.LOKI_PUSH_API_PROVIDER_UNIT,
        interface_schemas.LOKI_PUSH_API_JSON_KEYS,
    )
    return bag


def _logging(units: dict[int, dict[str, str]], app: str = "loki", **kw: Any) -> testing.Relation:
    return testing.Relation(
        "logging", "loki_push_api", remote_app_name=app, remote_units_data=units, **kw
    )


def _run(state: testing.State, action: Callable[[ops.CharmBase], Any]) -> Any:
    return run_in_hook(META, state, action)[1]


def _push_urls(*relations: testing.Relation) -> Reading[dict[str, str]]:
    state = testing.State(relations=list(relations), model=MODEL)
    return _run(state, lambda charm: LokiPushApiRequirer(charm).push_urls())


def test_push_urls_are_keyed_by_loki_unit():
    reading = _push_urls(_logging({0: _loki_unit_bag(LOKI_0), 1: _loki_unit_bag(LOKI_1)}))
    assert reading.value == {"loki/0": LOKI_0, "loki/1": LOKI_1}
    assert reading.problems == ()


def test_units_across_relations_are_merged_in_sorted_order():
    reading = _push_urls(
        _logging({0: _loki_unit_bag(LOKI_1)}, app="loki-b"),
        _logging({0: _loki_unit_bag(LOKI_0)}, app="loki-a"),
    )
    assert list(reading.value) == ["loki-a/0", "loki-b/0"]


def test_unit_that_has_not_published_is_skipped_silently():
    reading = _push_urls(_logging({0: {}, 1: _loki_unit_bag(LOKI_1)}))
    assert reading.value == {"loki/1": LOKI_1}
    assert reading.problems == ()


@pytest.mark.parametrize(
    ("endpoint", "reason"),
    [
        ("not json", "not valid JSON"),
        ('["http://x"]', "not an object with 'url'"),
        ('{"uri": "http://x"}', "not an object with 'url'"),
        ('{"url": 3}', "not a string"),
        ('{"url": "loki:3100/push"}', "not an http(s) URL"),
        ('{"url": "http://loki:3100/push now"}', "characters a URL cannot contain"),
        ('{"url": "http://loki:99999/push"}', "not a valid URL"),
    ],
)
def test_malformed_unit_is_skipped_with_a_problem(endpoint: str, reason: str):
    reading = _push_urls(_logging({0: {"endpoint": endpoint}, 1: _loki_unit_bag(LOKI_1)}))

    assert reading.value == {"loki/1": LOKI_1}
    [problem] = reading.problems
    assert problem.source == "loki/0"
    assert problem.relation.startswith("logging:")
    assert reason in problem.reason
    assert reason in str(problem)


@settings(max_examples=300, deadline=None)
@given(hostile_data.databags("endpoint", st.fixed_dictionaries({"url": hostile_data.url_like})))
def test_push_url_never_raises_anything_but_databag_error(bag: dict[str, str]):
    try:
        url = push_url(bag)
    except DatabagError:
        return
    assert url is None or url.startswith(("http://", "https://"))


# Each run goes through ops.testing (~15 ms); the parser itself is fuzzed harder above.
@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        hostile_data.databags("endpoint", st.fixed_dictionaries({"url": hostile_data.url_like})),
        min_size=1,
        max_size=3,
    )
)
def test_requirer_survives_any_unit_data(bags: list[dict[str, str]]):
    reading = _push_urls(_logging(dict(enumerate(bags))))
    assert set(reading.value) | {p.source for p in reading.problems} <= {
        f"loki/{n}" for n in range(len(bags))
    }


# --- Pebble log forwarding -----------------------------------------------------------------

LABELS = {"juju_unit": "worker/0", "product": "Juju"}


def test_one_loki_target_per_url_with_labels_and_services():
    layer: dict[str, Any] = dict(
        log_forwarding_layer({"loki/1": LOKI_1, "loki/0": LOKI_0}, LABELS, ["workload"])
    )

    assert layer == {
        "log-targets": {
            "loki-loki-0": {
                "override": "replace",
                "type": "loki",
                "location": LOKI_0,
                "services": ["workload"],
                "labels": LABELS,
            },
            "loki-loki-1": {
                "override": "replace",
                "type": "loki",
                "location": LOKI_1,
                "services": ["workload"],
                "labels": LABELS,
            },
        }
    }
    assert list(layer["log-targets"]) == ["loki-loki-0", "loki-loki-1"]


def test_vanished_loki_target_is_switched_off_and_foreign_targets_left_alone():
    current = {
        log_target_name("loki/0"): LOKI_0,
        log_target_name("loki/1"): LOKI_1,
        "someone-elses-target": "http://elsewhere:3100/loki/api/v1/push",
    }
    layer = log_forwarding_layer({"loki/0": LOKI_0}, LABELS, ["all"], current_targets=current)

    targets: dict[str, Any] = dict(layer.get("log-targets", {}))
    assert set(targets) == {"loki-loki-0", "loki-loki-1"}
    assert targets["loki-loki-1"] == {
        "override": "replace",
        "type": "loki",
        "location": LOKI_1,
        "services": ["-all"],
    }


def test_no_urls_switches_every_owned_target_off():
    layer = log_forwarding_layer({}, LABELS, ["all"], current_targets={"loki-loki-0": LOKI_0})
    assert layer.get("log-targets", {})["loki-loki-0"].get("services") == ["-all"]


def test_reserved_pebble_labels_are_refused():
    with pytest.raises(ValueError, match="pebble_"):
        log_forwarding_layer({"loki/0": LOKI_0}, {"pebble_service": "x"}, ["all"])


def test_layer_is_accepted_by_ops_and_round_trips_through_a_plan():
    layer = ops.pebble.Layer(
        log_forwarding_layer(
            {"loki/0": LOKI_0}, LABELS, ["all"], current_targets={"loki-loki-1": LOKI_1}
        )
    )
    plan = ops.pebble.Plan(layer.to_yaml())

    # The switched-off target is no longer "enabled"; the live one is.
    assert enabled_log_targets(plan) == {"loki-loki-0": LOKI_0}


def test_enabled_log_targets_reads_the_containers_plan():
    layer = log_forwarding_layer({"loki/0": LOKI_0}, LABELS, ["all"])
    container = testing.Container(
        "workload", can_connect=True, layers={"logging": ops.pebble.Layer(layer)}
    )

    def read(charm: ops.CharmBase) -> dict[str, str]:
        return enabled_log_targets(charm.unit.get_container("workload").get_plan())

    assert _run(testing.State(containers=[container], model=MODEL), read) == {
        "loki-loki-0": LOKI_0
    }


def test_topology_labels_identify_the_unit():
    labels = _run(testing.State(model=MODEL), topology_labels)
    assert labels == {
        "product": "Juju",
        "charm": "coordinator-k8s",
        "juju_model": "test",
        "juju_model_uuid": MODEL.uuid,
        "juju_application": "coordinator-k8s",
        "juju_unit": "coordinator-k8s/0",
    }
