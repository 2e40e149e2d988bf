# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""prometheus_remote_write requirer: the URLs we read from provider units."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ops import testing

from coordinated_workers.telemetry import DatabagError, Reading, RemoteWriteRequirer
from coordinated_workers.telemetry.remote_write import remote_write_url
from tests.support import hostile_data, interface_schemas
from tests.support.charm_hook import run_in_hook

MODEL = testing.Model(name="test", uuid="00000000-0000-4000-8000-000000000004")
META: dict[str, Any] = {
    "name": "coordinator-k8s",
    "requires": {"send-remote-write": {"interface": "prometheus_remote_write"}},
}
PROM_0 = "http://prometheus-0.prometheus-endpoints.cos.svc.cluster.local:9090/api/v1/write"
PROM_1 = "http://prometheus-1.prometheus-endpoints.cos.svc.cluster.local:9090/api/v1/write"
MIMIR = "http://mimir.cos.svc.cluster.local:8080/api/v1/push"


def _unit_bag(url: str) -> dict[str, str]:
    """A provider unit's databag, checked against the prometheus_remote_write v0 schema."""
    bag = {"remote_write": json.dumps({"url": url})}
    interface_schemas.validate(
        bag, interface_schemas.REMOTE_WRITE_PROVIDER_UNIT, interface_schemas.REMOTE_WRITE_JSON_KEYS
    )
    return bag


def _relation(units: dict[int, dict[str, str]], app: str = "prometheus") -> testing.Relation:
    return testing.Relation(
        "send-remote-write",
        "prometheus_remote_write",
        remote_app_name=app,
        remote_units_data=units,
    )


def _urls(*relations: testing.Relation) -> Reading[list[str]]:
    state = testing.State(relations=list(relations), model=MODEL)
    return run_in_hook(META, state, lambda charm: RemoteWriteRequirer(charm).urls())[1]


def test_urls_from_every_unit_of_every_relation_sorted():
    reading = _urls(
        _relation({0: _unit_bag(MIMIR)}, app="mimir"),
        _relation({1: _unit_bag(PROM_1), 0: _unit_bag(PROM_0)}),
    )
    assert reading.value == sorted([MIMIR, PROM_0, PROM_1])
    assert reading.problems == ()


def test_units_sharing_one_url_give_it_once():
    reading = _urls(_relation({0: _unit_bag(MIMIR), 1: _unit_bag(MIMIR)}, app="mimir"))
    assert reading.value == [MIMIR]


def test_unit_without_data_is_skipped_silently():
    reading = _urls(_relation({0: {}, 1: _unit_bag(PROM_1)}))
    assert reading == Reading([PROM_1], ())


@pytest.mark.parametrize(
    ("remote_write", "reason"),
    [
        ("{", "not valid JSON"),
        ('"http://x:9090/api/v1/write"', "not an object with 'url'"),
        ('{"url": null}', "not a string"),
        ('{"url": "ftp://x/write"}', "not an http(s) URL"),
        ('{"url": "http://x/write\\n"}', "characters a URL cannot contain"),
    ],
)
def test_malformed_unit_is_skipped_with_a_problem(remote_write: str, reason: str):
    reading = _urls(_relation({0: {"remote_write": remote_write}, 1: _unit_bag(PROM_1)}))
    assert reading.value == [PROM_1]
    [problem] = reading.problems
    assert problem.source == "prometheus/0"
    assert reason in problem.reason


@settings(max_examples=300, deadline=None)
@given(
    hostile_data.databags("remote_write", st.fixed_dictionaries({"url": hostile_data.url_like}))
)
def test_remote_write_url_never_raises_anything_but_databag_error(bag: dict[str, str]):
    try:
        url = remote_write_url(bag)
    except DatabagError:
        return
    assert url is None or url.startswith(("http://", "https://"))


# Each run goes through ops.testing (~15 ms); the parser itself is fuzzed harder above.
@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        hostile_data.databags(
            "remote_write", st.fixed_dictionaries({"url": hostile_data.url_like})
        ),
        min_size=1,
        max_size=3,
    )
)
def test_requirer_survives_any_unit_data(bags: list[dict[str, str]]):
    reading = _urls(_relation(dict(enumerate(bags))))
    assert len(reading.value) + len(reading.problems) <= len(bags)
