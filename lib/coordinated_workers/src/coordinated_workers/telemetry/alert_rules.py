# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Alert rules the coordinator publishes for itself and for each worker application.

Rule files are read from a folder (top level only; ``.rule``, ``.rules``, ``.yml`` and
``.yaml``, in name order), each in Prometheus' official format (``groups:``) or as one rule per
file (``alert``/``record`` and ``expr``). Every file is checked here first, so that a malformed
one is reported by name (`RuleFileProblem`) and left out instead of being skipped silently or
crashing the hook; what remains goes through ``cosl`` (the COS charm libraries' own package),
which names the groups and adds the Juju topology labels exactly as those libraries do.
``cos-tool`` is never run: expressions are published as written, as the libraries do when the
binary is absent (it is not shipped).

Group names follow what upstream's coordinator publishes (``tests/vectors/cos``), so a cluster
moving between the libraries keeps its rule groups:

- Prometheus: ``<topology id>_<group or file stem>_rules``, where a topology id is
  ``<model>_<uuid[:8]>_<app>``; worker rules carry the worker app's topology, the library's
  nginx rules and the generic ``HostHealth`` group the coordinator's.
- Loki: the coordinator's copy is ``<coordinator id>_<group or stem>_alerts`` and each worker
  app's is ``<coordinator id>_<worker id>_<group or stem>_rules_alerts`` (upstream consolidates
  worker rules once with the worker's topology, then its Loki library prefixes them again).
  ``%%juju_topology%%`` in an expression becomes ``job=~".+"``.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from typing import TYPE_CHECKING, Any, Literal, cast

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from pathlib import Path

    import cosl

logger = logging.getLogger(__name__)

RULE_SUFFIXES = (".rule", ".rules", ".yml", ".yaml")
"""The suffixes ``cosl`` reads; other files in a rules folder are ignored."""

MAX_RULE_FILE_BYTES = 1024 * 1024
"""A rule file larger than this is refused unread (it would not fit a relation anyway)."""

RuleDoc = dict[str, Any]
"""One parsed rule file: ``{"groups": [...]}`` or a single rule."""


@dataclasses.dataclass(frozen=True)
class Topology:
    """The Juju topology rules are labelled with: whose rules they are."""

    model: str
    model_uuid: str
    application: str
    charm_name: str


@dataclasses.dataclass(frozen=True)
class RuleFileProblem:
    """A rule file that was left out, and why; the file is named by its path."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclasses.dataclass(frozen=True)
class RuleFile:
    """A rule file that passed the checks: its name (for group names) and content."""

    stem: str
    doc: RuleDoc
    shown_as: str = ""
    """The file as problems name it (``<folder>/<file name>``)."""


def read_rule_files(folder: Path, shown_as: str) -> tuple[list[RuleFile], list[RuleFileProblem]]:
    """Read and check every rule file at the top of `folder`; a missing folder has none.

    Args:
        folder: where the rule files are.
        shown_as: how problems name the folder (e.g. ``src/prometheus_alert_rules``), so a
            status names the file as the charm author knows it.
    """
    files: list[RuleFile] = []
    problems: list[RuleFileProblem] = []
    try:
        paths = sorted(p for p in folder.iterdir() if p.suffix in RULE_SUFFIXES and p.is_file())
    except FileNotFoundError:
        return files, problems
    except OSError as e:
        return files, [RuleFileProblem(shown_as, f"cannot list the folder ({e.strerror})")]
    for path in paths:
        name = f"{shown_as}/{path.name}"
        try:
            files.append(RuleFile(path.stem, _read_rule_doc(path), name))
        except RuleFileError as e:
            problems.append(RuleFileProblem(name, str(e)))
            logger.error("alert rules: leaving out %s: %s", name, e)
    return files, problems


class TopologyError(ValueError):
    """``cosl`` refused a topology (Juju's model UUIDs are version 4; it checks that)."""


class RuleFileError(ValueError):
    """A rule file cannot be used; the message says why, in a few words."""


def _read_rule_doc(path: Path) -> RuleDoc:
    import yaml  # here: only hooks that render rules read YAML

    try:
        if path.stat().st_size > MAX_RULE_FILE_BYTES:
            raise RuleFileError(f"larger than {MAX_RULE_FILE_BYTES} bytes")
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise RuleFileError("not UTF-8 text") from e
    except OSError as e:
        raise RuleFileError(f"cannot be read ({e.strerror})") from e
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise RuleFileError(f"not valid YAML{where}") from e
    check_rule_doc(doc)
    return cast("RuleDoc", doc)


def check_rule_doc(doc: object) -> None:
    """Check that `doc` is a rule file ``cosl`` can label: official format or a single rule.

    Raises:
        RuleFileError: what is wrong, naming the group or rule.
    """
    if not doc:
        raise RuleFileError("empty")
    if not isinstance(doc, dict):
        raise RuleFileError("not a mapping")
    mapping = cast("dict[object, object]", doc)
    if "groups" in mapping:
        groups = mapping["groups"]
        if not isinstance(groups, list) or not groups:
            raise RuleFileError("'groups' is not a non-empty list")
        for index, group in enumerate(cast("list[object]", groups)):
            _check_group(group, index)
    else:
        _check_rule(mapping, "the rule")


def _check_group(group: object, index: int) -> None:
    if not isinstance(group, dict):
        raise RuleFileError(f"group {index + 1} is not a mapping")
    mapping = cast("dict[object, object]", group)
    name = mapping.get("name")
    if not isinstance(name, str) or not name:
        raise RuleFileError(f"group {index + 1} has no name")
    rules = mapping.get("rules")
    if not isinstance(rules, list) or not rules:
        raise RuleFileError(f"group {name!r} has no list of rules")
    for number, rule in enumerate(cast("list[object]", rules), start=1):
        _check_rule(rule, f"rule {number} of group {name!r}")


def _check_rule(rule: object, what: str) -> None:
    if not isinstance(rule, dict):
        raise RuleFileError(f"{what} is not a mapping")
    mapping = cast("dict[object, object]", rule)
    kinds = [key for key in ("alert", "record") if key in mapping]
    if len(kinds) != 1 or not isinstance(mapping[kinds[0]], str):
        raise RuleFileError(f"{what} needs one 'alert' or 'record' name")
    if not isinstance(mapping.get("expr"), str) or not mapping["expr"]:
        raise RuleFileError(f"{what} has no 'expr' text")
    for key in ("labels", "annotations"):
        value = mapping.get(key)
        if value is None and key not in mapping:
            continue
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str)
            for k, v in cast("dict[object, object]", value).items()
        ):
            raise RuleFileError(f"{what}: '{key}' is not a mapping of text to text")


