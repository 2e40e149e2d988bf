"""Service mesh integration for Juju charms (placeholder docstring, completed with the public API)."""

from ._models import (
    AppPolicy,
    CMRData,
    Endpoint,
    MeshPolicy,
    MeshType,
    Method,
    Policy,
    PolicyTargetType,
    ServiceMeshProviderAppData,
    UnitPolicy,
)

__all__ = [
    "AppPolicy",
    "CMRData",
    "Endpoint",
    "MeshPolicy",
    "MeshType",
    "Method",
    "Policy",
    "PolicyTargetType",
    "ServiceMeshProviderAppData",
    "UnitPolicy",
]
