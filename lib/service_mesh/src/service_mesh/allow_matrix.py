# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Who may talk to whom, read off Istio AuthorizationPolicies: a pure analysis.

Istio says what a policy allows in terms of principals, label selectors and Service references;
people think in applications. :func:`allow_matrix` translates one into the other:

* a source principal ``cluster.local/ns/<namespace>/sa/<name>`` is the Juju application
  ``<name>`` in model ``<namespace>`` (Juju names each application's service account after it);
* a ``selector`` (enforced by ztunnel, at L4, on the selected pods) targets every application
  whose pod labels include all its ``matchLabels``, e.g. ``app.kubernetes.io/part-of`` selects
  the coordinator and all its workers, ``app.kubernetes.io/name`` one application;
* a Service ``targetRef`` (enforced by the waypoint, at L7, for traffic addressed to the
  Service) targets the applications whose pod labels match that Service's selector;
* a policy with neither targets every application of its namespace.

Only ALLOW policies are understood; anything this module cannot read faithfully (a DENY
action, a source matched by something other than principals) raises :class:`UnsupportedPolicyError`
instead of being silently misreported. Nothing here touches Kubernetes: callers pass the
policies, the pod labels per application and the Services, so the same analysis runs on a fake
cluster, a real one, or hand-written test data: the ``plan`` tool evaluates a simulated
deployment with it, and a coordinated-workers coordinator's ``show-mesh`` action the live one.
Importing it loads nothing beyond the standard library.
"""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

__all__ = [
    "ANY",
    "Allow",
    "Rule",
    "Service",
    "UnsupportedPolicyError",
    "Workload",
    "allow_matrix",
    "allow_rules",
    "path_matches",
    "unprotected",
]

ANY = "*"
"""A source or target that is not one application: any authenticated or unauthenticated peer."""

_PRINCIPAL = re.compile(r"^[^/]+/ns/(?P<namespace>[^/]+)/sa/(?P<account>[^/]+)$")
_OPERATION_FIELDS = ("hosts", "ports", "methods", "paths")


class UnsupportedPolicyError(ValueError):
    """A policy uses a feature this analysis does not model; the message names it."""


@dataclasses.dataclass(frozen=True)
class Workload:
    """An application's pods: where they run and the labels they carry."""

    namespace: str
    app: str
    labels: Mapping[str, str]

    @property
    def key(self) -> str:
        """``<namespace>/<app>``, how the matrix names it."""
        return f"{self.namespace}/{self.app}"


@dataclasses.dataclass(frozen=True)
class Service:
    """A Kubernetes Service and the pod labels it selects."""

    namespace: str
    name: str
    selector: Mapping[str, str]


@dataclasses.dataclass(frozen=True, order=True)
class Allow:
    """One allowed flow: ``source`` may reach ``target`` with these restrictions.

    Empty ``ports``, ``methods``, ``paths`` or ``hosts`` mean any.
    """

    source: str
    """``<namespace>/<app>``, or :data:`ANY`."""
    target: str
    """``<namespace>/<app>``, or ``<namespace>/<service>`` when the Service selects no pods."""
    via: str
    """``pods`` (L4, ztunnel) or ``service <name>`` (L7, the waypoint)."""
    ports: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    policy: str = ""
    """``<namespace>/<name>`` of the AuthorizationPolicy that allows it."""

    def permits(self, port: int, method: str | None = None, path: str | None = None) -> bool:
        """Whether a request on ``port`` (with this method and path, if given) matches."""
        if self.ports and str(port) not in self.ports:
            return False
        if self.methods and (method is None or method.upper() not in self.methods):
            return False
        return not self.paths or (
            path is not None and any(path_matches(p, path) for p in self.paths)
        )


@dataclasses.dataclass(frozen=True, order=True)
class Rule:
    """What one rule of one policy allows one source: the same access to each of ``targets``.

    A label selector gives one rule for every application it selects, so a cluster of n
    members has n rules of n targets each rather than n * n rows (see :meth:`flows`).
    """

    source: str
    targets: tuple[str, ...]
    """Each ``<namespace>/<app>`` (or ``<namespace>/<service>``) the rule lets ``source`` reach."""
    selector: str
    """How the policy picks its targets, in words, e.g. ``pods labelled a=b``."""
    via: str
    ports: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    policy: str = ""

    def flows(self) -> list[Allow]:
        """One :class:`Allow` row per target."""
        operation = (self.ports, self.methods, self.paths, self.hosts)
        return [
            Allow(self.source, target, self.via, *operation, policy=self.policy)
            for target in self.targets
        ]


def path_matches(pattern: str, path: str) -> bool:
    """Istio path matching: exact, ``prefix*``, ``*suffix``, or templates with ``{*}``/``{**}``.

    ``{*}`` matches one path segment, ``{**}`` any number of segments (at least one character).
    """
    if "{" in pattern:
        regex = re.escape(pattern).replace(r"\{\*\*\}", ".+").replace(r"\{\*\}", "[^/]+")
        return re.fullmatch(regex, path) is not None
    if pattern == ANY:
        return True
    if pattern.endswith("*"):
        return path.startswith(pattern[:-1])
    if pattern.startswith("*"):
        return path.endswith(pattern[1:])
    return path == pattern


def allow_matrix(
    policies: Iterable[Mapping[str, Any]],
    workloads: Sequence[Workload],
    services: Sequence[Service],
) -> list[Allow]:
    """Every flow the policies allow, one row per source, target and operation, sorted.

    Raises:
        UnsupportedPolicyError: a policy uses a feature this module does not model.
    """
    rules = allow_rules(policies, workloads, services)
    return sorted({flow for rule in rules for flow in rule.flows()})


def allow_rules(
    policies: Iterable[Mapping[str, Any]],
    workloads: Sequence[Workload],
    services: Sequence[Service],
) -> list[Rule]:
    """What the policies allow, one :class:`Rule` per policy rule, source and operation, sorted.

    Linear in the policies: the targets of a policy are worked out once and shared by its rules,
    and by every other policy of its namespace that picks its targets the same way (n workers
    give 2n cluster-internal policies but only two ways of picking targets).

    Raises:
        UnsupportedPolicyError: a policy uses a feature this module does not model.
    """
    by_namespace: dict[str, list[Workload]] = {}
    for workload in workloads:
        by_namespace.setdefault(workload.namespace, []).append(workload)
    service_index = {(s.namespace, s.name): s for s in services}
    picked: dict[tuple[str, str], list[tuple[tuple[str, ...], str, str]]] = {}
    rules: set[Rule] = set()
    for policy in policies:
        metadata = cast("Mapping[str, Any]", policy.get("metadata", {}))
        namespace = str(metadata.get("namespace", ""))
        name = f"{namespace}/{metadata.get('name', '')}"
        spec = cast("Mapping[str, Any]", policy.get("spec", {}))
        if spec.get("action", "ALLOW") != "ALLOW" or "provider" in spec:
            raise UnsupportedPolicyError(f"{name}: only ALLOW policies are modelled")
        how = (namespace, repr([spec.get(key) for key in ("targetRef", "targetRefs", "selector")]))
        groups = picked.get(how)
        if groups is None:
            local = by_namespace.get(namespace, [])
            groups = picked[how] = _targets(spec, namespace, local, service_index, name)
        for rule in cast("list[Mapping[str, Any]]", spec.get("rules") or []):
            for source in _sources(rule, name):
                for operation in _operations(rule, name):
                    rules.update(
                        Rule(source, targets, selector, via, *operation, policy=name)
                        for targets, selector, via in groups
                        if targets
                    )
    return sorted(rules)


def unprotected(workloads: Iterable[Workload], matrix: Iterable[Allow | Rule]) -> list[str]:
    """Applications no policy targets; unless the mesh denies by default, anyone may reach them."""
    targeted: set[str] = set()
    seen: set[tuple[str, ...]] = set()
    for row in matrix:
        if isinstance(row, Allow):
            targeted.add(row.target)
        elif row.targets not in seen:  # rules of one selector share their targets
            seen.add(row.targets)
            targeted.update(row.targets)
    return sorted(w.key for w in workloads if w.key not in targeted)


def _targets(
    spec: Mapping[str, Any],
    namespace: str,
    local: Sequence[Workload],
    services: Mapping[tuple[str, str], Service],
    name: str,
) -> list[tuple[tuple[str, ...], str, str]]:
    """(targets, how they are picked, via) for each way the policy picks its targets."""
    if "targetRef" in spec:
        raise UnsupportedPolicyError(f"{name}: the deprecated singular targetRef is not modelled")
    if "targetRefs" in spec:
        groups: list[tuple[tuple[str, ...], str, str]] = []
        for ref in cast("list[Mapping[str, str]]", spec["targetRefs"]):
            if ref.get("kind") != "Service" or ref.get("group", "") != "":
                raise UnsupportedPolicyError(f"{name}: only Service targetRefs are modelled")
            service = services.get((namespace, ref["name"]))
            via = f"service {ref['name']}"
            selected = [w.key for w in local if service and _selects(service.selector, w)]
            targets = tuple(selected or [f"{namespace}/{ref['name']}"])
            groups.append((targets, f"the pods of Service {namespace}/{ref['name']}", via))
        return groups
    selector = cast("Mapping[str, Any]", spec.get("selector") or {})
    if set(selector) - {"matchLabels"}:
        raise UnsupportedPolicyError(f"{name}: only selector.matchLabels is modelled")
    labels = cast("Mapping[str, str]", selector.get("matchLabels") or {})
    targets = tuple(w.key for w in local if _selects(labels, w))
    described = ",".join(f"{k}={v}" for k, v in labels.items())
    picked = f"pods labelled {described}" if labels else f"every pod in {namespace}"
    return [(targets, picked, "pods")]


def _selects(labels: Mapping[str, str], workload: Workload) -> bool:
    return all(workload.labels.get(key) == value for key, value in labels.items())


def _sources(rule: Mapping[str, Any], name: str) -> list[str]:
    from_entries = cast("list[Mapping[str, Any]]", rule.get("from") or [])
    if not from_entries:
        return [ANY]
    sources: list[str] = []
    for entry in from_entries:
        source = cast("Mapping[str, Any]", entry.get("source", {}))
        if set(source) != {"principals"}:
            raise UnsupportedPolicyError(
                f"{name}: only sources matched by principals are modelled"
            )
        for principal in cast("list[str]", source["principals"]):
            match = _PRINCIPAL.match(principal)
            if principal == ANY:
                sources.append(ANY)
            elif match:
                sources.append(f"{match['namespace']}/{match['account']}")
            else:
                raise UnsupportedPolicyError(f"{name}: cannot read principal {principal!r}")
    return sources


def _operations(rule: Mapping[str, Any], name: str) -> list[tuple[tuple[str, ...], ...]]:
    """Each operation as (ports, methods, paths, hosts); no ``to`` is one unrestricted one."""
    tos = cast("list[Mapping[str, Any]]", rule.get("to") or [])
    if not tos:
        return [((), (), (), ())]
    operations: list[tuple[tuple[str, ...], ...]] = []
    for entry in tos:
        operation = cast("Mapping[str, list[Any]]", entry.get("operation", {}))
        if set(operation) - set(_OPERATION_FIELDS):
            raise UnsupportedPolicyError(f"{name}: negated operations are not modelled")
        ports, methods, paths, hosts = (
            tuple(str(v) for v in operation.get(key) or ())
            for key in ("ports", "methods", "paths", "hosts")
        )
        operations.append((ports, methods, paths, hosts))
    return operations
