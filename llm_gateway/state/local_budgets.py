"""The spend totals of one process, behind the ``SpendBudgets`` protocol.

Theory of operation: the in-process ``BudgetBook`` answers at once; this
wrapper only gives it the protocol's coroutine methods, so the request path
awaits every backend the same way.
"""

from __future__ import annotations

from ..ledger.budgets import BudgetBook, Decision

__all__ = ["LocalBudgets"]


class LocalBudgets:
    """``SpendBudgets`` over a ``BudgetBook`` held by this process."""

    def __init__(self, book: BudgetBook | None = None):
        self.book = book if book is not None else BudgetBook()

    async def due(self, key_id: str, period: str, now: float) -> float | None:
        return self.book.due(key_id, period, now)

    async def load(self, key_id: str, period: str, now: float, spent: float) -> None:
        self.book.load(key_id, period, now, spent)

    async def reserve(
        self, key_id: str, budget: float, estimate: float, now: float
    ) -> tuple[Decision, float]:
        return self.book.reserve_held(key_id, budget, estimate, now)

    def settle(self, key_id: str, reserved: float, cost: float, now: float) -> None:
        self.book.settle(key_id, reserved, cost, now)
