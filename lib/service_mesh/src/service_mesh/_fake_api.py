# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Pure helpers behind :class:`service_mesh.testing.FakeKubernetes`.

Everything here is a small, faithful-enough model of one Kubernetes API server rule: how a
request path names an object, how patches merge, how label selectors match, which labels the
server rejects, and what an error body looks like. Kept apart from ``testing.py`` so the fake
itself reads as a list of verbs.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from typing import Any, cast

Json = dict[str, Any]

# Kinds whose plural is not simply "<kind lower-case>s".
_IRREGULAR_PLURALS = {"Endpoints": "endpoints", "NetworkPolicy": "networkpolicies"}

# API groups that only exist once a CRD is installed (what ``crds_installed`` switches off).
CRD_GROUPS = frozenset(
    {
        "security.istio.io",
        "networking.istio.io",
        "telemetry.istio.io",
        "gateway.networking.k8s.io",
    }
)

_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}

_LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


class ApiFailureError(Exception):
    """A request the fake answers with a Kubernetes ``Status`` error instead of an object."""

    def __init__(self, code: int, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or _REASONS.get(code, "Unknown")

    def status_body(self) -> Json:
        """The ``Status`` object a real API server returns for this failure."""
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "details": {},
            "code": self.code,
        }


def section(obj: Any, *keys: str) -> Json:
    """The map at ``obj[k1][k2]...``, or an empty map where any level is missing or not a map."""
    for key in keys:
        obj = cast(Json, obj).get(key) if isinstance(obj, dict) else None
    return cast(Json, obj) if isinstance(obj, dict) else {}


def success_status(name: str, plural: str) -> Json:
    """The ``Status`` body of a successful DELETE."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {"name": name, "kind": plural},
    }


@dataclasses.dataclass(frozen=True)
class Target:
    """What a request path addresses: a collection (``name`` is None) or one object."""

    api_version: str
    plural: str
    namespace: str | None
    name: str | None
    subresource: str | None

    @property
    def group(self) -> str:
        """The API group, ``""`` for the core group."""
        return self.api_version.rpartition("/")[0]


def parse_path(path: str) -> Target:
    """Split ``/api/v1/namespaces/ns/configmaps/x`` and friends into a :class:`Target`.

    Raises:
        ApiFailureError: 404 for paths that address no resource (discovery is not modelled).
    """
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        api_version, rest = parts[1], parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        api_version, rest = f"{parts[1]}/{parts[2]}", parts[3:]
    else:
        raise ApiFailureError(404, "the server could not find the requested resource")
    if not rest:
        raise ApiFailureError(404, "the server could not find the requested resource")
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    else:
        namespace = None
    plural = rest[0]
    name = rest[1] if len(rest) > 1 else None
    subresource = rest[2] if len(rest) > 2 else None
    return Target(api_version, plural, namespace, name, subresource)


def plural_of(kind: str) -> str:
    """The resource (URL) name Kubernetes uses for ``kind``."""
    if kind in _IRREGULAR_PLURALS:
        return _IRREGULAR_PLURALS[kind]
    lower = kind.lower()
    if lower.endswith("y"):
        return lower[:-1] + "ies"
    if lower.endswith("s"):
        return lower + "es"
    return lower + "s"


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 merge: maps merge recursively, ``null`` deletes a key, anything else replaces.

    Strategic merge patch uses this too. The difference (lists merged by a key such as a
    container's ``name``) does not matter for the labels, data and specs this fake is used for.
    """
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(section({"_": target}, "_"))
    for key, value in cast(Json, patch).items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def drop_unapplied(obj: Json, previous: Json, current: Json) -> None:
    """Remove from ``obj`` the map keys a field manager applied before but no longer applies.

    This is the part of server-side apply that makes "apply the whole desired object" also
    remove what the manager stopped wanting, while keeping fields other managers set. Inside a
    list merged by name (see :func:`apply_merge`), the items both applies name are compared.
    """
    for key, old in previous.items():
        if key not in current:
            obj.pop(key, None)
        elif isinstance(old, dict) and isinstance(obj.get(key), dict):
            drop_unapplied(obj[key], cast(Json, old), section(current, key))
        elif _by_name(old) is not None and _by_name(obj.get(key)) is not None:
            now = _by_name(cast(Any, current.get(key))) or {}
            live = _by_name(obj[key]) or {}
            for name, old_item in (_by_name(old) or {}).items():
                if name in now and name in live:
                    drop_unapplied(live[name], old_item, now[name])


def _by_name(value: Any) -> dict[str, Json] | None:
    """A list of objects that all have a string ``name``, keyed by it; None for anything else."""
    if not isinstance(value, list) or not value:
        return None
    items = cast(list[Any], value)
    if not all(
        isinstance(item, dict) and isinstance(cast(Json, item).get("name"), str) for item in items
    ):
        return None
    return {cast(Json, item)["name"]: cast(Json, item) for item in items}


def apply_merge(target: Any, patch: Any) -> Any:
    """Server-side apply's merge: :func:`merge_patch`, with lists of named objects by name.

    Lists of objects that all have a ``name`` (containers, env, volumes) merge item by item,
    as the API's associative lists do; items the patch does not name are kept, in their place.
    """
    if isinstance(patch, dict):
        result = dict(section({"_": target}, "_"))
        for key, value in cast(Json, patch).items():
            if value is None:
                result.pop(key, None)
            else:
                result[key] = apply_merge(result.get(key), value)
        return result
    live, wanted = _by_name(target), _by_name(patch)
    if live is None or wanted is None:
        return copy.deepcopy(patch)
    merged = [apply_merge(item, wanted.get(name, {})) for name, item in live.items()]
    merged += [copy.deepcopy(item) for name, item in wanted.items() if name not in live]
    return merged


