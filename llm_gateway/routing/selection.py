"""Choosing which upstream accounts to try, and in what order.

Theory of operation: for each request the caller collects the ``Candidate``
accounts that serve the requested model (``matches`` does the glob test) and
asks ``Selector.order`` for a failover list: try the first, and on a failure
that allows a retry, the next. Accounts the ``HealthTracker`` says are
unavailable (open circuit not yet due for a probe, rate-limit cooldown,
failed credentials) are left out. A half-open account whose probe slot is
free stays in; the caller calls ``HealthTracker.try_acquire_probe`` just
before actually sending, and skips the account if that says no.

Strategies:

* ``HEALTH_FIRST`` (default): priority groups in ascending order, each one a
  fallback for the one before. Within a group the first choice goes to the
  accounts with the fewest requests in flight per unit of weight, and among
  those to the smooth weighted round-robin pick (below); the rest of the
  group follows, least loaded first. When nothing is in flight this is pure
  weighted round-robin; under load it balances in-flight requests in
  proportion to weight. Only the leading group's rotation advances per
  request; fallback groups are ordered by a dry run.
* ``PRIORITY``: strictly by (priority, configuration order).
* ``ROUND_ROBIN``: one cursor per candidate set; weights and priorities ignored.
* ``WEIGHTED``: smooth weighted round-robin over every candidate, ignoring
  priorities; the rest follow by descending weight.
* ``LEAST_LATENCY``: ascending latency EWMA; accounts with no measurement yet
  come first, so that their latency gets learned.

Smooth weighted round-robin (the algorithm nginx uses): each participant
keeps a current weight. Per pick, every participant's current weight grows by
its weight, the largest wins, and the winner's current weight drops by the
sum of the participants' weights. Over any run of ``sum(weights)`` picks with
a stable set of participants, each account is picked exactly ``weight``
times, interleaved rather than in bursts (5:1:1 gives a a b a c a a).
Unavailable accounts sit out a round and keep their current weight.

Sticky sessions: ``remember(session, account, now)`` maps a session to the
account that served it; later requests of that session put the account first
while it is available. Entries expire ``sticky_ttl`` seconds after they were
last remembered, and at most ``sticky_max`` are kept (least recently used
go first).

A session this selector has not seen yet (its first request, or one served
by another worker or gateway instance until now) is not placed by the
strategy but by rendezvous hashing: each usable account scores
``weight / -ln(h)``, ``h`` a hash of (session, account) in (0, 1), and the
highest score in the leading priority group wins (priorities count only for
the strategies that use them). Every process computes the same answer from
the same candidates, with nothing shared, so a session lands on the same
account whichever worker serves it; when that account is out (on every
worker alike, through the shared health marks) the session's failover order
is the same ranking, so every worker moves it to the same next account.
Weighted, the ranking spreads sessions in proportion to weight.

The only mutable state is the round-robin cursors, the current weights and
the sticky map, each bounded. Time is always passed in.
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import math
import re
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TypeVar

from llm_gateway.routing.health import HealthTracker

__all__ = [
    "Candidate",
    "Selector",
    "Strategy",
    "matches",
    "soonest_available",
]

_GroupKey = tuple[str, ...]
_V = TypeVar("_V")


@dataclass(frozen=True, slots=True)
class Candidate:
    """One upstream account that could serve the request."""

    account_id: str
    priority: int = 0  # lower is tried first
    weight: int = 1

    def __post_init__(self) -> None:
        if self.weight < 1:
            raise ValueError("weight must be at least 1")


class Strategy(str, Enum):
    HEALTH_FIRST = "health_first"
    ROUND_ROBIN = "round_robin"
    WEIGHTED = "weighted"
    LEAST_LATENCY = "least_latency"
    PRIORITY = "priority"


class Selector:
    """Orders candidates per request; holds only round-robin and sticky state."""

    def __init__(
        self,
        *,
        sticky_ttl: float = 3600.0,
        sticky_max: int = 10_000,
        max_groups: int = 1024,
    ) -> None:
        if sticky_ttl <= 0.0 or sticky_max < 1 or max_groups < 1:
            raise ValueError("sticky_ttl, sticky_max and max_groups must be positive")
        self.sticky_ttl = sticky_ttl
        self.sticky_max = sticky_max
        self.max_groups = max_groups
        self._current: OrderedDict[_GroupKey, dict[str, int]] = OrderedDict()
        self._cursors: OrderedDict[_GroupKey, int] = OrderedDict()
        self._sticky: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def order(
        self,
        candidates: Sequence[Candidate],
        health: HealthTracker,
        now: float,
        *,
        strategy: Strategy = Strategy.HEALTH_FIRST,
        session: str | None = None,
    ) -> list[Candidate]:
        """The available candidates, in the order to try them (empty if none is).

        A repeated account id counts once, at its first position.
        """
        unique = _dedupe(candidates)
        usable = [c for c in unique if health.available(c.account_id, now)]
        if not usable:
            return []
        if session is not None:
            return self._session_order(session, usable, now, strategy)
        advance = True
        if strategy is Strategy.HEALTH_FIRST:
            ordered = self._health_first(unique, usable, health, advance)
        elif strategy is Strategy.PRIORITY:
            ordered = sorted(usable, key=lambda c: c.priority)  # stable: config order
        elif strategy is Strategy.ROUND_ROBIN:
            ordered = self._round_robin(unique, usable, advance)
        elif strategy is Strategy.WEIGHTED:
            first = self._smooth_pick(_key(unique), usable, advance)
            rest = sorted((c for c in usable if c is not first), key=lambda c: -c.weight)
            ordered = [first, *rest]
        else:
            ordered = sorted(usable, key=lambda c: _latency_key(health, c))
        return ordered

    def _session_order(
        self, session: str, usable: list[Candidate], now: float, strategy: Strategy
    ) -> list[Candidate]:
        """The session's remembered account if usable, then its rendezvous ranking.

        A request of a session never advances the rotation.
        """
        grouped = strategy in (Strategy.HEALTH_FIRST, Strategy.PRIORITY)
        ranked = sorted(
            usable,
            key=lambda c: (c.priority if grouped else 0, -_rendezvous(session, c)),
        )
        sticky = self.sticky_account(session, now)
        pinned = next((c for c in ranked if c.account_id == sticky), None)
        if pinned is None:
            return ranked
        return [pinned, *(c for c in ranked if c is not pinned)]

    # -- sticky sessions ----------------------------------------------------

    def remember(self, session: str, account_id: str, now: float) -> None:
        """Route this session's next requests to ``account_id`` while it is available."""
        self._sticky[session] = (account_id, now + self.sticky_ttl)
        self._sticky.move_to_end(session)
        while len(self._sticky) > self.sticky_max:
            self._sticky.popitem(last=False)

    def forget_session(self, session: str) -> None:
        self._sticky.pop(session, None)

    def sticky_account(self, session: str, now: float) -> str | None:
        """The account remembered for ``session``, unless expired."""
        entry = self._sticky.get(session)
        if entry is None:
            return None
        account_id, expires = entry
        if now >= expires:
            del self._sticky[session]
            return None
        self._sticky.move_to_end(session)
        return account_id

    # -- strategies ---------------------------------------------------------

    def _health_first(
        self,
        unique: list[Candidate],
        usable: list[Candidate],
        health: HealthTracker,
        advance: bool,
    ) -> list[Candidate]:
        ordered: list[Candidate] = []
        for priority in sorted({c.priority for c in usable}):
            members = [c for c in usable if c.priority == priority]
            load = {c.account_id: health.in_flight(c.account_id) / c.weight for c in members}
            lightest = min(load.values())
            tied = [c for c in members if load[c.account_id] == lightest]
            group = _key(c for c in unique if c.priority == priority)
            # Only the leading group's pick is this request's choice; the
            # fallback groups are ordered by a dry run that moves nothing.
            first = self._smooth_pick(group, tied, advance and not ordered)
            rest = [c for c in members if c is not first]
            rest.sort(key=lambda c: (load[c.account_id], -c.weight))
            ordered.append(first)
            ordered.extend(rest)
        return ordered

    def _round_robin(
        self, unique: list[Candidate], usable: list[Candidate], advance: bool
    ) -> list[Candidate]:
        key = _key(unique)
        start = self._cursors.get(key, 0) % len(unique)
        rotated = unique[start:] + unique[:start]
        allowed = {id(c) for c in usable}
        ordered = [c for c in rotated if id(c) in allowed]
        if advance:
            self._store(self._cursors, key, unique.index(ordered[0]) + 1)
        return ordered

    def _smooth_pick(
        self, group: _GroupKey, participants: list[Candidate], advance: bool
    ) -> Candidate:
        """The next smooth weighted round-robin pick; without ``advance``, a dry run."""
        current = self._current.get(group)
        if current is None:
            current = {}
        if advance:
            self._store(self._current, group, current)
        else:
            current = dict(current)
        total = 0
        best: Candidate | None = None
        best_weight = 0
        for candidate in participants:
            weight = current.get(candidate.account_id, 0) + candidate.weight
            current[candidate.account_id] = weight
            total += candidate.weight
            if best is None or weight > best_weight:
                best, best_weight = candidate, weight
        assert best is not None, "participants is never empty"
        current[best.account_id] = best_weight - total
        return best

    def _store(self, table: OrderedDict[_GroupKey, _V], key: _GroupKey, value: _V) -> None:
        table[key] = value
        table.move_to_end(key)
        while len(table) > self.max_groups:
            table.popitem(last=False)


