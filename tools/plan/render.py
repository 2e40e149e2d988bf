# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Print a footprint for people: the text report, the mermaid flow diagram, manifest files."""

from __future__ import annotations

import re
import textwrap
from typing import TYPE_CHECKING

import yaml

from service_mesh.allow_matrix import ANY, Allow, unprotected

from .footprint import RESOLVER_PLACEHOLDER

if TYPE_CHECKING:
    import pathlib
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from coordinated_workers import ClusterProviderAppData
    from service_mesh import Endpoint, MeshPolicy
    from service_mesh.allow_matrix import Rule

    from .footprint import Footprint, Manifest

CLUSTER_FILE = "cluster-internal-authorizationpolicies.yaml"
BEACON_FILE = "beacon-authorizationpolicies.yaml"


SECTIONS: dict[str, str] = {
    "summary": "what the plan amounts to, and its warnings",
    "labels": "each application's pod labels",
    "status": "each unit's status",
    "policies": "every AuthorizationPolicy with the reason it exists, and what the coordinator "
    "publishes to the beacon",
    "matrix": "who may talk to whom, on which ports, methods and paths",
    "nginx": "the coordinator's nginx.conf",
    "workers": "what each worker app receives from the coordinator",
    "observability": "the alert rule groups and dashboards each telemetry backend receives",
    "urls": "every URL the coordinator serves or publishes, with its scheme (https with tls)",
}
"""The text report's sections, in the order they are printed."""
DEFAULT_SECTIONS = ("summary", "matrix")
GROUP_ABOVE = 5
"""A rule reaching more applications than this is one row (its selector and a count), so the
matrix of n cluster members has about 2n rows rather than n * n."""


def text(footprint: Footprint, title: str, show: Iterable[str] = DEFAULT_SECTIONS) -> str:
    """The human-readable report: the sections named in ``show`` (see :data:`SECTIONS`)."""
    chosen = set(show)
    parts = [f"# Plan for {title}"]
    parts += [_SECTION_RENDERERS[name](footprint) for name in SECTIONS if name in chosen]
    return "\n\n".join(parts) + "\n"


def plural(count: int, singular: str, many: str | None = None) -> str:
    """``1 round``, ``2 rounds``; ``many`` for irregular plurals (``policy``, ``policies``)."""
    return f"{count} {singular if count == 1 else many or singular + 's'}"


def _summary_section(footprint: Footprint) -> str:
    return _section("Summary", summary(footprint))


def summary(footprint: Footprint) -> str:
    """The plan in a few lines: apps, units, policies by kind, flows, open apps, warnings."""
    rows = [
        ("applications", _applications_line(footprint)),
        ("hooks", _hooks_line(footprint)),
        ("policies", _policies_line(footprint)),
        ("allowed flows", _flows_line(footprint)),
        ("unprotected", _unprotected_line(footprint)),
    ]
    problems = footprint.problems
    rows.append(("warnings", f"{len(problems)}:" if problems else "none"))
    width = max(len(label) for label, _ in rows) + 2
    lines: list[str] = []
    for label, body in rows:
        lines += textwrap.wrap(
            body,
            99,
            initial_indent=label.ljust(width),
            subsequent_indent=" " * width,
            break_on_hyphens=False,
        )
    lines += [f"  - {problem}" for problem in problems]
    return "\n".join(lines)


def _applications_line(footprint: Footprint) -> str:
    units = footprint.units
    workers = [f"{footprint.model}/{app}" for app in footprint.worker_data]
    cluster = {footprint.coordinator, *workers, *([footprint.beacon] if footprint.beacon else [])}
    related = sorted(app for app in units if app not in cluster)
    worker_units = sum(units.get(app, 0) for app in workers)
    parts = [
        f"the coordinator {footprint.coordinator} "
        f"({plural(units.get(footprint.coordinator, 0), 'unit')})",
        f"{plural(len(workers), 'worker app')} ({plural(worker_units, 'unit')})",
    ]
    if footprint.beacon:
        parts.append(f"the beacon {footprint.beacon}")
    if related:
        parts.append(f"{plural(len(related), 'related app')} ({', '.join(related)})")
    models = {app.split("/", 1)[0] for app in units}
    return (
        f"{len(units)} ({plural(sum(units.values()), 'unit')}) in "
        f"{plural(len(models), 'model')}: " + "; ".join(parts)
    )


