"""nginx.conf text from a directive tree, exactly as ``crossplane.build`` writes it.

The tree is crossplane's format (``{"directive", "args", "block"}``), so the output can be
parsed back with crossplane; tests check it is byte-for-byte what ``crossplane.build`` makes.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, TypedDict, cast

if TYPE_CHECKING:
    from collections.abc import Callable


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

    crossplane decides, character by character, whether each argument needs quotes; that
    was a third of a steady-state hook's own work. Almost every argument here is a plain
    word, which never needs quotes, so only the others go through crossplane itself (imported
    then, which also keeps it out of the worker's import chain). Tests check the output is
    byte-for-byte what ``crossplane.build`` produces.
    """
    lines: list[str] = []
    _build_block(tree, "", lines)
    return "\n".join(lines)


def _build_block(block: list[Directive], margin: str, lines: list[str]) -> None:
    for stmt in block:
        name = _quoted(stmt.get("directive", ""))
        args = [_quoted(arg) for arg in stmt.get("args", [])]
        head = f"if ({' '.join(args)})" if name == "if" else " ".join((name, *args))
        children = stmt.get("block")
        if children is None:
            lines.append(f"{margin}{head};")
            continue
        lines.append(f"{margin}{head} {{")
        _build_block(children, margin + "    ", lines)
        lines.append(f"{margin}}}")


# Arguments nginx reads literally: no whitespace, braces, semicolons, quotes or backslashes,
# not ending in ``$``. Anything else is quoted by crossplane's own rules.
_PLAIN_ARG = re.compile(r"[^\s{};\"'\\]*[^\s{};\"'\\$]")


def _quoted(arg: str) -> str:
    if _PLAIN_ARG.fullmatch(arg):
        return arg
    import crossplane  # pyright: ignore[reportMissingTypeStubs]

    build = cast(
        "Callable[[list[Directive]], str]",
        crossplane.build,  # pyright: ignore[reportUnknownMemberType]
    )
    return build([{"directive": "x", "args": [arg]}])[2:-1]
