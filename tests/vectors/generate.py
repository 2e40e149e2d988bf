# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Regenerate the golden data that the published upstream packages produce.

``tox -e vectors`` runs this module: it runs charmlibs-interfaces-service-mesh and
canonical-service-mesh (the ``contract`` dependency group, pinned in ``pyproject.toml``), never
our own libraries, and rewrites the files of :data:`GENERATORS` in ``tests/vectors/``. With
``--check`` it rewrites nothing and exits 1 naming the files that differ.
``tests/contract/test_vectors.py`` runs the same generators in process and fails on a difference,
so a new upstream release or a hand edit of a golden file cannot go unnoticed.

Why the environment is part of the output: ``_produced_by`` names the versions of every package
that shaped a file, as the lock file installs them. Only the two upstream versions are part of the
contract; the others (ops, lightkube, pydantic) are recorded for the reader, and the contract
test ignores them so that a routine bump of ops does not read as an upstream change.

The generators themselves are in ``_upstream_relations.py`` (relation bags, label
reconciliation) and ``_upstream_policies.py`` (policy builder, PolicyResourceManager, the
beacon's managed mode). Kubernetes requests are made by a real ``lightkube.Client`` against
``service_mesh.testing.FakeKubernetes`` (our recording fake API server: the only part of this
repository involved, as the server side of the wire).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from ._upstream_common import (
    ENVIRONMENT_PACKAGES,
    UPSTREAM_PACKAGES,
    VECTORS_DIR,
    render,
)
from ._upstream_policies import (
    beacon_from_consumer_wire,
    beacon_from_consumer_yaml,
    builder_edge_cases,
    builder_raw_cluster_internal,
    cluster_internal_yaml,
    deletes_sorted,
    prm_cluster_internal_wire,
)
from ._upstream_relations import (
    consumer_databag,
    provider_databag,
    reconcile_charm_labels_wire,
)

__all__ = [
    "ENVIRONMENT_PACKAGES",
    "GENERATORS",
    "UPSTREAM_PACKAGES",
    "VECTORS_DIR",
    "deletes_sorted",
    "main",
    "render",
]

# ----- the command -----

GENERATORS: dict[str, Callable[[], str]] = {
    "consumer-databag-tempo.json": lambda: render(consumer_databag()),
    "provider-databag-istio-beacon.json": lambda: render(provider_databag()),
    "policy-builder-raw-cluster-internal-tempo.json": lambda: render(
        builder_raw_cluster_internal()
    ),
    "policy-builder-edge-cases.json": lambda: render(builder_edge_cases()),
    "prm-cluster-internal-tempo-wire.json": lambda: render(prm_cluster_internal_wire()),
    "authorizationpolicies-cluster-internal-tempo.yaml": cluster_internal_yaml,
    "reconcile-charm-labels-wire.json": lambda: render(reconcile_charm_labels_wire()),
    "beacon-from-consumer-tempo-wire.json": lambda: render(beacon_from_consumer_wire()),
    "authorizationpolicies-beacon-from-consumer-tempo.yaml": beacon_from_consumer_yaml,
}
"""Each regenerated file, and the function that produces its text."""


def main(argv: list[str] | None = None) -> int:
    """Rewrite (or, with --check, compare) every file of :data:`GENERATORS`."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="compare only; exit 1 on a difference"
    )
    args = parser.parse_args(argv)
    differ: list[str] = []
    for name, generate in GENERATORS.items():
        path = VECTORS_DIR / name
        text = generate()
        current = path.read_text() if path.exists() else None
        if current == text:
            print(f"unchanged  tests/vectors/{name}")
            continue
        differ.append(name)
        if not args.check:
            path.write_text(text)
        print(f"{'differs' if args.check else 'rewritten'}  tests/vectors/{name}")
    if args.check and differ:
        print(
            f"{len(differ)} file(s) differ from what the upstream packages produce;"
            " run tox -e vectors"
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