def _hooks_line(footprint: Footprint) -> str:
    statuses = footprint.statuses
    active = sum(1 for s in statuses if s.name == "active")
    steady = (
        "a final update-status on every unit changed nothing"
        if footprint.steady
        else "a final update-status still wrote to a databag or to Kubernetes"
    )
    charms = "the real coordinator and worker charms" + (
        " and the beacon stand-in" if footprint.beacon else ""
    )
    return (
        f"{plural(len(statuses), 'unit')} ({charms}) ran through ops.testing against a fake "
        f"Kubernetes for {plural(footprint.rounds, 'round')} of hooks until nothing changed; "
        f"{steady}; {active} of {len(statuses)} active"
    )


def _policies_line(footprint: Footprint) -> str:
    if footprint.beacon is None:
        return "none: the coordinator is not on a service mesh"
    internal = len(footprint.cluster_policies)
    beacon = len(footprint.beacon_policies)
    published = len(footprint.published)
    line = (
        f"{plural(internal + beacon, 'AuthorizationPolicy', 'AuthorizationPolicies')}: "
        f"{internal} cluster-internal (applied by the coordinator), {beacon} beacon (applied by "
        f"{footprint.beacon} for the {plural(published, 'policy', 'policies')} the coordinator "
        "publishes)"
    )
    if footprint.other_policies:
        line += f", {len(footprint.other_policies)} owned by neither"
    return line


def _flows_line(footprint: Footprint) -> str:
    rules = footprint.rules
    if not rules:
        return "no AuthorizationPolicy, so the mesh restricts nothing"
    apps = {rule.source for rule in rules}
    seen: set[tuple[str, ...]] = set()
    for rule in rules:
        if rule.targets not in seen:
            seen.add(rule.targets)
            apps.update(rule.targets)
    apps.discard(ANY)
    return (
        f"{plural(footprint.flow_count, 'flow')} (one per source, target, ports and "
        f"operation) among {plural(len(apps), 'application')}"
    )


def _unprotected_line(footprint: Footprint) -> str:
    if footprint.beacon is None:
        return "every application: there is no service mesh"
    open_apps = unprotected(footprint.workloads, footprint.rules)
    if not open_apps:
        return "none: a policy selects every application"
    return f"{plural(len(open_apps), 'application')} no policy selects: {', '.join(open_apps)}"


def _labels_section(footprint: Footprint) -> str:
    return _section("Applications and their pod labels", _applications(footprint))


def _status_section(footprint: Footprint) -> str:
    return _section("Unit status", _table(("unit", "status", "message"), _statuses(footprint)))


def _policies_section(footprint: Footprint) -> str:
    parts = [
        _section(
            "Cluster-internal AuthorizationPolicies (applied by the coordinator itself)",
            _manifests(footprint.cluster_policies, footprint.reasons)
            or "(none: the coordinator is not on a service mesh)",
        ),
        _section("Policies the coordinator publishes to the beacon", _published(footprint)),
        _section(
            f"AuthorizationPolicies the beacon ({footprint.beacon or 'none'}) makes of them",
            _manifests(footprint.beacon_policies, footprint.reasons) or "(none)",
        ),
    ]
    if footprint.other_policies:
        parts.append(
            _section(
                "Other AuthorizationPolicies (owned by neither!)",
                _manifests(footprint.other_policies),
            )
        )
    return "\n\n".join(parts)


def _matrix_section(footprint: Footprint) -> str:
    return _section("Allow matrix (who may talk to whom)", _matrix(footprint))


def _nginx_section(footprint: Footprint) -> str:
    return _section("nginx.conf of the coordinator", _nginx(footprint))


def _workers_section(footprint: Footprint) -> str:
    return _section("What each worker app receives from the coordinator", _workers(footprint))


def _observability_section(footprint: Footprint) -> str:
    body = "\n\n".join(
        f"### {backend}\n\n" + "\n".join(f"- {name}" for name in names)
        for backend, names in footprint.observability.items()
    )
    title = "What each telemetry backend receives (alert rule groups, dashboards)"
    return _section(title, body or "(no Prometheus, Loki or Grafana related)")


def _urls_section(footprint: Footprint) -> str:
    rows = [("what", "URL"), *footprint.urls]
    width = max(len(what) for what, _ in rows) + 2
    body = "\n".join(f"{what.ljust(width)}{url}".rstrip() for what, url in rows)
    return _section("URLs (scheme included)", body)


