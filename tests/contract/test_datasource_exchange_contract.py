# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Our grafana_datasource_exchange bags against cosl's ``DatasourceExchange``, both ways.

cosl is the maintained implementation (upstream coordinated-workers builds on it). Here:
its class, run in a tiny charm through ops.testing, reads what our coordinator writes and
writes what ours reads; for generated datasources our bag is byte for byte the one its
``publish`` writes; for generated hostile bags we accept exactly the bags it accepts, with the
same datasources; and every bag we write matches the interface schema.
"""

from __future__ import annotations

import json
from typing import Any

import ops
import pytest
from cosl.interfaces.datasource_exchange import DatasourceExchange as CoslExchange
from cosl.interfaces.datasource_exchange import DSExchangeAppData
from cosl.interfaces.utils import DataValidationError
from hypothesis import given, settings
from hypothesis import strategies as st
from ops import testing

from coordinated_workers._datasource_exchange import (
    DatasourceExchange,
    DatasourceExchangeError,
    GrafanaDatasource,
    datasources_bag,
    parse_datasources,
)
from tests.support import hostile_data as hostile
from tests.support import interface_schemas as schemas

pytestmark = pytest.mark.contract

META: dict[str, Any] = {
    "name": "tempo",
    "provides": {"send-datasource": {"interface": "grafana_datasource_exchange"}},
    "requires": {"receive-datasource": {"interface": "grafana_datasource_exchange"}},
}
OURS = (
    GrafanaDatasource("tempo", "tempo-uid-b", "grafana-1"),
    GrafanaDatasource("tempo", "tempo-uid-a", "grafana-2"),
)


class CoslCharm(ops.CharmBase):
    """cosl's class on both endpoints: publishes ``PUBLISH``, records what it received."""

    PUBLISH: tuple[dict[str, str], ...] = ()
    received: tuple[Any, ...] = ()

    def __init__(self, framework: ops.Framework) -> None:
        super().__init__(framework)
        self.exchange = CoslExchange(
            self, provider_endpoint="send-datasource", requirer_endpoint="receive-datasource"
        )
        framework.observe(self.on.update_status, self._on_update_status)

    def _on_update_status(self, _: ops.EventBase) -> None:
        self.exchange.publish(list(self.PUBLISH))  # type: ignore[arg-type]
        CoslCharm.received = tuple(self.exchange.received_datasources)


class OurCharm(ops.CharmBase):
    """Our class on both endpoints."""

    received: tuple[GrafanaDatasource, ...] = ()

    def __init__(self, framework: ops.Framework) -> None:
        super().__init__(framework)
        self.exchange = DatasourceExchange(self, "send-datasource", "receive-datasource")
        framework.observe(self.on.update_status, self._on_update_status)

    def _on_update_status(self, _: ops.EventBase) -> None:
        self.exchange.publish(OURS)
        OurCharm.received = self.exchange.received().value


def _run(charm: type[ops.CharmBase], remote_bag: dict[str, str]) -> list[dict[str, str]]:
    """One leader update-status with a remote app on each endpoint; our bags afterwards."""
    ctx = testing.Context(charm, meta=META)
    relations = [
        testing.Relation("send-datasource", remote_app_name="loki", remote_app_data=remote_bag),
        testing.Relation("receive-datasource", remote_app_name="mimir"),
    ]
    out = ctx.run(ctx.on.update_status(), testing.State(leader=True, relations=relations))
    return [dict(r.local_app_data) for r in out.relations]


def test_cosl_reads_what_we_write():
    written = _run(OurCharm, {})
    assert written[0] == written[1] == datasources_bag(OURS)
    CoslCharm.PUBLISH = ()
    _run(CoslCharm, written[0])
    assert [(d.type, d.uid, d.grafana_uid) for d in CoslCharm.received] == [
        ("tempo", "tempo-uid-a", "grafana-2"),
        ("tempo", "tempo-uid-b", "grafana-1"),
    ]


def test_we_read_what_cosl_writes_and_write_what_it_writes():
    CoslCharm.PUBLISH = tuple(
        {"type": d.type, "uid": d.uid, "grafana_uid": d.grafana_uid} for d in OURS
    )
    cosl_bags = _run(CoslCharm, {})
    assert cosl_bags[0] == datasources_bag(OURS)  # the same bytes for the same datasources
    _run(OurCharm, cosl_bags[0])
    assert OurCharm.received == tuple(sorted(OURS, key=lambda d: d.uid))


def test_our_bag_matches_the_interface_schema():
    schemas.validate(
        datasources_bag(OURS),
        schemas.GRAFANA_DATASOURCE_EXCHANGE_APP,
        schemas.GRAFANA_DATASOURCE_EXCHANGE_JSON_KEYS,
    )


# Text cosl can serialize: pydantic refuses lone surrogates (Cs), which Juju could not carry
# anyway (relation-set takes UTF-8).
_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
_datasources = st.lists(st.builds(GrafanaDatasource, _text, _text, _text), max_size=5)


def _cosl_bag(datasources: list[GrafanaDatasource]) -> dict[str, str]:
    """What cosl's ``publish`` writes (it is these two lines per relation)."""
    raw = [{"type": d.type, "uid": d.uid, "grafana_uid": d.grafana_uid} for d in datasources]
    encoded = json.dumps(sorted(raw, key=lambda ds: ds["uid"]))
    return dict(DSExchangeAppData(datasources=encoded).dump({}))  # type: ignore[call-arg]


@settings(max_examples=300, deadline=None)
@given(datasources=_datasources)
def test_our_bag_is_cosls_byte_for_byte(datasources):
    ours = datasources_bag(datasources)
    assert ours == _cosl_bag(datasources)
    schemas.validate(
        ours,
        schemas.GRAFANA_DATASOURCE_EXCHANGE_APP,
        schemas.GRAFANA_DATASOURCE_EXCHANGE_JSON_KEYS,
    )


_near_valid = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "type": _text | st.integers() | st.none(),
            "uid": _text | st.integers(),
            "grafana_uid": _text | st.lists(_text, max_size=1),
            "extra": hostile.json_values,
        },
    ),
    max_size=3,
)
_values = st.one_of(
    st.text(st.characters(exclude_categories=["Cs"]), max_size=30),
    hostile.encoded(hostile.json_values),
    hostile.deep_json,
    hostile.encoded(_near_valid),
)


@settings(max_examples=500, deadline=None)
@given(value=st.none() | _values)
def test_we_accept_exactly_what_cosl_accepts(value):
    bag = {} if value is None else {"datasources": value}
    try:
        theirs = [(d.type, d.uid, d.grafana_uid) for d in DSExchangeAppData.load(bag).datasources]
    except DataValidationError:
        theirs = None
    try:
        ours = [(d.type, d.uid, d.grafana_uid) for d in parse_datasources(bag)]
    except DatasourceExchangeError:
        ours = None
    if theirs is not None:
        theirs = sorted(theirs, key=lambda d: d[1])  # cosl sorts when it merges relations
    assert ours == theirs
