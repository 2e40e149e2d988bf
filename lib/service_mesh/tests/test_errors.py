# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Every named error of service_mesh has one base; MissingEndpointError is a KeyError too."""

from __future__ import annotations

import pytest

from service_mesh import MissingEndpointError, ServiceMeshError
from service_mesh.errors import MissingEndpointError as FromErrors


def test_missing_endpoint_error_lives_in_errors_and_has_both_bases():
    assert MissingEndpointError is FromErrors
    with pytest.raises(KeyError):
        raise MissingEndpointError("api", "named by a mesh policy")
    with pytest.raises(ServiceMeshError) as raised:
        raise MissingEndpointError("api", "named by a mesh policy")
    assert str(raised.value).startswith("relation endpoint 'api' (named by a mesh policy)")
