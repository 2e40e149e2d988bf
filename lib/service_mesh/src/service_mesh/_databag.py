"""Small helpers shared by the relation classes: change-only writes and readable errors."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._text import safe_text

if TYPE_CHECKING:
    from collections.abc import Mapping, MutableMapping

    import pydantic


def update_changed(bag: MutableMapping[str, str], data: Mapping[str, str]) -> bool:
    """Write only the keys whose value differs, returning whether anything was written.

    Every write is a ``relation-set`` for Juju and wakes the remote side with
    relation-changed, so rewriting an identical value is pure cost.
    """
    changed = {key: value for key, value in data.items() if bag.get(key) != value}
    if changed:
        bag.update(changed)
    return bool(changed)


def describe(error: pydantic.ValidationError) -> str:
    """Summarise a validation error in one line a charm can put in a status message.

    The location may hold remote text (a mapping key of any length and content), so each part
    goes through `safe_text`.
    """
    first = error.errors(include_url=False, include_input=False)[0]
    location = ".".join(safe_text(str(part), 60) for part in first["loc"])
    return f"{location}: {first['msg']}" if location else first["msg"]
