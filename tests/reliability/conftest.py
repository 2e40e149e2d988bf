"""Fixtures and hypothesis profiles for the reliability suite (faults, fuzzing, lifecycle).

Both charms run through ops.testing; each builds its own ``lightkube.Client()`` from
``KUBECONFIG``, which points at a loopback :class:`~service_mesh.testing.FakeKubernetes`.

Hypothesis profiles: the default keeps the unit suite quick; ``HYPOTHESIS_PROFILE=long``
(``tox -e fuzz``) runs the long campaign. The fuzz figures (cases tried, uncaught exceptions,
cases in which the last good state was kept) are printed at the end of any run that fuzzed.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

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


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES.any():
        terminalreporter.write_sep("=", "fuzz figures (reliability suite)")
        for line in FIGURES.table():
            terminalreporter.write_line(line)
