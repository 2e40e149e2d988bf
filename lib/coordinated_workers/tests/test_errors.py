# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""One exception base for the library, one Problem shape shared with service_mesh."""

from __future__ import annotations

import pytest

import service_mesh
from coordinated_workers import (
    ClusterDataError,
    ClusterRolesConfigError,
    CoordinatedWorkersError,
    Problem,
    ProblemLevel,
    UnknownRolesError,
)
from coordinated_workers._nginx import (
    NginxConfigError,
    NginxConfigRejectedError,
    NginxReloadError,
    NoNameserverError,
)
from coordinated_workers.telemetry._databag import DatabagError


@pytest.mark.parametrize(
    "error",
    [
        ClusterDataError,
        ClusterRolesConfigError,
        DatabagError,
        NginxConfigError,
        NginxConfigRejectedError,
        NginxReloadError,
        NoNameserverError,
        UnknownRolesError,
    ],
)
def test_every_named_error_has_the_library_base(error: type[Exception]):
    assert issubclass(error, CoordinatedWorkersError)


@pytest.mark.parametrize(
    "error", [ClusterDataError, ClusterRolesConfigError, NoNameserverError, UnknownRolesError]
)
def test_bad_input_errors_are_still_value_errors(error: type[Exception]):
    assert issubclass(error, ValueError)


def test_problem_is_the_service_mesh_one_with_an_enum_level():
    assert Problem is service_mesh.Problem
    assert Problem.blocked("x").level is ProblemLevel.BLOCKED
    assert Problem.waiting("x").level == "waiting"  # a str enum: compares with its name
