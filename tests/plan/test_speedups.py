# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The cheaper machinery a plan runs its hooks under changes no result, and is put back after."""

from __future__ import annotations

import contextlib
import importlib
import threading

import pytest
import yaml
from opentelemetry.sdk import resources
from ops._private import yaml as ops_yaml

from tools.plan import charms, footprint, render, simulate, speedups, topology

_RUNTIME = importlib.import_module("scenario._runtime")
_KUBECONFIG = importlib.import_module("lightkube.config.kubeconfig")
needs_libyaml = pytest.mark.skipif(
    not yaml.__with_libyaml__, reason="PyYAML was built without libyaml: nothing is switched"
)


@needs_libyaml
def test_ops_testing_and_lightkube_get_libyaml_only_inside_the_block():
    with speedups.quicker_machinery():
        assert isinstance(_RUNTIME.yaml, speedups.LibYAML)
        assert isinstance(_KUBECONFIG.yaml, speedups.LibYAML)
        assert _RUNTIME.yaml.YAMLError is yaml.YAMLError  # every other name is PyYAML's
    assert _RUNTIME.yaml is yaml
    assert _KUBECONFIG.yaml is yaml


def test_without_libyaml_the_modules_keep_pure_python_yaml(monkeypatch):
    monkeypatch.setattr(yaml, "__with_libyaml__", False)
    with speedups.libyaml_for(speedups.YAML_USERS):
        assert _RUNTIME.yaml is yaml
        assert _KUBECONFIG.yaml is yaml


def test_a_missing_module_or_one_without_yaml_is_skipped():
    with speedups.libyaml_for(["tools.plan.no_such_module", "json", "scenario._runtime"]):
        assert not hasattr(importlib.import_module("json"), "yaml")
        if yaml.__with_libyaml__:
            assert isinstance(_RUNTIME.yaml, speedups.LibYAML)
    assert _RUNTIME.yaml is yaml


@needs_libyaml
@pytest.mark.parametrize("charm", ["coordinator", "worker"])
def test_the_c_dump_of_each_charms_metadata_is_pythons(charm):
    meta = charms.charm_meta(charm)
    routed = speedups.LibYAML()
    assert routed.safe_dump(meta) == routed.safe_dump(meta) == yaml.safe_dump(meta)


@needs_libyaml
def test_a_dump_follows_the_value_not_an_earlier_equal_one():
    routed = speedups.LibYAML()
    data = {"a": 1, "b": [1.0, None]}
    assert routed.safe_dump(data) == yaml.safe_dump(data)
    data["a"] = True  # == 1, but dumps as true
    data["b"][0] = 1  # == 1.0, but dumps as 1
    assert routed.safe_dump(data) == yaml.safe_dump(data) == "a: true\nb:\n- 1\n- null\n"
    assert routed.safe_dump((1, 2)) == yaml.safe_dump((1, 2))  # not plain: dumped every time
    assert routed.safe_dump(data, sort_keys=False) == yaml.safe_dump(data, sort_keys=False)


@needs_libyaml
def test_each_load_of_the_same_text_gets_its_own_copy():
    routed = speedups.LibYAML()
    text = "base: &b {ports: [80, 443]}\nother: *b\n"
    first = routed.safe_load(text)
    assert first == yaml.safe_load(text)
    first["base"]["ports"].append(8080)
    second = routed.safe_load(text)
    assert second == yaml.safe_load(text)  # the change to the first did not leak
    assert second["base"] is second["other"]  # the alias is still one object


def test_ops_parses_each_text_once_and_hands_out_copies():
    text = "name: worker\nrequires: {cluster: {interface: cluster}}\n"
    load = ops_yaml.safe_load
    with speedups.ops_parses_once():
        assert ops_yaml.safe_load is not load
        first = ops_yaml.safe_load(text)
        first["name"] = "changed"
        assert ops_yaml.safe_load(text) == load(text) == yaml.safe_load(text)
        assert ops_yaml.safe_load(text, yaml.SafeLoader) == load(text)  # another loader
    assert ops_yaml.safe_load is load


class _CountingDetector(resources.ResourceDetector):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def detect(self) -> resources.Resource:
        self.calls += 1
        return resources.Resource({"counted": self.calls})


def test_the_built_in_resource_detectors_run_once(monkeypatch):
    detect = resources.get_aggregated_resources
    runs: list[object] = []

    def counted(*args, **kwargs):
        runs.append(threading.get_ident())
        return detect(*args, **kwargs)

    monkeypatch.setattr(resources, "get_aggregated_resources", counted)
    outside = resources.Resource.create({"service.name": "worker-w0"})
    runs.clear()
    with speedups.resource_detection_once():
        inside = [resources.Resource.create({"service.name": f"worker-w{i}"}) for i in range(3)]
        assert len(runs) == 1
        assert inside[0].attributes == outside.attributes
        assert inside[2].attributes["service.name"] == "worker-w2"

        monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment=plan")
        assert resources.Resource.create().attributes["deployment"] == "plan"
        assert len(runs) == 2  # another OTEL_* environment: detected again

        counting = _CountingDetector()
        for _ in range(2):
            resources.get_aggregated_resources([counting])
        assert counting.calls == 2  # not a built-in detector: it runs every time
    assert resources.get_aggregated_resources is counted


def test_a_plan_is_the_same_without_the_cheaper_machinery(write_topology, monkeypatch):
    data = {
        "model": "demo",
        "workers": [{"app": f"worker-w{i}", "roles": ["all"]} for i in range(3)],
        "mesh": {"enabled": True},
        "telemetry": {"prometheus": {"app": "prometheus"}, "loki": {"app": "loki"}},
        "tls": True,
    }
    plan = topology.load(write_topology("three.yaml", data))
    quicker = render.text(footprint.plan(plan), "three", render.SECTIONS)
    monkeypatch.setattr(simulate, "quicker_machinery", contextlib.nullcontext)
    plain = render.text(footprint.plan(plan), "three", render.SECTIONS)
    assert quicker == plain
    assert "privkey_secret_id" in quicker  # the TLS run did reach the workers' data
