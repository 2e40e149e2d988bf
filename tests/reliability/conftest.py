# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Fixtures and hypothesis profiles for the reliability suite (faults, fuzzing, lifecycle).

Both charms run through ops.testing; each builds its own ``lightkube.Client()`` from
``KUBECONFIG``, which points at a loopback :class:`~service_mesh.testing.FakeKubernetes`.

Hypothesis profiles: the default keeps the unit suite quick; ``HYPOTHESIS_PROFILE=long``
(``tox -e fuzz``) runs the long campaign. The fuzz figures (cases tried, uncaught exceptions,
cases in which the last good state was kept) are printed at the end of any run that fuzzed;
under pytest-xdist the workers send theirs to the controller, which prints the sums.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

sys.path.insert(0, str(Path(__file__).parent))

from reliability_charms import MODEL, new_kubernetes
from reliability_figures import FIGURES

from service_mesh.testing import FakeKubernetes

settings.register_profile("long", deadline=None, print_blob=True)
if os.environ.get("HYPOTHESIS_PROFILE") == "long":
    settings.load_profile("long")


@pytest.fixture
def kube() -> Iterator[FakeKubernetes]:
    """The fake cluster both charms reach through their own ``lightkube.Client()``."""
    fake = new_kubernetes()
    with fake.serve_to_environment(namespace=MODEL):
        yield fake


def pytest_sessionfinish(session: pytest.Session) -> None:
    """In a pytest-xdist worker: hand this worker's figures to the controller."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["reliability_figures"] = FIGURES.export()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """In the pytest-xdist controller: add a finished worker's figures to the ones printed."""
    figures = getattr(node, "workeroutput", {}).get("reliability_figures")
    if figures is not None:
        FIGURES.absorb(figures)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES.any():
        terminalreporter.write_sep("=", "fuzz figures (reliability suite)")
        for line in FIGURES.table():
            terminalreporter.write_line(line)
    if FIGURES.nginx_t or FIGURES.nginx_missing:
        terminalreporter.write_sep("=", "rendered configs checked by the real nginx -t")
        for line in FIGURES.nginx_table():
            terminalreporter.write_line(line)
