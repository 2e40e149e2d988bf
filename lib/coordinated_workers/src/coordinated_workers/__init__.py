"""Coordinator/worker charm framework (placeholder until the package lands)."""