def json_patch(target: Json, operations: Any) -> Json:
    """Apply an RFC 6902 JSON patch (``add``, ``replace``, ``remove``, ``test``).

    Raises:
        ApiFailureError: 422 for a malformed patch or a failed ``test``.
    """
    if not isinstance(operations, list):
        raise ApiFailureError(400, "a JSON patch must be a list of operations")
    result = copy.deepcopy(target)
    for operation in cast(list[Any], operations):
        if not isinstance(operation, dict) or "path" not in operation:
            raise ApiFailureError(422, f"invalid JSON patch operation: {operation!r}")
        op = cast(Json, operation)
        tokens = [t.replace("~1", "/").replace("~0", "~") for t in str(op["path"]).split("/")[1:]]
        if not tokens:
            raise ApiFailureError(422, "JSON patch on the whole document is not supported")
        parent: Any = result
        for token in tokens[:-1]:
            parent = _child(parent, token)
            if parent is None:
                raise ApiFailureError(422, f"JSON patch path not found: {op['path']}")
        _apply_json_op(parent, tokens[-1], op)
    return result


def _child(parent: Any, token: str) -> Any:
    if isinstance(parent, list):
        items = cast(list[Any], parent)
        return items[int(token)] if token.isdigit() and int(token) < len(items) else None
    return cast(Json, parent).get(token) if isinstance(parent, dict) else None


def _apply_json_op(parent: Any, last: str, operation: Json) -> None:
    op, value, path = operation.get("op"), operation.get("value"), operation["path"]
    if op not in ("add", "replace", "remove", "test"):
        raise ApiFailureError(422, f"unsupported JSON patch op {op!r}")
    if isinstance(parent, list):
        items = cast(list[Any], parent)
        index = len(items) if last == "-" else int(last)
        if op == "add":
            items.insert(index, value)
            return
        container: Any = items
        key: Any = index
        present = index < len(items)
    else:
        container = cast(Json, parent)
        key = last
        present = last in container
    if op in ("add", "replace"):
        container[key] = value
    elif not present:
        raise ApiFailureError(422, f"JSON patch path not found: {path}")
    elif op == "remove":
        del container[key]
    elif container[key] != value:
        raise ApiFailureError(422, f"JSON patch test failed at {path}")


def selector_matches(selector: str, labels: dict[str, str]) -> bool:
    """Whether ``labels`` satisfy a label selector such as ``a=b,c!=d,e in (f,g),!h``.

    Raises:
        ApiFailureError: 400 for a selector this fake cannot parse.
    """
    return all(_requirement_matches(req.strip(), labels) for req in _split_selector(selector))


def _split_selector(selector: str) -> list[str]:
    requirements: list[str] = []
    depth, start = 0, 0
    for i, char in enumerate(selector):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            requirements.append(selector[start:i])
            start = i + 1
    requirements.append(selector[start:])
    return [r for r in requirements if r.strip()]


_SET_REQUIREMENT = re.compile(r"^(\S+)\s+(in|notin)\s+\(([^)]*)\)$")  # codespell:ignore notin


def _requirement_matches(requirement: str, labels: dict[str, str]) -> bool:
    if match := _SET_REQUIREMENT.match(requirement):
        key, op, values = match.groups()
        allowed = {v.strip() for v in values.split(",")}
        return (labels.get(key) in allowed) if op == "in" else (labels.get(key) not in allowed)
    for op in ("!=", "==", "="):
        if op in requirement:
            key, _, value = requirement.partition(op)
            key, value = key.strip(), value.strip()
            return labels.get(key) != value if op == "!=" else labels.get(key) == value
    if requirement.startswith("!"):
        return requirement[1:].strip() not in labels
    if re.fullmatch(r"[-A-Za-z0-9_./]+", requirement):
        return requirement in labels
    raise ApiFailureError(400, f"unable to parse requirement: {requirement!r}")


def label_problems(labels: Any) -> list[str]:
    """Why the API server would reject these labels (empty when they are valid)."""
    if labels is None:
        return []
    if not isinstance(labels, dict):
        return ["labels must be a map of strings"]
    problems: list[str] = []
    for key, value in labels.items():  # pyright: ignore[reportUnknownVariableType]
        prefix, slash, name = str(key).rpartition("/")  # pyright: ignore[reportUnknownArgumentType]
        if slash and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
            problems.append(f"label key {key!r}: prefix must be a DNS subdomain")
        if not _LABEL_NAME.match(name):
            problems.append(f"label key {key!r}: name must be 63 characters or less, alphanumeric")
        if not isinstance(value, str) or (value and not _LABEL_NAME.match(value)):
            problems.append(
                f"label {key!r} value {value!r}: must be 63 characters or less, alphanumeric"
            )
    return problems


def selector_problems(obj: Json) -> list[str]:
    """Why the API server would reject this workload: its template escapes its own selector.

    A StatefulSet (or Deployment) whose ``spec.template.metadata.labels`` no longer carry every
    ``spec.selector.matchLabels`` entry is refused with 422, on create and on every update.
    """
    selector = section(obj, "spec", "selector", "matchLabels")
    template = section(obj, "spec", "template", "metadata", "labels")
    if all(template.get(key) == value for key, value in selector.items()):
        return []
    return [
        "spec.template.metadata.labels: Invalid value: `selector` does not match template `labels`"
    ]


def name_problems(name: Any) -> list[str]:
    """Why the API server would reject this object name (empty when it is valid)."""
    if not isinstance(name, str) or not name:
        return ["metadata.name: Required value"]
    if len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        return [f"metadata.name {name!r}: must be a lowercase RFC 1123 subdomain"]
    return []
