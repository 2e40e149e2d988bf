"""The one base of every error the coordinated_workers library raises on purpose."""

from __future__ import annotations


class CoordinatedWorkersError(Exception):
    """Base class of every named error of coordinated_workers.

    Each error keeps the built-in base it had (``ValueError`` for bad input), so code that
    caught that one keeps working; a charm may catch this base to catch them all.
    """