def soonest_available(
    candidates: Sequence[Candidate], health: HealthTracker, now: float
) -> float | None:
    """The earliest time any candidate becomes available (``now`` if one already is).

    None when no candidate will become available by waiting alone (probes or
    credential checks pending, or no candidates at all).
    """
    moments = [health.available_at(c.account_id, now) for c in candidates]
    known = [m for m in moments if m is not None]
    return min(known) if known else None


def matches(patterns: Sequence[str], model: str) -> bool:
    """True if ``model`` matches any glob in ``patterns`` (case-sensitive, fnmatch rules).

    An empty ``patterns`` matches nothing; callers for whom "no list" means
    "every model" decide that before calling.
    """
    compiled = _compile_patterns(tuple(patterns))
    return compiled is not None and compiled.match(model) is not None


@functools.lru_cache(maxsize=1024)
def _compile_patterns(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    """One regular expression for a whole pattern list (each glob translated by fnmatch)."""
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns))


def _dedupe(candidates: Iterable[Candidate]) -> list[Candidate]:
    seen: set[str] = set()
    unique: list[Candidate] = []
    for candidate in candidates:
        if candidate.account_id not in seen:
            seen.add(candidate.account_id)
            unique.append(candidate)
    return unique


def _key(candidates: Iterable[Candidate]) -> _GroupKey:
    return tuple(c.account_id for c in candidates)


def _rendezvous(session: str, candidate: Candidate) -> float:
    """The candidate's weighted rendezvous score for ``session`` (higher wins)."""
    raw = hashlib.blake2b(f"{session}\0{candidate.account_id}".encode(), digest_size=8).digest()
    unit = (int.from_bytes(raw, "little") + 0.5) / 2.0**64  # in (0, 1)
    return candidate.weight / -math.log(unit)


def _latency_key(health: HealthTracker, candidate: Candidate) -> tuple[int, float]:
    latency = health.latency(candidate.account_id)
    return (0, 0.0) if latency is None else (1, latency)
