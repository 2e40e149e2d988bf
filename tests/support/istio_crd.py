# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Validate AuthorizationPolicy manifests offline, about as strictly as the API server does.

There is no Kubernetes here, and model packages miss CEL rules and int-vs-string ports, so
this checks a manifest against the CRD's own ``v1`` schema:

* the OpenAPI v3 schema (OAS 3.0), with unknown fields rejected like the API server's
  pruning would silently drop them (a dropped field is a policy that does not do what we
  meant, so here it is an error);
* every ``x-kubernetes-validations`` CEL rule, evaluated with ``self`` bound to the
  sub-object it is declared on;
* the object metadata the schema leaves to Kubernetes: DNS-1123 name and namespace, and
  label keys and values.
"""

from __future__ import annotations

import copy
import re
from typing import TYPE_CHECKING, Any

import celpy
import yaml
from celpy import celtypes
from celpy.adapter import json_to_cel
from openapi_schema_validator import OAS30Validator, oas30_format_checker

if TYPE_CHECKING:
    import pathlib
    from collections.abc import Iterator

API_VERSION = "security.istio.io/v1"
KIND = "AuthorizationPolicy"

_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(rf"{_DNS1123_LABEL.pattern}(\.{_DNS1123_LABEL.pattern})*")
_LABEL_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_OBJECT_META_FIELDS = frozenset(
    {
        "name",
        "namespace",
        "labels",
        "annotations",
        "generateName",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "finalizers",
        "ownerReferences",
        "managedFields",
    }
)


class AuthorizationPolicyValidator:
    """Callable returning every problem found in a manifest; an empty list means valid."""

    def __init__(self, crd_path: pathlib.Path) -> None:
        crd = yaml.safe_load(crd_path.read_text())
        (version,) = (v for v in crd["spec"]["versions"] if v["name"] == "v1")
        self._schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
        self._validator = OAS30Validator(
            _closed(_with_object_envelope(self._schema)), format_checker=oas30_format_checker
        )
        self._cel = celpy.Environment()
        self._programs: dict[str, Any] = {}

    def __call__(self, manifest: dict[str, Any]) -> list[str]:
        """Return human-readable errors, each prefixed with the JSON path it concerns."""
        errors = [
            f"{_path(error.absolute_path)}: {error.message}"
            for error in self._validator.iter_errors(manifest)
        ]
        if errors:
            # CEL rules assume the declared types; evaluating them on a mistyped object
            # would only add noise to the real error.
            return errors
        errors += _metadata_errors(manifest["metadata"])
        errors += self._cel_errors(self._schema, manifest, ())
        return errors

    def _cel_errors(self, schema: dict[str, Any], value: Any, at: tuple[Any, ...]) -> list[str]:
        errors = [
            f"{_path(at)}: {rule['message']}"
            for rule in schema.get("x-kubernetes-validations", ())
            if not self._holds(rule["rule"], value)
        ]
        for sub_schema, sub_value, sub_at in _children(schema, value, at):
            errors += self._cel_errors(sub_schema, sub_value, sub_at)
        return errors

    def _holds(self, rule: str, value: Any) -> bool:
        if rule not in self._programs:
            self._programs[rule] = self._cel.program(self._cel.compile(rule))
        result = self._programs[rule].evaluate({"self": json_to_cel(value)})
        # An evaluation error comes back as a CELEvalError value: it counts as a violation.
        return isinstance(result, celtypes.BoolType) and bool(result)


def _children(
    schema: dict[str, Any], value: Any, at: tuple[Any, ...]
) -> Iterator[tuple[dict[str, Any], Any, tuple[Any, ...]]]:
    """Pair each present sub-value with the schema node that describes it."""
    if isinstance(value, dict):
        properties: dict[str, Any] = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, sub_value in value.items():
            if key in properties:
                yield properties[key], sub_value, (*at, key)
            elif isinstance(extra, dict):
                yield extra, sub_value, (*at, key)
    elif isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            yield schema["items"], item, (*at, index)


def _with_object_envelope(schema: dict[str, Any]) -> dict[str, Any]:
    """Declare the fields every Kubernetes object has but a CRD schema leaves implicit."""
    schema = copy.deepcopy(schema)
    schema["properties"] = {
        "apiVersion": {"type": "string", "enum": [API_VERSION]},
        "kind": {"type": "string", "enum": [KIND]},
        # Checked by _metadata_errors: Kubernetes, not the CRD, owns ObjectMeta.
        "metadata": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        **schema["properties"],
    }
    schema["required"] = ["apiVersion", "kind", "metadata"]
    return schema


def _closed(schema: Any) -> Any:
    """Copy a schema, rejecting unknown fields wherever Kubernetes would prune them."""
    if isinstance(schema, list):
        return [_closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    closed = {key: _closed(sub) for key, sub in schema.items()}
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        closed["additionalProperties"] = False
    return closed


def _metadata_errors(metadata: dict[str, Any]) -> list[str]:
    errors = [
        f"metadata.{key}: unknown field" for key in metadata if key not in _OBJECT_META_FIELDS
    ]
    name = metadata.get("name")
    if not isinstance(name, str) or not _is_dns1123_subdomain(name):
        errors.append(f"metadata.name: {name!r} is not a DNS-1123 subdomain of <= 253 characters")
    namespace = metadata.get("namespace")
    if not isinstance(namespace, str) or not _is_dns1123_label(namespace):
        errors.append(f"metadata.namespace: {namespace!r} is not a DNS-1123 label")
    labels = metadata.get("labels", {})
    if not isinstance(labels, dict):
        return [*errors, "metadata.labels: not a map"]
    for key, value in labels.items():
        if not _is_qualified_name(key):
            errors.append(f"metadata.labels: {key!r} is not a valid label key")
        if not _is_label_value(value):
            errors.append(f"metadata.labels[{key!r}]: {value!r} is not a valid label value")
    return errors


def _is_dns1123_label(text: str) -> bool:
    return len(text) <= 63 and _DNS1123_LABEL.fullmatch(text) is not None


def _is_dns1123_subdomain(text: str) -> bool:
    return len(text) <= 253 and _DNS1123_SUBDOMAIN.fullmatch(text) is not None


def _is_qualified_name(key: Any) -> bool:
    """``[prefix/]name``: prefix a DNS-1123 subdomain, name at most 63 characters."""
    if not isinstance(key, str):
        return False
    prefix, slash, name = key.rpartition("/")
    if slash and not _is_dns1123_subdomain(prefix):
        return False
    return len(name) <= 63 and _LABEL_NAME.fullmatch(name) is not None


def _is_label_value(value: Any) -> bool:
    return isinstance(value, str) and (
        value == "" or (len(value) <= 63 and _LABEL_NAME.fullmatch(value) is not None)
    )


def _path(parts: Any) -> str:
    text = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in parts)
    return text.lstrip(".") or "<root>"
