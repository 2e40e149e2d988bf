"""Service mesh integration for Juju charms."""

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
