"""``python -m tools.plan [TOPOLOGY] [--output DIR] [--format text|mermaid] [--diff OTHER]``.

Runs the real coordinator and worker charms on a topology (the built-in default one if none is
given) and prints what the deployment puts in the cluster and on the wire. Exit codes: 0 done,
1 the charms did not converge, 2 bad arguments or topology file.
"""

from __future__ import annotations

import argparse
import logging
import pathlib
import sys

from . import diff, footprint, render, simulate, topology


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tools.plan",
        description=(
            "Show what a coordinated-workers deployment does, without Juju or Kubernetes: pod "
            "labels, AuthorizationPolicies, who may talk to whom, nginx.conf, worker data."
        ),
    )
    parser.add_argument(
        "topology",
        nargs="?",
        type=pathlib.Path,
        help=f"topology YAML file (default: the tool's {topology.DEFAULT_TOPOLOGY.name})",
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


def _plan(path: pathlib.Path | None) -> footprint.Footprint:
    return footprint.plan(topology.load(path))


def _name(path: pathlib.Path | None) -> str:
    return "the default topology" if path is None else str(path)


def main(argv: list[str] | None = None) -> int:
    """Run the command; returns the exit code."""
    args = _parser().parse_args(argv)
    # The charms log what they do; only their errors belong on the terminal, and on stderr.
    # (ops.testing lowers the root logger's level while a hook runs, so filter on the handler.)
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.ERROR)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    try:
        before = _plan(args.topology)
        after = _plan(args.diff) if args.diff else None
    except topology.TopologyError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except simulate.NoFixedPointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    result = after or before
    if args.output:
        for path in render.write_manifests(result, args.output):
            print(f"wrote {path}", file=sys.stderr)
    if after is not None:
        sys.stdout.write(diff.text(before, after, _name(args.topology), _name(args.diff)))
    elif args.format == "mermaid":
        sys.stdout.write(render.mermaid(before))
    else:
        sys.stdout.write(render.text(before, _name(args.topology)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
