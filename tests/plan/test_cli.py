# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The plan command as people use it: the summary first, chosen sections, one-line errors."""

from __future__ import annotations

import pathlib
import re

import pytest

from tools.plan import footprint, render, simulate, topology
from tools.plan.__main__ import main

ALL_TITLES = (
    "## Summary",
    "## Applications and their pod labels",
    "## Unit status",
    "## Cluster-internal AuthorizationPolicies",
    "## Policies the coordinator publishes to the beacon",
    "## AuthorizationPolicies the beacon",
    "## Allow matrix",
    "## nginx.conf of the coordinator",
    "## What each worker app receives",
)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_default_plan_opens_with_the_summary_then_the_matrix_only(capsys):
    code, out, err = run(capsys)
    assert (code, err) == (0, "")
    titles = [line for line in out.splitlines() if line.startswith("## ")]
    assert titles == ["## Summary", "## Allow matrix (who may talk to whom)"]
    summary = out.split("## Summary\n\n", 1)[1].split("\n## ", 1)[0]
    lines = summary.splitlines()
    assert [line.split()[0] for line in lines if not line.startswith(" ")] == [
        "applications",
        "hooks",
        "policies",
        "allowed",
        "unprotected",
        "warnings",
    ]
    flat = " ".join(summary.split())
    assert "7 (9 units) in 1 model" in flat
    assert "2 worker apps (3 units)" in flat
    assert "3 related apps (demo/api-client, demo/loki, demo/prometheus)" in flat
    assert "8 AuthorizationPolicies: 5 cluster-internal" in flat
    assert "3 beacon (applied by demo/istio-beacon-k8s for the 3 policies" in flat
    assert "14 flows (one per source, target, ports and operation) among 5 applications" in flat
    assert "6 of 6 active" in flat
    assert lines[-1] == "warnings       none"


def test_default_topology_has_an_api_client_and_the_matrix_its_api_row(capsys):
    data = topology.load(None)
    assert [client.app for client in data.api_clients] == ["api-client"]
    _, out, _ = run(capsys)
    rows = [line.split() for line in out.splitlines()]
    assert ["demo/api-client", "demo/coordinator", "service", "coordinator", "8080", "any"] in rows


def test_show_all_prints_every_section_in_order(capsys):
    code, out, _ = run(capsys, "--show", "all")
    assert code == 0
    positions = [out.index(title) for title in ALL_TITLES]
    assert positions == sorted(positions)


def test_show_picks_sections(capsys):
    code, out, _ = run(capsys, "--show", "status,nginx")
    assert code == 0
    titles = [line for line in out.splitlines() if line.startswith("## ")]
    assert titles == ["## Unit status", "## nginx.conf of the coordinator"]


def test_every_section_has_a_help_line_and_a_renderer(capsys):
    assert set(render.SECTIONS) >= set(render.DEFAULT_SECTIONS)
    with pytest.raises(SystemExit):
        main(["--help"])
    usage = " ".join(capsys.readouterr().out.split())
    for name in render.SECTIONS:
        assert f"{name} (" in usage


def test_beacon_policy_reasons_name_only_the_relations_that_grant_access(default_footprint):
    beacon = {p["metadata"]["name"] for p in default_footprint.beacon_policies}
    reasons = [default_footprint.reasons[name] for name in beacon]
    prometheus = [r for r in reasons if r.startswith("demo/prometheus ")]
    assert len(prometheus) == 2
    for reason in prometheus:
        assert "`metrics-endpoint`" in reason
        assert "send-remote-write" not in reason  # the coordinator is its client, not its server
    assert any(
        r.startswith("demo/api-client is related to the coordinator on `api`;") for r in reasons
    )


def test_the_open_to_anyone_note_only_when_the_mesh_is_on(capsys, write_topology, default_data):
    note = "the mesh lets anyone reach them"
    _, on, _ = run(capsys)
    assert note in " ".join(on.split())
    default_data["mesh"]["enabled"] = False
    code, off, _ = run(capsys, str(write_topology("off.yaml", default_data)))
    assert code == 0
    assert note not in " ".join(off.split())
    assert "every application: there is no service mesh" in " ".join(off.split())


def test_a_plan_whose_charms_end_blocked_says_so_and_exits_1(capsys, write_topology):
    path = write_topology("no-workers.yaml", {"model": "demo", "mesh": {"enabled": True}})
    code, out, err = run(capsys, str(path))
    assert code == 1
    assert "  - coordinator/0 ended blocked: " in out
    assert "warnings       1:" in out
    assert err.count("\n") == 1
    assert err.startswith("error: the plan has problems: coordinator/0 ended blocked")


def test_counts_of_one_are_singular(capsys, write_topology):
    _, out, _ = run(capsys, str(write_topology("one.yaml", {"model": "demo", "mesh": {}})))
    flat = " ".join(out.split())
    assert "(1 unit)" in flat
    assert "1 AuthorizationPolicy:" in flat
    assert "1 flow (one per" in flat
    assert not re.search(r"\b1 (units|rounds|flows|applications|AuthorizationPolicies)\b", flat)
    assert render.plural(1, "round") == "1 round"
    assert render.plural(2, "round") == "2 rounds"
    assert render.plural(1, "policy", "policies") == "1 policy"


