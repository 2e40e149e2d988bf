# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""tracing v2 requirer: protocol requests we write and receivers we read."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import ops
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ops import testing

from coordinated_workers.telemetry import DatabagError, Reading, TracingRequirer
from coordinated_workers.telemetry.tracing import receivers_from_bag
from tests.support import hostile_data, interface_schemas
from tests.support.charm_hook import run_in_hook

if TYPE_CHECKING:
    from collections.abc import Callable

MODEL = testing.Model(name="test", uuid="00000000-0000-4000-8000-000000000003")
META: dict[str, Any] = {
    "name": "coordinator-k8s",
    "requires": {
        "charm-tracing": {"interface": "tracing", "limit": 1},
        "workload-tracing": {"interface": "tracing", "limit": 1},
    },
}
OTLP_HTTP = "http://tempo.cos.svc.cluster.local:4318"


def _receiver(name: str, transport: str, url: str) -> dict[str, object]:
    return {"protocol": {"name": name, "type": transport}, "url": url}


def _provider_bag(*receivers: dict[str, object]) -> dict[str, str]:
    """A provider's app databag, checked against the tracing v2 schema."""
    bag = {"receivers": json.dumps(list(receivers))}
    interface_schemas.validate(
        bag, interface_schemas.TRACING_PROVIDER_APP, interface_schemas.TRACING_JSON_KEYS
    )
    return bag


def _tracing(endpoint: str = "charm-tracing", **fields: Any) -> testing.Relation:
    return testing.Relation(endpoint, "tracing", remote_app_name="tempo", **fields)


def _run(
    state: testing.State, action: Callable[[ops.CharmBase], Any]
) -> tuple[testing.State, Any]:
    return run_in_hook(META, state, action)


def _request(
    protocols: list[str], endpoint: str = "charm-tracing"
) -> Callable[[ops.CharmBase], bool]:
    return lambda charm: TracingRequirer(charm, endpoint, protocols).request_protocols()


def _receivers(*relations: testing.Relation) -> Reading[dict[str, str]]:
    state = testing.State(relations=list(relations), model=MODEL)
    _, reading = _run(state, lambda charm: TracingRequirer(charm, "charm-tracing", []).receivers())
    return reading


# --- requesting protocols -------------------------------------------------------------------


def test_leader_requests_protocols_sorted_and_unique_as_the_schema_says():
    relation = _tracing()
    out, changed = _run(
        testing.State(leader=True, relations=[relation], model=MODEL),
        _request(["otlp_http", "otlp_grpc", "otlp_http"]),
    )

    assert changed
    bag = out.get_relation(relation.id).local_app_data
    assert bag == {"receivers": '["otlp_grpc", "otlp_http"]'}
    interface_schemas.validate(
        bag, interface_schemas.TRACING_REQUIRER_APP, interface_schemas.TRACING_JSON_KEYS
    )


def test_non_leader_requests_nothing_and_does_not_fail():
    relation = _tracing()
    out, changed = _run(
        testing.State(leader=False, relations=[relation], model=MODEL), _request(["otlp_http"])
    )
    assert not changed
    assert out.get_relation(relation.id).local_app_data == {}


def test_unchanged_request_writes_nothing():
    relation = _tracing(local_app_data={"receivers": '["otlp_http"]'})
    out, changed = _run(
        testing.State(leader=True, relations=[relation], model=MODEL), _request(["otlp_http"])
    )
    assert not changed
    assert out.get_relation(relation.id).local_app_data == {"receivers": '["otlp_http"]'}


def test_changed_request_replaces_the_old_one():
    relation = _tracing(local_app_data={"receivers": '["zipkin"]'})
    out, changed = _run(
        testing.State(leader=True, relations=[relation], model=MODEL), _request(["otlp_http"])
    )
    assert changed
    assert out.get_relation(relation.id).local_app_data == {"receivers": '["otlp_http"]'}


def test_requesting_no_protocols_withdraws_the_request():
    relation = _tracing(local_app_data={"receivers": '["otlp_http"]'})
    out, changed = _run(
        testing.State(leader=True, relations=[relation], model=MODEL), _request([])
    )
    assert changed
    assert out.get_relation(relation.id).local_app_data == {}


def test_requesting_no_protocols_on_a_clean_bag_writes_nothing():
    relation = _tracing()
    out, changed = _run(
        testing.State(leader=True, relations=[relation], model=MODEL), _request([])
    )
    assert not changed
    assert out.get_relation(relation.id).local_app_data == {}


