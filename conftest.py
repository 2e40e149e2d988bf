"""Fixtures shared by every test suite of the monorepo.

The repository root is put on ``sys.path`` so test modules (collected with
``--import-mode=importlib``, which adds nothing to it) can import the helpers in
``tests/support`` as ``tests.support.<module>``.
"""

from __future__ import annotations

import pathlib
import sys

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.support.istio_crd import AuthorizationPolicyValidator  # noqa: E402

VECTORS_DIR = REPO_ROOT.parent / "shared" / "vectors"


@pytest.fixture(scope="session")
def vectors_dir() -> pathlib.Path:
    """The upstream golden data, kept next to the checkout and never copied into it."""
    if not (VECTORS_DIR / "README.md").is_file():
        pytest.fail(
            f"golden vectors not found at {VECTORS_DIR}: check out the shared vectors next to "
            "the repository (as ../shared/vectors) before running the tests"
        )
    return VECTORS_DIR


@pytest.fixture(scope="session")
def authorization_policy_validator(
    vectors_dir: pathlib.Path,
) -> AuthorizationPolicyValidator:
    """Check a manifest against the Istio AuthorizationPolicy CRD; returns a list of errors."""
    return AuthorizationPolicyValidator(vectors_dir / "istio-authorizationpolicy-crd.yaml")
