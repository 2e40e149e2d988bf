# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The shared decoding and writing helpers behind every telemetry relation."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, MutableMapping

import pytest
from hypothesis import given, settings

from coordinated_workers.telemetry import DatabagError
from coordinated_workers.telemetry._databag import host_port, http_url, load_json
from service_mesh.databag import canonical_json, update_changed
from tests.support import hostile_data


class RecordingBag(MutableMapping[str, str]):
    """A databag that records every write, the way each one would be a relation-set."""

    def __init__(self, data: dict[str, str]):
        self.data = dict(data)
        self.writes: list[tuple[str, str | None]] = []

    def __getitem__(self, key: str) -> str:
        return self.data[key]

    def __setitem__(self, key: str, value: str) -> None:
        self.writes.append((key, value))
        self.data[key] = value

    def __delitem__(self, key: str) -> None:
        self.writes.append((key, None))
        del self.data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


def test_update_changed_writes_only_differing_keys():
    bag = RecordingBag({"same": "1", "other": "x", "gone": "y"})
    assert update_changed(bag, {"same": "1", "other": "2", "new": "3", "gone": ""})
    assert bag.writes == [("other", "2"), ("new", "3"), ("gone", None)]
    assert bag.data == {"same": "1", "other": "2", "new": "3"}


def test_update_changed_with_nothing_new_writes_nothing():
    bag = RecordingBag({"a": "1"})
    assert not update_changed(bag, {"a": "1", "absent": ""})
    assert bag.writes == []


def test_canonical_json_is_independent_of_key_order():
    assert canonical_json({"b": 1, "a": [{"d": 2, "c": 3}]}) == canonical_json(
        {"a": [{"c": 3, "d": 2}], "b": 1}
    )


def test_load_json_absent_key_is_none_and_deep_nesting_is_a_databag_error():
    assert load_json({}, "k") is None
    with pytest.raises(DatabagError, match="not valid JSON"):
        load_json({"k": "[" * 100_000 + "]" * 100_000}, "k")


@pytest.mark.parametrize(
    "url",
    [
        "http://loki:3100/loki/api/v1/push",
        "https://10.1.2.3/x?y=1",
        "http://[fd00::1]:9090/api/v1/write",
        "http://h.example.com",
    ],
)
def test_http_url_accepts(url: str):
    assert http_url(url, "u") == url


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        (None, "not a string"),
        ("loki:3100", r"not an http\(s\) URL"),
        ("http:///x", r"not an http\(s\) URL"),
        ("http://h:65536/", "not a valid URL"),
        ("http://[::1/", "not a valid URL"),
        ('http://h/"x"', "characters"),
        ("http://h/{x}", "characters"),
        ("http://h/" + "a" * 2048, "longer than"),
    ],
)
def test_http_url_refuses(url: object, reason: str):
    with pytest.raises(DatabagError, match=reason):
        http_url(url, "u")


@pytest.mark.parametrize("value", ["tempo:4317", "10.0.0.1:4317", "[fd00::1]:4317"])
def test_host_port_accepts(value: str):
    assert host_port(value, "u") == value


@pytest.mark.parametrize("value", ["tempo", ":4317", "tempo:4317/x", "tempo:x", "a b:1", 4317])
def test_host_port_refuses(value: object):
    with pytest.raises(DatabagError):
        host_port(value, "u")


@settings(max_examples=300, deadline=None)
@given(hostile_data.url_like)
def test_url_checks_raise_only_databag_errors(value: str):
    for check in (http_url, host_port):
        with contextlib.suppress(DatabagError):
            assert check(value, "u") == value
