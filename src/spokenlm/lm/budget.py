"""Training budgets (steps, tokens or wall-clock hours): now in :mod:`spokenlm.training.schedule`,
shared by every trainer; re-exported here for older imports."""

from __future__ import annotations

from ..training.schedule import Budget, budget_schedule

__all__ = ["Budget", "budget_schedule"]