def prometheus_rules(
    coordinator: Topology,
    coordinator_files: Sequence[RuleFile],
    workers: Sequence[Topology],
    worker_files: Sequence[RuleFile],
) -> dict[str, object]:
    """The ``alert_rules`` a coordinator publishes on ``prometheus_scrape``.

    Args:
        coordinator: the coordinator's topology (its nginx rules and ``HostHealth``).
        coordinator_files: rules about the coordinator itself (the library's nginx rules).
        workers: one topology per worker app, in the order wanted.
        worker_files: rules every worker app gets, labelled with that app's topology.
    """
    cosl = _cosl()
    own = _juju_topology(cosl, coordinator)
    groups: list[dict[str, object]] = []
    for worker in workers:
        topology = _juju_topology(cosl, worker)
        groups += _labelled(cosl, "promql", topology, worker_files, prefix=topology.identifier)
    own_prefix = own.identifier
    groups += _labelled(cosl, "promql", own, coordinator_files, own_prefix)
    generic = cosl.rules.generic_alert_groups.application_rules
    host_health = [RuleFile("", cast("RuleDoc", generic))]
    groups += _labelled(cosl, "promql", own, host_health, own_prefix)
    return {"groups": _unique(groups)}


def loki_rules(
    coordinator: Topology, files: Sequence[RuleFile], workers: Sequence[Topology]
) -> dict[str, object]:
    """The ``alert_rules`` a coordinator publishes on ``loki_push_api``: the workers', its own.

    The same files apply to every worker app and to the coordinator (whose own containers'
    logs are forwarded too).
    """
    cosl = _cosl()
    own = _juju_topology(cosl, coordinator)
    own_prefix = own.identifier
    groups: list[dict[str, object]] = []
    for worker in workers:
        topology = _juju_topology(cosl, worker)
        for group in _labelled(cosl, "logql", topology, files, prefix=topology.identifier):
            group["name"] = f"{own_prefix}_{group['name']}_alerts"
            groups.append(group)
    for rule_file in files:
        originals = _group_names(rule_file)
        labelled = _labelled(cosl, "logql", own, [rule_file], prefix=None)
        for name, group in zip(originals, labelled, strict=True):
            group["name"] = f"{own_prefix}_{name}_alerts"
            groups.append(group)
    return {"groups": _unique(groups)}