def test_the_coordinator_runs_a_few_hooks_however_many_workers(write_topology):
    """Juju's relation-created per relation made the coordinator reconcile n times over n
    workers: the plan grew with the square of the worker apps. Now every unit runs a handful,
    and the allow matrix (n * n flows among n members) is printed one row per rule."""
    data = {
        "model": "demo",
        "workers": [{"app": f"worker-w{i}", "roles": ["all"]} for i in range(8)],
        "mesh": {"enabled": True},
    }
    with simulate.scratch_directory() as files:
        sim = simulate.simulate(topology.load(write_topology("eight.yaml", data)), files)
        result = footprint.collect(sim)
    assert sim.steady
    hooks = {actor.unit: actor.hooks for actor in sim.actors}
    assert hooks["coordinator/0"] <= 4, hooks
    assert max(hooks.values()) <= 4, hooks

    assert result.flow_count == len(result.matrix) == 9 * 9 + 8
    text = render.text(result, "eight")
    group = "pods labelled app.kubernetes.io/part-of=coordinator (9 apps)"
    matrix = text.split("## Allow matrix", 1)[1]
    assert matrix.count(group) == 9  # one row per member, not 9 * 9
    assert "demo/worker-w3    demo/worker-w5" not in matrix
    assert f"{9 * 9 + 8} flows" in " ".join(text.split())


def bad(tmp_path: pathlib.Path, content: bytes | str) -> str:
    path = tmp_path / "bad.yaml"
    if isinstance(content, str):
        path.write_text(content)
    else:
        path.write_bytes(content)
    return str(path)


def deep_yaml(depth: int) -> str:
    return "model: demo\nworkers: " + "[" * depth + "]" * depth + "\n"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(b"model: d\xe9mo\n", "not UTF-8 text (byte 0xe9 at offset 8)", id="latin-1"),
        pytest.param(
            "model: demo\nworkers: [{app: w, role: [read]}]\n",
            "workers.0: unknown field 'role'; did you mean 'roles'?",
            id="did-you-mean",
        ),
        pytest.param(
            "model: demo\ncordinator: {app: c}\n",
            "unknown field 'cordinator'; did you mean 'coordinator'?",
            id="did-you-mean-top",
        ),
        pytest.param(
            "model: demo\nworkers: [{app: worker-1, roles: [read]}]\n",
            "workers.0.app: 'worker-1' is not a Juju application name: use lowercase letters",
            id="app-name-in-words",
        ),
        pytest.param(
            "model: Demo\n", "model: 'Demo' is not a Juju model name", id="model-name-in-words"
        ),
        pytest.param(deep_yaml(3000), "nested too deeply to be a topology", id="deep-nesting"),
        pytest.param(
            "model: " + "m" * 20 + "\nmesh: {beacon: " + "b" * 40 + "}\n",
            "mesh.beacon: the label istio.io/use-waypoint="
            + "m" * 20
            + "-"
            + "b" * 40
            + "-waypoint would be 70 characters",
            id="waypoint-too-long",
        ),
    ],
)
def test_bad_topology_is_one_line_with_exit_2(tmp_path, capsys, content, expected):
    code, out, err = run(capsys, bad(tmp_path, content))
    assert (code, out) == (2, "")
    assert err.count("\n") == 1, err
    assert err.startswith("error: ")
    assert expected in err
    assert "^[" not in err  # names are explained in words, not as regular expressions


def test_too_many_units_is_refused_before_running(tmp_path, capsys):
    workers = "".join(f"  - {{app: w{i}, roles: [all], units: 20}}\n" for i in range(31))
    code, out, err = run(capsys, bad(tmp_path, f"model: demo\nworkers:\n{workers}"))
    assert (code, out) == (2, "")
    assert f"the plan runs at most {topology.MAX_UNITS}" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--diff", "{default}", "--format", "mermaid"], "cannot be combined with --format"),
        (["--show", "summery"], "unknown section 'summery'; did you mean 'summary'?"),
        (["--show", "status", "--format", "mermaid"], "--show chooses sections"),
        (["--output", "{file}"], "exists and is not a directory"),
        (["--output", "{file}/sub"], "cannot create it"),
        (["--format", "pdf"], "invalid choice: 'pdf'"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_arguments_are_one_line_with_exit_2(tmp_path, capsys, argv, expected):
    existing = tmp_path / "existing.txt"
    existing.write_text("keep me\n")
    values = {"default": str(topology.DEFAULT_TOPOLOGY), "file": str(existing)}
    code, out, err = run(capsys, *(arg.format(**values) for arg in argv))
    assert (code, out) == (2, "")
    assert err.count("\n") == 1, err
    assert expected in err
    assert existing.read_text() == "keep me\n"


def test_a_bad_topology_leaves_no_output_directory_behind(tmp_path, capsys):
    out_dir = tmp_path / "policies"
    code, _, err = run(capsys, bad(tmp_path, "model: Demo\n"), "--output", str(out_dir))
    assert code == 2
    assert err.count("\n") == 1
    assert not out_dir.exists()


def test_published_policies_name_the_relation_whose_server_they_open(capsys):
    """The reference coordinator's API server declares `relations=("api",)`; the table shows it."""
    code, out, _ = run(capsys, "--show", "policies")
    assert code == 0
    table = out.split("## Policies the coordinator publishes to the beacon\n\n", 1)[1]
    rows = [line.split() for line in table.split("\n\n", 1)[0].splitlines()[2:]]
    assert ["demo/api-client", "api", "demo/coordinator", "service", "(L7)", "8080"] in rows
    assert [
        "demo/prometheus",
        "metrics-endpoint",
        "demo/coordinator",
        "pods",
        "(L4)",
        "9113",
    ] in rows