def test_request_touches_only_its_own_endpoint():
    charm_tracing, workload_tracing = _tracing(), _tracing("workload-tracing")
    out, _ = _run(
        testing.State(leader=True, relations=[charm_tracing, workload_tracing], model=MODEL),
        _request(["otlp_http"], endpoint="workload-tracing"),
    )
    assert out.get_relation(charm_tracing.id).local_app_data == {}
    assert out.get_relation(workload_tracing.id).local_app_data == {"receivers": '["otlp_http"]'}


@pytest.mark.parametrize("bad", ["OTLP", "otlp http", "", "a" * 65, "otlp/http"])
def test_invalid_protocol_names_are_refused(bad: str):
    # ops.testing wraps what the charm raised; the message carries the ValueError.
    with pytest.raises(testing.errors.UncaughtCharmError, match=r"ValueError.*invalid tracing"):
        _run(testing.State(model=MODEL), _request([bad]))


# --- reading receivers ----------------------------------------------------------------------


def test_receivers_are_read_by_protocol_including_schemeless_grpc():
    bag = _provider_bag(
        _receiver("otlp_http", "http", OTLP_HTTP),
        _receiver("otlp_grpc", "grpc", "tempo.cos.svc.cluster.local:4317"),
    )
    reading = _receivers(_tracing(remote_app_data=bag))
    assert reading.value == {
        "otlp_grpc": "tempo.cos.svc.cluster.local:4317",
        "otlp_http": OTLP_HTTP,
    }
    assert reading.problems == ()


def test_grpc_receiver_with_a_scheme_is_accepted():
    bag = _provider_bag(_receiver("otlp_grpc", "grpc", "https://tempo:4317"))
    assert receivers_from_bag(bag) == {"otlp_grpc": "https://tempo:4317"}


def test_first_receiver_wins_for_a_repeated_protocol():
    bag = _provider_bag(
        _receiver("otlp_http", "http", OTLP_HTTP), _receiver("otlp_http", "http", "http://x:1")
    )
    assert receivers_from_bag(bag) == {"otlp_http": OTLP_HTTP}


def test_provider_that_has_not_published_reads_as_empty_without_problems():
    reading = _receivers(_tracing())
    assert reading == Reading[dict[str, str]]({}, ())


@pytest.mark.parametrize(
    ("receivers", "reason"),
    [
        ("nope", "not valid JSON"),
        ('{"otlp_http": "http://x:1"}', "not a list"),
        ('["otlp_http"]', "not an object with 'protocol'"),
        ('[{"protocol": "otlp_http", "url": "http://x:1"}]', "not an object with 'name'"),
        ('[{"protocol": {"name": "otlp_http", "type": "http"}}]', "not an object with 'url'"),
        ('[{"protocol": {"name": "otlp_http", "type": "udp"}, "url": "http://x:1"}]', "transport"),
        (
            '[{"protocol": {"name": "OTLP;", "type": "http"}, "url": "http://x:1"}]',
            "protocol name",
        ),
        ('[{"protocol": {"name": "otlp_http", "type": "http"}, "url": "x:1"}]', "http(s) URL"),
        ('[{"protocol": {"name": "otlp_grpc", "type": "grpc"}, "url": "x"}]', "host:port"),
    ],
)
def test_malformed_bag_makes_the_relation_absent_with_a_problem(receivers: str, reason: str):
    reading = _receivers(_tracing(remote_app_data={"receivers": receivers}))
    assert reading.value == {}
    [problem] = reading.problems
    assert problem.source == "tempo"
    assert reason in problem.reason


@settings(max_examples=300, deadline=None)
@given(
    hostile_data.databags(
        "receivers",
        st.lists(
            st.fixed_dictionaries(
                {
                    "protocol": st.fixed_dictionaries(
                        {
                            "name": st.sampled_from(["otlp_http", "otlp_grpc"])
                            | st.text(max_size=8),
                            "type": st.sampled_from(["http", "grpc"]) | hostile_data.json_values,
                        }
                    )
                    | hostile_data.json_values,
                    "url": hostile_data.url_like,
                }
            ),
            max_size=3,
        ),
    )
)
def test_receivers_from_bag_never_raises_anything_but_databag_error(bag: dict[str, str]):
    try:
        receivers = receivers_from_bag(bag)
    except DatabagError:
        return
    assert receivers is None or all(isinstance(url, str) for url in receivers.values())


# Each run goes through ops.testing (~15 ms); the parser itself is fuzzed harder above.
@settings(max_examples=60, deadline=None)
@given(hostile_data.databags("receivers", st.lists(hostile_data.json_values, max_size=3)))
def test_requirer_survives_any_provider_data(bag: dict[str, str]):
    reading = _receivers(_tracing(remote_app_data=bag))
    assert len(reading.problems) <= 1
