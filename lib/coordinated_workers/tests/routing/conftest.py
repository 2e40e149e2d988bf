# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The host's nginx, for the routing tests: skipped with a printed reason only when missing."""

from __future__ import annotations

import os
import shutil

import pytest


@pytest.fixture(scope="session")
def nginx_binary() -> str:
    """Path to nginx; skip (with the reason printed by -ra) unless REQUIRE_NGINX=1."""
    binary = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )
    if binary is None:
        reason = "nginx is not installed, so routing configs cannot be checked or run"
        if os.environ.get("REQUIRE_NGINX") == "1":
            pytest.fail(reason + " (REQUIRE_NGINX=1)")
        print(reason)
        pytest.skip(reason)
    return binary
