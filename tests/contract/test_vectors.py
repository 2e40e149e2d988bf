# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The committed golden data is what the published upstream packages produce today.

``tests/vectors/generate.py`` (``tox -e vectors``) writes these files by running
charmlibs-interfaces-service-mesh and canonical-service-mesh; here the same generators run in
process and their output is compared with the committed file. A difference means either a hand
edit of a golden file or an upstream change: run ``tox -e vectors`` and read the diff.

What is compared: every key of every file, and of ``_produced_by`` the versions of the two
upstream packages; the other versions there (ops, lightkube, pydantic) describe the environment
of the last regeneration and may move with the lock file without changing anything upstream does.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.vectors import generate

pytestmark = pytest.mark.contract


def comparable(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with ``_produced_by`` reduced to the upstream packages' versions."""
    produced_by = document.get("_produced_by", {})
    return {
        **document,
        "_produced_by": {
            name: produced_by.get(name)
            for name in generate.UPSTREAM_PACKAGES
            if name in produced_by
        },
    }


@pytest.mark.parametrize("name", sorted(generate.GENERATORS))
def test_committed_vector_is_what_upstream_produces(name: str):
    committed = (generate.VECTORS_DIR / name).read_text()

    produced = generate.GENERATORS[name]()

    if name.endswith(".json"):
        # The layout is the generator's, so that `tox -e vectors` rewrites nothing by itself.
        assert committed == generate.render(json.loads(committed))
        assert comparable(json.loads(committed)) == comparable(json.loads(produced))
    else:
        assert committed == produced


def test_every_json_vector_names_the_upstream_versions_that_produced_it():
    for name in generate.GENERATORS:
        if name.endswith(".json"):
            document = json.loads((generate.VECTORS_DIR / name).read_text())
            assert set(generate.UPSTREAM_PACKAGES) <= set(document["_produced_by"]), name


def test_the_generator_normalises_upstreams_set_ordered_deletes():
    # Upstream deletes in the order of a Python set; only a sorted log is reproducible.
    def delete(path: str) -> dict[str, Any]:
        return {"method": "DELETE", "path": path, "query": {}, "content_type": None, "body": None}

    get = {"method": "GET", "path": "/x", "query": {}, "content_type": None, "body": None}

    ordered = generate.deletes_sorted([get, delete("/b"), delete("/a"), get, delete("/d")])

    assert [r["path"] for r in ordered] == ["/x", "/a", "/b", "/x", "/d"]