_SECTION_RENDERERS: dict[str, Callable[[Footprint], str]] = {
    "summary": _summary_section,
    "labels": _labels_section,
    "status": _status_section,
    "policies": _policies_section,
    "matrix": _matrix_section,
    "nginx": _nginx_section,
    "workers": _workers_section,
    "observability": _observability_section,
    "urls": _urls_section,
}


def mermaid(footprint: Footprint) -> str:
    """The allowed flows as a mermaid flowchart: one arrow per source, target and restriction.

    A rule reaching more than :data:`GROUP_ABOVE` applications points at one node for them all.
    """
    rows = display_rows(footprint.rules)
    nodes = sorted({row.source for row in rows} | {row.target for row in rows})
    lines = ["flowchart LR"]
    lines += [f'    {_node_id(node)}["{node}"]' for node in nodes]
    edges = sorted({(row.source, row.target, _restriction(row)) for row in rows})
    lines += [f'    {_node_id(s)} -->|"{label}"| {_node_id(t)}' for s, t, label in edges]
    return "\n".join(lines) + "\n"


def display_rows(rules: Iterable[Rule]) -> list[Allow]:
    """The allow matrix as printed: one row per flow, or per rule when it reaches many apps."""
    rows: set[Allow] = set()
    for rule in rules:
        if len(rule.targets) > GROUP_ABOVE:
            target = f"{rule.selector} ({len(rule.targets)} apps)"
            operation = (rule.ports, rule.methods, rule.paths, rule.hosts)
            rows.add(Allow(rule.source, target, rule.via, *operation, policy=rule.policy))
        else:
            rows.update(rule.flows())
    return sorted(rows)


def write_manifests(footprint: Footprint, directory: pathlib.Path) -> list[pathlib.Path]:
    """Write the AuthorizationPolicies as multi-document YAML ready for ``kubectl apply -f``."""
    directory.mkdir(parents=True, exist_ok=True)
    written: list[pathlib.Path] = []
    for name, manifests in (
        (CLUSTER_FILE, footprint.cluster_policies),
        (BEACON_FILE, [*footprint.beacon_policies, *footprint.other_policies]),
    ):
        path = directory / name
        path.write_text(_manifests(manifests, footprint.reasons), encoding="utf-8")
        written.append(path)
    return written


