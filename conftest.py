# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Fixtures shared by every test suite of the monorepo.

The repository root is put on ``sys.path`` so test modules (collected with
``--import-mode=importlib``, which adds nothing to it) can import the helpers in
``tests/support`` as ``tests.support.<module>``.
"""

from __future__ import annotations

import os
import pathlib
import sys
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, settings

if TYPE_CHECKING:
    from collections.abc import Iterator

REPO_ROOT = pathlib.Path(__file__).resolve().parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.support.istio_crd import AuthorizationPolicyValidator  # noqa: E402
from tests.support.live_nginx import nginx_or_skip  # noqa: E402

VECTORS_DIR = REPO_ROOT / "tests" / "vectors"

# Property-based tests run on a 2-core machine next to other work: no per-example deadline.
# In CI the examples are also derandomized, so a green run stays green on the same code; a local
# run keeps exploring new examples (and `tox -e fuzz` runs the long campaign).
settings.register_profile(
    "repo", deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
settings.register_profile("ci", settings.get_profile("repo"), derandomize=True, database=None)
settings.load_profile("ci" if os.environ.get("CI") else "repo")


@pytest.fixture(autouse=True)
def _tracing_globals_restored() -> Iterator[None]:
    """Put ops[tracing]'s and OpenTelemetry's process globals back after every test.

    ops.testing swaps them for in-memory ones during a run and back at its end, but not when
    the charm's ``__init__`` raises (the tests that check a misdeclared endpoint is named): the
    swap then outlives the test, and a later run in the same pytest-xdist worker could write
    its trace buffer to a charm directory that no longer exists ("unable to open database
    file"). Juju runs each hook in a fresh process, so this is test-harness hygiene only.
    """
    try:
        import opentelemetry.trace as otel
        from ops_tracing import _backend
    except ImportError:
        yield
        return
    saved = (
        _backend._create_provider,
        _backend._exporter,
        otel._TRACER_PROVIDER,
        otel._TRACER_PROVIDER_SET_ONCE._done,
    )
    yield
    (
        _backend._create_provider,
        _backend._exporter,
        otel._TRACER_PROVIDER,
        otel._TRACER_PROVIDER_SET_ONCE._done,
    ) = saved


@pytest.fixture(scope="session")
def vectors_dir() -> pathlib.Path:
    """The golden data produced by the upstream libraries (``tests/vectors``, see its README)."""
    return VECTORS_DIR


@pytest.fixture(scope="session")
def authorization_policy_validator(
    vectors_dir: pathlib.Path,
) -> AuthorizationPolicyValidator:
    """Check a manifest against the Istio AuthorizationPolicy CRD; returns a list of errors."""
    return AuthorizationPolicyValidator(vectors_dir / "istio-authorizationpolicy-crd.yaml")


@pytest.fixture(scope="session")
def nginx_binary() -> str:
    """The host's nginx, which ``tests/support/live_nginx.py`` checks configs with and runs.

    Skips the test with a printed reason when nginx is missing, unless REQUIRE_NGINX=1.
    """
    return nginx_or_skip()
