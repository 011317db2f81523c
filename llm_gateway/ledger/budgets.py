"""Per-key spend budgets: periods, running totals and reservations (pure).

Theory of operation: a key's spend in its current period is what the ledger
held when the period was first looked at (``load``), plus the cost of every
request finished since (``settle``). A request is admitted only while
``spent + reserved`` is below the budget, and then reserves an estimate of its
own cost (the larger of its input tokens priced and the key's last request's
cost); when it finishes, its reservation is replaced by its real cost. So
concurrent requests see each other's reservations, and a nearly spent budget
is overshot by at most about one request's cost. A key's total is read from
the ledger again every ``REFRESH`` seconds (spend the ledger holds that did
not pass through these totals). Periods are calendar days, ISO weeks (from
Monday) and months, in UTC; a new period starts from zero. Time is passed in.

``BudgetBook`` keeps the totals of one process (``state/local_budgets.py``
puts it behind the ``SpendBudgets`` protocol below, which the request path
holds); with ``--workers``,
``state/shared_budgets.py`` keeps each key's ``KeyTotals`` in memory shared
by the workers and applies the same methods to it under a lock, so every
worker sees every reservation and the bound holds for all of them together.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Protocol

__all__ = [
    "REFRESH",
    "BudgetBook",
    "Decision",
    "KeyTotals",
    "SpendBudgets",
    "period_bounds",
]

#: seconds between two reads of a key's total from the ledger
REFRESH = 5.0


def period_bounds(period: str, now: float) -> tuple[float, float]:
    """The start and end (seconds since the epoch, UTC) of the period holding ``now``."""
    moment = datetime.fromtimestamp(now, timezone.utc)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        start, end = day, day + timedelta(days=1)
    elif period == "week":
        start = day - timedelta(days=day.weekday())
        end = start + timedelta(days=7)
    elif period == "month":
        start = day.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
    else:
        raise ValueError(f"unknown budget period {period!r}")
    return start.timestamp(), end.timestamp()


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    spent: float
    reserved: float
    #: seconds until the period ends (when refused: when to retry)
    reset_in: float


@dataclass(slots=True)
class KeyTotals:
    """One key's spend in its current period (seconds since the epoch, UTC)."""

    start: float
    end: float
    spent: float = 0.0
    reserved: float = 0.0
    last_cost: float = 0.0
    loaded_at: float = 0.0
    #: cost settled here since the current ledger read began
    settled_since_load: float = 0.0


@dataclass
class BudgetBook:
    """Running totals and reservations per key, for one process."""

    accounts: dict[str, KeyTotals] = field(default_factory=dict)

    def reserve_held(
        self, key_id: str, budget: float, estimate: float, now: float
    ) -> tuple[Decision, float]:
        """``reserve``, and what an admitted request holds (0 when refused)."""
        held = self.reservation(key_id, estimate)
        decision = self.reserve(key_id, budget, estimate, now)
        return decision, held if decision.allowed else 0.0

    def known(self, key_id: str, now: float) -> bool:
        """The key's total for the current period is known (maybe due a refresh)."""
        account = self.accounts.get(key_id)
        return account is not None and account.start <= now < account.end

    def due(self, key_id: str, period: str, now: float) -> float | None:
        """The period start to read the ledger from, when this key's total is not
        known for the current period or is ``REFRESH`` old; None otherwise. A
        returned start marks the read as begun."""
        account = self.accounts.get(key_id)
        if account is not None and account.start <= now < account.end:
            if now - account.loaded_at < REFRESH:
                return None
            account.loaded_at = now
            account.settled_since_load = 0.0
            return account.start
        return period_bounds(period, now)[0]

    def load(self, key_id: str, period: str, now: float, spent: float) -> None:
        """The ledger's total for the key's current period (``spent``), read now."""
        start, end = period_bounds(period, now)
        account = self.accounts.get(key_id)
        if account is not None and account.start == start:
            # reservations stay; what finished while the ledger was read counts
            account.spent = max(account.spent, spent + account.settled_since_load)
            return
        self.accounts[key_id] = KeyTotals(start, end, spent, loaded_at=now)

    def reserve(self, key_id: str, budget: float, estimate: float, now: float) -> Decision:
        account = self.accounts[key_id]
        held = account.spent + account.reserved
        reset_in = max(0.0, account.end - now)
        if held >= budget:
            return Decision(False, account.spent, account.reserved, reset_in)
        account.reserved += max(estimate, account.last_cost)
        return Decision(True, account.spent, account.reserved, reset_in)

    def reservation(self, key_id: str, estimate: float) -> float:
        """What ``reserve`` holds for ``estimate`` (to release it later)."""
        account = self.accounts.get(key_id)
        return max(estimate, account.last_cost) if account else estimate

    def settle(self, key_id: str, reserved: float, cost: float, now: float) -> None:
        """A request finished: its reservation goes, its real cost counts."""
        account = self.accounts.get(key_id)
        if account is None:
            return
        account.reserved = max(0.0, account.reserved - reserved)
        if account.start <= now < account.end:
            account.spent += cost
            account.settled_since_load += cost
            if cost > 0:
                account.last_cost = cost

    def spent(self, key_id: str) -> float | None:
        account = self.accounts.get(key_id)
        return None if account is None else account.spent


class SpendBudgets(Protocol):
    """Per-key spend totals and reservations (``BudgetBook``'s arithmetic).

    Times are wall-clock (Unix seconds): budget periods are calendar periods.
    """

    async def due(self, key_id: str, period: str, now: float) -> float | None:
        """The period start to read the key's spend from the ledger, or None (known)."""
        ...

    async def load(self, key_id: str, period: str, now: float, spent: float) -> None:
        """What the ledger says the key spent since that start."""
        ...

    async def reserve(
        self, key_id: str, budget: float, estimate: float, now: float
    ) -> tuple[Decision, float]:
        """Admit or refuse a request; an admitted one holds (second) part of the budget."""
        ...

    def settle(self, key_id: str, reserved: float, cost: float, now: float) -> None:
        """A request finished: release what it held and count its cost. Never waits;
        a backend that cannot write at once finishes in the background."""
        ...