def _section(title: str, body: str) -> str:
    return f"## {title}\n\n{body.rstrip()}"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    rows = [header, *rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _applications(footprint: Footprint) -> str:
    blocks: list[str] = []
    for workload in sorted(footprint.workloads, key=lambda w: w.key):
        units = footprint.units.get(workload.key, 0)
        labels = "\n".join(f"    {key}={value}" for key, value in sorted(workload.labels.items()))
        blocks.append(f"{workload.key} ({plural(units, 'unit')})\n{labels}")
    return "\n".join(blocks)


def _statuses(footprint: Footprint) -> list[tuple[str, str, str]]:
    return [(s.unit, s.name, s.message) for s in footprint.statuses]


def _manifests(manifests: Sequence[Manifest], reasons: Mapping[str, str] | None = None) -> str:
    """Multi-document YAML, each policy preceded by why it exists (as a comment)."""
    reasons = reasons or {}
    documents: list[str] = []
    for manifest in manifests:
        reason = reasons.get(manifest["metadata"]["name"])
        comment = "".join(f"# {line}\n" for line in textwrap.wrap(reason, 97)) if reason else ""
        body = yaml.safe_dump(manifest, sort_keys=False, default_flow_style=False)
        documents.append(f"---\n{comment}{body}")
    return "".join(documents)


def _published(footprint: Footprint) -> str:
    if footprint.beacon is None:
        return "(none: no service-mesh relation)"
    if not footprint.published:
        return "(none)"
    rows: list[tuple[str, ...]] = []
    for policy in footprint.published:
        source, target, kind, endpoints = published_row(policy)
        relations = ",".join(footprint.related.get(source, ["?"]))
        rows.append((source, relations, target, kind, endpoints))
    return _table(("source", "relation", "target", "kind", "endpoints"), rows)


def published_row(policy: MeshPolicy) -> tuple[str, str, str, str]:
    """A published policy as (source, target, kind, endpoints)."""
    return (
        f"{policy.source_namespace}/{policy.source_app_name}",
        f"{policy.target_namespace}/{policy.target_service or policy.target_app_name}",
        "service (L7)" if policy.target_type.value == "app" else "pods (L4)",
        _endpoints(policy),
    )


def _endpoints(policy: MeshPolicy) -> str:
    if not policy.endpoints:
        return "anything"
    return "; ".join(_endpoint(endpoint) for endpoint in policy.endpoints)


def _endpoint(endpoint: Endpoint) -> str:
    ports = ",".join(str(p) for p in endpoint.ports or ()) or "any port"
    methods = ",".join(m.value for m in endpoint.methods or ())
    paths = ",".join(endpoint.paths or ())
    hosts = ",".join(endpoint.hosts or ())
    return " ".join(part for part in (ports, methods, paths, hosts and f"hosts {hosts}") if part)


def _matrix(footprint: Footprint) -> str:
    rows = [
        (
            row.source if row.source != ANY else "anyone",
            row.target,
            row.via,
            ",".join(row.ports) or "any",
            l7(row),
        )
        for row in display_rows(footprint.rules)
    ]
    if not rows:
        table = "(no AuthorizationPolicy: nothing is restricted by the mesh)"
    else:
        table = _table(("source", "target", "via", "ports", "methods / paths"), rows)
    notes = [
        "",
        "",
        "`via pods` rules are enforced by ztunnel on the target's pods (L4); `via service`",
        "rules by the waypoint, for traffic addressed to that Service (L7).",
    ]
    open_apps = unprotected(footprint.workloads, footprint.rules)
    if open_apps and footprint.beacon is not None:
        notes += [
            "No policy selects these applications, so the mesh lets anyone reach them unless",
            "it denies by default (istio-k8s hardened-mode): " + ", ".join(open_apps) + ".",
        ]
    return table + "\n".join(notes)


def l7(row: Allow | Rule) -> str:
    """The L7 restrictions of a flow (methods, paths, hosts), or ``any``."""
    parts = [
        ",".join(row.methods),
        ",".join(row.paths),
        ",".join(row.hosts) and f"hosts {','.join(row.hosts)}",
    ]
    return " ".join(part for part in parts if part) or "any"


def _restriction(row: Allow) -> str:
    ports = ",".join(row.ports) or "any port"
    restriction = l7(row)
    return f"{ports} {row.via}" + ("" if restriction == "any" else f" {restriction}")


def _node_id(name: str) -> str:
    return "n_" + re.sub(r"[^A-Za-z0-9]", "_", name)


def _nginx(footprint: Footprint) -> str:
    if footprint.nginx_conf is None:
        return "(not written: see the coordinator's status)"
    note = (
        f"The coordinator copies its pod's DNS server from /etc/resolv.conf into `resolver`;\n"
        f"here it is shown as `{RESOLVER_PLACEHOLDER}` because it depends on the machine."
    )
    if not footprint.nginx_units_agree:
        note += "\nWARNING: the coordinator units rendered different nginx.conf files."
    return f"{note}\n\n{footprint.nginx_conf}"


def _workers(footprint: Footprint) -> str:
    if not footprint.worker_data:
        return "(no worker app)"
    return "\n\n".join(
        f"### {app}\n\n{worker_text(data)}" for app, data in footprint.worker_data.items()
    )


def worker_text(data: ClusterProviderAppData | str) -> str:
    """What one worker app receives, as YAML-like text (or why it could not be read)."""
    if isinstance(data, str):
        return data + "\n"
    telemetry = {
        "loki_endpoints": data.loki_endpoints,
        "remote_write_endpoints": [e.url for e in data.remote_write_endpoints or ()] or None,
        "charm_tracing_receivers": data.charm_tracing_receivers,
        "workload_tracing_receivers": data.workload_tracing_receivers,
    }
    shared = [key for key in ("ca_cert", "server_cert", "privkey_secret_id") if getattr(data, key)]
    summary = {
        "tls": ", ".join(shared) if shared else "none",
        "worker_labels": data.worker_labels,
        "worker_ports": list(data.worker_ports or ()),
        "telemetry": {key: value for key, value in telemetry.items() if value} or "none",
    }
    config = data.worker_config or "(none)\n"
    return (
        yaml.safe_dump(summary, sort_keys=False, default_flow_style=False)
        + "worker_config: |\n"
        + "".join(f"  {line}\n" for line in config.splitlines())
    )
