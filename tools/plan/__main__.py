# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""``python -m tools.plan [TOPOLOGY] [--show S] [--output DIR] [--format F] [--diff OTHER]``.

Runs the real coordinator and worker charms on a topology (the built-in default one if none is
given) and prints what the deployment puts in the cluster and on the wire, summary first. Exit
codes: 0 done, 1 the plan has problems (a unit did not end active, the charms did not settle),
2 bad arguments or topology file. Every error is one line on stderr.
"""

from __future__ import annotations

import argparse
import difflib
import logging
import pathlib
import sys
from typing import NoReturn

from . import diff, footprint, render, simulate, topology


class UsageError(Exception):
    """A bad command line; the message is one line."""


class _Parser(argparse.ArgumentParser):
    """argparse, but an error is one line (no usage block) and exit code 2, like the rest."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see --help)")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m tools.plan",
        description=(
            "Show what a coordinated-workers deployment does, without Juju or Kubernetes: a "
            "summary, who may talk to whom, and on request pod labels, unit statuses, "
            "AuthorizationPolicies, nginx.conf and worker data."
        ),
    )
    parser.add_argument(
        "topology",
        nargs="?",
        type=pathlib.Path,
        help=f"topology YAML file (default: the tool's {topology.DEFAULT_TOPOLOGY.name})",
    )
    sections = ", ".join(f"{name} ({what})" for name, what in render.SECTIONS.items())
    parser.add_argument(
        "--show",
        metavar="SECTIONS",
        help=(
            f"comma-separated sections of the text report, or `all`: {sections}. "
            f"Default: {','.join(render.DEFAULT_SECTIONS)}"
        ),
    )
    parser.add_argument(
        "--output",
        type=pathlib.Path,
        metavar="DIR",
        help="also write the AuthorizationPolicies to DIR as YAML (OTHER's with --diff)",
    )
    parser.add_argument("--format", choices=("text", "mermaid"), default="text")
    parser.add_argument(
        "--diff",
        type=pathlib.Path,
        metavar="OTHER",
        help="print what changes when going from TOPOLOGY to the OTHER topology",
    )
    return parser


def _sections(value: str | None) -> tuple[str, ...]:
    if value is None:
        return render.DEFAULT_SECTIONS
    names = [name.strip() for name in value.split(",") if name.strip()]
    if names == ["all"]:
        return tuple(render.SECTIONS)
    for name in names:
        if name not in render.SECTIONS:
            close = difflib.get_close_matches(name, [*render.SECTIONS, "all"], n=1)
            hint = (
                f"did you mean {close[0]!r}?"
                if close
                else "known: " + ", ".join([*render.SECTIONS, "all"])
            )
            raise UsageError(f"--show: unknown section {name!r}; {hint}")
    if not names:
        raise UsageError("--show: name at least one section, or `all`")
    return tuple(names)


def _check(args: argparse.Namespace) -> tuple[str, ...]:
    """Refuse what cannot work before running anything (a plan of 500 apps takes seconds)."""
    if args.diff is not None and args.format == "mermaid":
        raise UsageError("--diff prints text only; it cannot be combined with --format mermaid")
    if args.show is not None and (args.diff is not None or args.format == "mermaid"):
        raise UsageError("--show chooses sections of the text report, not of --diff or mermaid")
    return _sections(args.show)


def _prepare_output(directory: pathlib.Path) -> None:
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"--output {directory}: exists and is not a directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"--output {directory}: cannot create it: {e.strerror or e}") from None
    probe = directory / ".tools-plan-write-test"
    try:
        probe.touch()
        probe.unlink()
    except OSError as e:
        raise UsageError(f"--output {directory}: cannot write there: {e.strerror or e}") from None


def _name(path: pathlib.Path | None) -> str:
    return "the default topology" if path is None else str(path)


def _error(message: str, code: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    """Run the command; returns the exit code."""
    try:
        args = _parser().parse_args(argv)
        show = _check(args)
    except UsageError as e:
        return _error(str(e), 2)
    # The charms log what they do; only their errors belong on the terminal, and on stderr.
    # (ops.testing lowers the root logger's level while a hook runs, so filter on the handler.)
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.ERROR)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        return _run(args, show)
    except topology.TopologyError as e:
        return _error(str(e), 2)
    except simulate.NoFixedPointError as e:
        return _error(str(e), 1)
    finally:
        root.removeHandler(handler)


def _run(args: argparse.Namespace, show: tuple[str, ...]) -> int:
    # Everything that can be refused is, before the first plan runs (500 apps take seconds).
    first = topology.load(args.topology)
    other = topology.load(args.diff) if args.diff else None
    if args.output is not None:
        try:
            _prepare_output(args.output)
        except UsageError as e:
            return _error(str(e), 2)
    before = footprint.plan(first)
    after = footprint.plan(other) if other else None
    result = after or before
    if args.output:
        try:
            written = render.write_manifests(result, args.output)
        except OSError as e:
            return _error(f"--output {args.output}: cannot write: {e.strerror or e}", 2)
        for path in written:
            print(f"wrote {path}", file=sys.stderr)
    if after is not None:
        sys.stdout.write(diff.text(before, after, _name(args.topology), _name(args.diff)))
    elif args.format == "mermaid":
        sys.stdout.write(render.mermaid(before))
    else:
        sys.stdout.write(render.text(before, _name(args.topology), show))
    problems = result.problems
    if problems:
        more = (
            f" (and {render.plural(len(problems) - 1, 'more problem')})"
            if len(problems) > 1
            else ""
        )
        return _error(f"the plan has problems: {problems[0]}{more}", 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
