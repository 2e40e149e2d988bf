# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Databag helpers both libraries share: change-only writes, one JSON form, one-line errors.

Public so that ``coordinated_workers`` (and a charm library built the same way) uses these
rather than a copy; a charm itself rarely needs them.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from ._text import safe_text

if TYPE_CHECKING:
    from collections.abc import Mapping, MutableMapping

    import pydantic

__all__ = ["canonical_json", "describe_validation_error", "update_changed"]


def update_changed(bag: MutableMapping[str, str], data: Mapping[str, str]) -> bool:
    """Write only the keys whose value differs, returning whether anything was written.

    Every write is a ``relation-set`` for Juju and wakes the remote side with
    relation-changed, so rewriting an identical value is pure cost. An empty value removes the
    key, as it does in Juju (which cannot store empty values); other keys are left alone.
    """
    changed = False
    for key, value in data.items():
        if bag.get(key, "") == value:
            continue
        if value:
            bag[key] = value
        else:
            del bag[key]
        changed = True
    return changed


def canonical_json(value: object) -> str:
    """Deterministic JSON (sorted keys): the same data always gives the same string.

    For what we compare or publish in our own format, so a bag or a fingerprint never flaps.
    Data that must match upstream byte for byte keeps upstream's own encoding instead.
    """
    return json.dumps(value, sort_keys=True)


def describe_validation_error(
    error: pydantic.ValidationError, *, most: int = 1, location_limit: int = 60
) -> str:
    """Summarise a validation error in one line a charm can put in a status message.

    The input is never echoed (it may be huge). The location may hold remote text (a mapping
    key of any length and content), so each part goes through `safe_text`.

    Args:
        error: what pydantic raised.
        most: how many of its errors to name; a count of the others follows them.
        location_limit: characters kept of each part of an error's location.
    """
    details = error.errors(include_url=False, include_input=False, include_context=False)
    parts: list[str] = []
    for detail in details[:most]:
        location = ".".join(safe_text(str(part), location_limit) for part in detail["loc"])
        parts.append(f"{location}: {detail['msg']}" if location else detail["msg"])
    if len(details) > most > 1:
        parts.append(f"and {len(details) - most} more errors")
    return "; ".join(parts)
