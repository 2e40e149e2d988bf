# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""nginx.conf text from a directive tree, exactly as ``crossplane.build`` writes it.

The tree is crossplane's format (``{"directive", "args", "block"}``), so the output can be
parsed back with crossplane; tests check it is byte-for-byte what ``crossplane.build`` makes.
"""

from __future__ import annotations

import re
from typing import TypedDict


class Directive(TypedDict, total=False):
    """One nginx directive, with its arguments and, for blocks, its children."""

    directive: str
    args: list[str]
    block: list[Directive]


def directive(name: str, *args: str, block: list[Directive] | None = None) -> Directive:
    """A directive; pass `block` (even empty) for a block directive."""
    node: Directive = {"directive": name, "args": list(args)}
    if block is not None:
        node["block"] = block
    return node


def build(tree: list[Directive]) -> str:
    """Render `tree` as ``crossplane.build`` does (4-space indent, no header), but faster.

    crossplane decides, character by character, whether each argument needs quotes, and
    would be imported on every hook for the few arguments that need them (log formats,
    ``if`` conditions). Plain words are
    recognised by one regular expression; the others follow crossplane's quoting rules,
    reimplemented below. Tests check the output is byte-for-byte what ``crossplane.build``
    produces, on this charm's configs and on generated trees of arbitrary arguments.
    """
    lines: list[str] = []
    _build_block(tree, "", lines)
    return "\n".join(lines)


def _build_block(block: list[Directive], margin: str, lines: list[str]) -> None:
    plain = _PLAIN_ARG.fullmatch  # most words are plain: one C call each, no Python call
    for stmt in block:
        name = stmt.get("directive", "")
        if not plain(name):
            name = _quoted(name)
        args = [arg if plain(arg) else _quoted(arg) for arg in stmt.get("args", ())]
        head = f"if ({' '.join(args)})" if name == "if" else " ".join((name, *args))
        children = stmt.get("block")
        if children is None:
            lines.append(f"{margin}{head};")
            continue
        lines.append(f"{margin}{head} {{")
        _build_block(children, margin + "    ", lines)
        lines.append(f"{margin}}}")


# Arguments nginx reads literally: no whitespace, braces, semicolons, quotes or backslashes,
# not ending in ``$``. Only the others need the slower checks of `_needs_quotes`.
_PLAIN_ARG = re.compile(r"[^\s{};\"'\\]*[^\s{};\"'\\$]")

# Units that may not start an unquoted argument, and that may not appear anywhere in one.
_BAD_FIRST = frozenset(("{", "}", ";", '"', "'", "${"))
_BAD_ANYWHERE = frozenset(("{", ";", '"', "'"))
_WHITESPACE = re.compile(r"\s")


def _quoted(arg: str) -> str:
    """`arg` as crossplane writes it: as is, or as a Python string literal (backslashes kept)."""
    if _PLAIN_ARG.fullmatch(arg) or not _needs_quotes(arg):
        return arg
    return repr(arg).replace("\\\\", "\\")


def _needs_quotes(arg: str) -> bool:
    """Whether crossplane quotes `arg`: nginx would not read it back as this one argument.

    That is: an empty argument; one starting with whitespace, a brace, a semicolon, a quote or
    ``${``; one holding whitespace, ``{``, ``;`` or a quote; one whose ``${...}`` expansions
    do not pair up; and one ending in an escape (a backslash) or a bare ``$``.
    """
    if not arg:
        return True
    if "\\" not in arg and _WHITESPACE.search(arg):
        return True  # with no escapes, each whitespace character is a unit of its own
    units = _lexical_units(arg)
    first = units[0]
    if first.isspace() or first in _BAD_FIRST:
        return True
    in_expansion = False
    for unit in units[1:]:
        if unit.isspace() or unit in _BAD_ANYWHERE:
            return True
        if unit == ("${" if in_expansion else "}"):
            return True  # a "${" inside an expansion, or a "}" outside one
        if unit in ("${", "}"):
            in_expansion = not in_expansion
    return units[-1] in ("\\", "$") or in_expansion


def _lexical_units(arg: str) -> list[str]:
    """`arg` cut as crossplane's quoting check cuts it.

    A backslash and the character after it are one unit, so is ``${``; every other character
    is a unit of its own. A final backslash or ``$`` is counted once more at the end, even
    when it already closed a unit (crossplane's tokenizer does so, and its answers follow).
    """
    units: list[str] = []
    waiting = ""  # a backslash, or a "$" that may start "${"
    for char in arg:
        if waiting == "\\" or (waiting == "$" and char == "{"):
            units.append(waiting + char)
            waiting = ""
            continue
        if waiting == "$":
            units.append("$")
        waiting = char if char in "\\$" else ""
        if not waiting:
            units.append(char)
    if arg[-1] in "\\$":
        units.append(arg[-1])
    return units