def group_names(rules: Mapping[str, object]) -> list[str]:
    """The group names of published rules, for display (``tools/plan``)."""
    groups = cast("list[dict[str, object]]", rules.get("groups", []))
    return [str(group["name"]) for group in groups]


def _group_names(rule_file: RuleFile) -> list[str]:
    if "groups" in rule_file.doc:
        return [str(group["name"]) for group in rule_file.doc["groups"]]
    return [rule_file.stem]


def _juju_topology(cosl: Any, topology: Topology) -> cosl.JujuTopology:
    """``cosl``'s topology of an app, whose labels and ``identifier`` the COS libraries use.

    The identifier, ``<model>_<uuid[:8]>_<app>``, prefixes every group name of the app.

    Raises:
        TopologyError: ``cosl`` refused the model UUID.
    """
    try:
        return cosl.JujuTopology(
            model=topology.model,
            model_uuid=topology.model_uuid,
            application=topology.application,
            charm_name=topology.charm_name,
        )
    except cosl.juju_topology.InvalidUUIDError as e:
        raise TopologyError(
            f"model UUID {topology.model_uuid!r} is not a version-4 UUID, which cosl requires"
        ) from e


def _labelled(
    cosl: Any,
    query_type: Literal["promql", "logql"],
    juju_topology: cosl.JujuTopology,
    files: Iterable[RuleFile],
    prefix: str | None,
) -> list[dict[str, object]]:
    """Group names and topology labels by ``cosl``; each file's groups in file order."""
    rules = cosl.rules.Rules(query_type, juju_topology)
    rules.tool = _without_cos_tool(cosl)(default_query_type=query_type)
    for rule_file in files:
        rules.add(rule_file.doc, group_name=rule_file.stem or None, group_name_prefix=prefix)
    return cast("list[dict[str, object]]", rules.groups)


def _unique(groups: list[dict[str, object]]) -> list[dict[str, object]]:
    """Drop a group whose name came earlier: Prometheus refuses a file with duplicate names."""
    seen: set[object] = set()
    kept: list[dict[str, object]] = []
    for group in groups:
        if group["name"] in seen:
            logger.error("alert rules: leaving out a second group named %s", group["name"])
            continue
        seen.add(group["name"])
        kept.append(group)
    return kept


def duplicate_group_problems(files: Sequence[RuleFile]) -> list[RuleFileProblem]:
    """Files defining a group name an earlier file defines too (the later group is dropped)."""
    seen: dict[str, str] = {}
    problems: list[RuleFileProblem] = []
    for rule_file in files:
        for name in _group_names(rule_file):
            if name in seen:
                problems.append(
                    RuleFileProblem(
                        rule_file.shown_as, f"group {name!r} is defined in {seen[name]} already"
                    )
                )
            else:
                seen[name] = rule_file.shown_as
    return problems


def _cosl() -> Any:
    """``cosl``, imported here: only hooks that render rules pay for it (and its sqlite)."""
    import importlib

    importlib.import_module("cosl.rules")  # so that ``cosl.rules`` is an attribute
    importlib.import_module("cosl.juju_topology")
    return importlib.import_module("cosl")


@functools.cache
def _without_cos_tool(cosl_module: Any) -> type[cosl.CosTool]:
    """A ``CosTool`` that never finds the binary: no subprocess, expressions kept as written."""
    base: type[cosl.CosTool] = cosl_module.CosTool

    class _NoBinary(base):
        @property
        def path(self) -> None:
            return None

    return _NoBinary
