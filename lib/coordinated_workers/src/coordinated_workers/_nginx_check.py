# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The last check of nginx.conf before it is pushed: nothing in it the renderer did not place.

Remote data (telemetry URLs, worker app names) reaches nginx.conf only through strict grammars
(`telemetry_proxy`, Juju app names). The final directive tree is checked again for the two
mistakes for which nginx refuses the whole file, which would leave every later change (a new
worker app) unapplied and keep nginx from starting on a fresh pod:

- a ``$`` the renderer did not write: nginx reads ``$name`` as a variable even inside quotes,
  and an unknown one fails ``nginx -t`` (``unknown "evil" variable``);
- two locations with the same match in one server (``duplicate location``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ._status import CoordinatedWorkersError

if TYPE_CHECKING:
    from ._nginx_text import Directive

# What nginx takes for a variable reference: ``$name``, ``${name}`` or a capture ``$1``.
_REFERENCE = re.compile(r"\$(?:\{(?P<braced>[^}]*)\}|(?P<name>[A-Za-z0-9_]*))")


class NginxConfigError(CoordinatedWorkersError, ValueError):
    """The rendered config holds something the renderer did not place; it must not be pushed."""


def dollar_count(directive: Directive) -> int:
    """How many ``$`` the arguments of `directive` and of everything inside it hold."""
    return sum(arg.count("$") for node in _nodes([directive]) for arg in node.get("args", ()))


def check_tree(tree: list[Directive], variables: frozenset[str]) -> None:
    """Refuse a tree nginx would misread or reject.

    Args:
        tree: the whole nginx.conf.
        variables: every variable name the renderer writes (without ``$``).

    Raises:
        NginxConfigError: naming every stray ``$`` and every duplicate location.
    """
    nodes = _nodes(tree)
    problems = [
        f"{node.get('directive', '')} argument {arg!r} refers to a variable it should not"
        for node in nodes
        for arg in node.get("args", ())
        if "$" in arg and not _only_known_references(arg, variables)
    ]
    problems += [f"duplicate location {key!r}" for key in _duplicates(nodes)]
    if problems:
        raise NginxConfigError("; ".join(problems))


def location_key(directive: Directive) -> str:
    """A location's match (modifier and path) as nginx compares them for duplicates."""
    return " ".join(directive.get("args", []))


def duplicate_locations(tree: list[Directive]) -> list[str]:
    """The location matches that appear more than once in one server block."""
    return _duplicates(_nodes(tree))


def _duplicates(nodes: list[Directive]) -> list[str]:
    duplicates: list[str] = []
    for node in nodes:
        if node.get("directive") != "server":
            continue
        seen: set[str] = set()
        for child in node.get("block", []):
            if child.get("directive") != "location":
                continue
            key = location_key(child)
            if key in seen:
                duplicates.append(key)
            seen.add(key)
    return duplicates


def _only_known_references(arg: str, variables: frozenset[str]) -> bool:
    """Every ``$`` in `arg` starts a known variable, or ends a regular expression (``^...$``)."""
    for match in _REFERENCE.finditer(arg):
        name = match["braced"] if match["braced"] is not None else match["name"]
        if name in variables:
            continue
        is_anchor = not name and match.end() == len(arg) and arg.startswith("^")
        if not is_anchor:
            return False
    return True


def _nodes(tree: list[Directive]) -> list[Directive]:
    """Every directive of `tree`, each block's children after it, depth first.

    One list built without recursion or generators: this runs on every hook, and a tree of a
    few hundred directives would otherwise cost a Python call per directive and per level.
    """
    nodes: list[Directive] = []
    pending = [iter(tree)]
    while pending:
        for node in pending[-1]:
            nodes.append(node)
            children = node.get("block")
            if children:
                pending.append(iter(children))
                break
        else:
            pending.pop()
    return nodes
