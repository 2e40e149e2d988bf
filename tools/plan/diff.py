# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""What changes between two footprints: created, changed and deleted, section by section."""

from __future__ import annotations

import dataclasses
import difflib
from typing import TYPE_CHECKING

from . import render

if TYPE_CHECKING:
    from service_mesh.allow_matrix import Allow

    from .footprint import Footprint, Manifest


@dataclasses.dataclass(frozen=True)
class PolicyChanges:
    """AuthorizationPolicies by ``<namespace>/<name>``."""

    created: list[Manifest]
    changed: list[Manifest]
    deleted: list[Manifest]


def policy_changes(before: Footprint, after: Footprint) -> PolicyChanges:
    """Which AuthorizationPolicies applying ``after`` creates, changes and deletes.

    A policy's name embeds a hash of its content, so an edited rule shows up as one created
    and one deleted policy; "changed" is left for ownership labels and the like.
    """
    old = {_key(p): p for p in before.policies}
    new = {_key(p): p for p in after.policies}
    return PolicyChanges(
        created=[new[k] for k in sorted(new.keys() - old.keys())],
        changed=[new[k] for k in sorted(new.keys() & old.keys()) if new[k] != old[k]],
        deleted=[old[k] for k in sorted(old.keys() - new.keys())],
    )


def text(before: Footprint, after: Footprint, before_name: str, after_name: str) -> str:
    """The human-readable diff from ``before`` to ``after``."""
    sections = [
        ("Applications", _applications(before, after)),
        ("Pod labels", _labels(before, after)),
        ("AuthorizationPolicies", _policies(policy_changes(before, after), after)),
        ("Policies published to the beacon", _published(before, after)),
        ("Allow matrix", _matrix(before.matrix, after.matrix)),
        ("nginx.conf", _unified(before.nginx_conf or "", after.nginx_conf or "", "nginx.conf")),
        ("Worker data", _workers(before, after)),
        ("Unit status", _statuses(before, after)),
    ]
    parts = [f"# Changes from {before_name} to {after_name}"]
    parts += [f"## {title}\n\n{body.rstrip() or '(no change)'}" for title, body in sections]
    return "\n\n".join(parts) + "\n"


def _key(manifest: Manifest) -> str:
    return f"{manifest['metadata']['namespace']}/{manifest['metadata']['name']}"


def _applications(before: Footprint, after: Footprint) -> str:
    lines = [
        f"+ {app} ({render.plural(n, 'unit')})"
        for app, n in sorted(after.units.items())
        if app not in before.units
    ]
    lines += [f"- {app}" for app in sorted(before.units) if app not in after.units]
    lines += [
        f"~ {app}: {before.units[app]} -> {render.plural(n, 'unit')}"
        for app, n in sorted(after.units.items())
        if app in before.units and before.units[app] != n
    ]
    return "\n".join(lines)


def _labels(before: Footprint, after: Footprint) -> str:
    old = {w.key: dict(w.labels) for w in before.workloads}
    lines: list[str] = []
    for workload in sorted(after.workloads, key=lambda w: w.key):
        previous = old.get(workload.key)
        if previous is None or previous == workload.labels:
            continue
        lines.append(f"{workload.key}:")
        lines += [
            f"  - {key}={value}"
            for key, value in sorted(previous.items())
            if workload.labels.get(key) != value
        ]
        lines += [
            f"  + {key}={value}"
            for key, value in sorted(workload.labels.items())
            if previous.get(key) != value
        ]
    return "\n".join(lines)


def _policies(changes: PolicyChanges, after: Footprint) -> str:
    lines: list[str] = []
    for verb, sign, manifests in (
        ("created", "+", changes.created),
        ("changed", "~", changes.changed),
        ("deleted", "-", changes.deleted),
    ):
        lines.append(f"{verb}: {len(manifests)}")
        for manifest in manifests:
            reason = after.reasons.get(manifest["metadata"]["name"], "")
            lines.append(f"  {sign} {_key(manifest)}" + (f"\n      {reason}" if reason else ""))
    return "\n".join(lines)


def _published(before: Footprint, after: Footprint) -> str:
    old = {"  ".join(render.published_row(p)) for p in before.published}
    new = {"  ".join(render.published_row(p)) for p in after.published}
    return "\n".join(
        [*(f"+ {p}" for p in sorted(new - old)), *(f"- {p}" for p in sorted(old - new))]
    )


def _flows(matrix: list[Allow]) -> set[tuple[str, ...]]:
    return {
        (row.source, row.target, row.via, ",".join(row.ports) or "any", render.l7(row))
        for row in matrix
    }


def _matrix(before: list[Allow], after: list[Allow]) -> str:
    old, new = _flows(before), _flows(after)
    lines = [f"+ {'  '.join(row)}" for row in sorted(new - old)]
    lines += [f"- {'  '.join(row)}" for row in sorted(old - new)]
    return "\n".join(lines)


def _unified(old: str, new: str, name: str) -> str:
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True), new.splitlines(keepends=True), f"a/{name}", f"b/{name}"
        )
    )


def _workers(before: Footprint, after: Footprint) -> str:
    parts: list[str] = []
    for app in sorted(before.worker_data.keys() | after.worker_data.keys()):
        old = before.worker_data.get(app)
        new = after.worker_data.get(app)
        old_text = "" if old is None else render.worker_text(old)
        new_text = "" if new is None else render.worker_text(new)
        if old_text != new_text:
            parts.append(_unified(old_text, new_text, app))
    return "\n".join(parts)


def _statuses(before: Footprint, after: Footprint) -> str:
    old = {s.unit: f"{s.name} {s.message}".strip() for s in before.statuses}
    new = {s.unit: f"{s.name} {s.message}".strip() for s in after.statuses}
    lines = [f"+ {unit}: {new[unit]}" for unit in sorted(new.keys() - old.keys())]
    lines += [f"- {unit}" for unit in sorted(old.keys() - new.keys())]
    lines += [
        f"~ {unit}: {old[unit]} -> {new[unit]}"
        for unit in sorted(old.keys() & new.keys())
        if old[unit] != new[unit]
    ]
    return "\n".join(lines)
