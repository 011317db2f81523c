"""Per-account health: a circuit breaker, rate-limit cooldowns, auth exclusion.

Theory of operation: the gateway tells a ``HealthTracker`` what happened to
every upstream attempt (``record_success``, ``record_failure``,
``record_rate_limited``, ``record_auth_failure``, ``record_client_error``) and
asks it which accounts may be tried (``available``, ``try_acquire_probe``).
Nothing here does I/O or reads a clock: every call that depends on time takes
``now`` (seconds on any monotonic scale, the same scale for all calls).

An account is unavailable for any of three independent reasons:

* its **circuit** is open (the upstream looks broken: connect errors,
  timeouts, 5xx, 529 overloaded, protocol garbage);
* it is **cooling down** after a 429, for the upstream's ``retry-after`` or
  ``HealthPolicy.rate_limit_default`` seconds, capped at ``rate_limit_max``.
  A 429 says the upstream works but wants fewer requests, so it never counts
  toward the circuit;
* its **credentials failed** (401/403): excluded for ``auth_base`` seconds,
  doubling with every further rejection up to ``auth_max``, or until an
  operator fixes them and the caller calls ``clear_auth_failure``. When that
  time is up the account is *due* for a credential check: exactly one request
  (a background probe, or else a client's) may go out through the same probe
  slot a half-open circuit uses; a success clears the mark, another rejection
  keeps the account out for twice as long. This is about the account, not the
  provider, so it never counts toward the circuit either.

A client's own mistake (a 400 for a bad request) says nothing about the
account and never counts; ``record_client_error`` exists so callers can
report every outcome uniformly, and only hands back a half-open probe slot.

The circuit breaker, all of whose transitions live in ``_transition``::

    CLOSED --(failure_threshold consecutive failures)--> OPEN
    OPEN --(open_until reached: TICK)--> HALF_OPEN
    HALF_OPEN --(success)--> CLOSED        cooldown resets to open_base
    HALF_OPEN --(failure)--> OPEN          cooldown doubles, up to open_max

``open_until = now + min(open_base * 2**reopenings, open_max)`` where
``reopenings`` counts the consecutive failed probes since the circuit last
closed. In HALF_OPEN exactly one request may go out as a probe
(``try_acquire_probe`` hands out the single slot); until its outcome is
recorded, everyone else sees the account as unavailable. Outcomes that arrive
while OPEN (requests sent before the circuit opened) update the totals but not
the state. In HALF_OPEN the first recorded outcome decides, whichever request
it belongs to. A 429, an auth failure or a client error resolves a probe
without a verdict: the slot is freed and the state stays HALF_OPEN. If a probe
is never resolved (a caller bug), its slot lapses after
``HealthPolicy.probe_lease`` seconds so the account cannot be lost for good;
``release_probe`` frees it explicitly (a cancelled probe).

529 "overloaded" is transient: it counts toward the circuit exactly like a
5xx, and like every circuit failure it only ever opens the circuit for a
bounded time. Nothing disables an account permanently: rejected credentials
too are checked again after a bounded time.

Other processes (``state.py``'s ``SharedHealth``): each tracker is one
process's view. What it learns that others should know (a circuit opened, a
cooldown started, credentials failed, the account recovered) it keeps as
pending marks, keyed by (account, reason), which the caller takes with
``take_marks`` and publishes. What others published comes back through
``apply_marks``: such a mark keeps the account out until its time, whatever
this tracker's own state says, and ``snapshot`` shows it as the matching
reason (an open circuit, a cooldown, refused credentials). Marks from
elsewhere never touch this tracker's own counts or circuit.

Latency is an exponentially weighted moving average of the latencies passed
to ``record_success`` (the caller decides what it measures; time to the
response headers is recommended, since streamed bodies vary in length).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from llm_gateway.routing.retry_headers import retry_after_from_headers
from llm_gateway.routing.state import MarkReason

__all__ = [
    "LATENCY_ALPHA",
    "AccountHealth",
    "CircuitState",
    "FailureKind",
    "HealthPolicy",
    "HealthTracker",
    "retry_after_from_headers",
]

# Weight of each new latency sample: new = ALPHA * sample + (1 - ALPHA) * old.
# At 0.2 a sample's influence halves about every three requests, so a slow
# spell shows within a few requests while one outlier moves the average by
# only a fifth of its excess. The first sample is taken as is.
LATENCY_ALPHA = 0.2

#: what a snapshot says of credentials another process saw refused
ELSEWHERE_AUTH = "credentials refused (seen by another gateway process)"

# Beyond 2**64 the doubling is long past any sane open_max; stop counting.
_MAX_DOUBLINGS = 64


class CircuitState(str, Enum):
    """The circuit breaker's state, as shown to operators."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class FailureKind(str, Enum):
    """A failure that says the upstream itself is unwell; all count toward the circuit."""

    CONNECT = "connect"
    TIMEOUT = "timeout"
    SERVER_ERROR = "server_error"  # 5xx
    OVERLOADED = "overloaded"  # 529: transient, never disables the account for good
    PROTOCOL = "protocol"  # unparseable or truncated responses


@dataclass(frozen=True, slots=True)
class HealthPolicy:
    """Thresholds and cooldowns, in seconds."""

    failure_threshold: int = 3
    open_base: float = 10.0
    open_max: float = 300.0
    rate_limit_default: float = 30.0
    rate_limit_max: float = 600.0
    probe_lease: float = 600.0
    auth_base: float = 60.0
    auth_max: float = 3600.0

    def __post_init__(self) -> None:
        if self.failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if not 0.0 < self.open_base <= self.open_max:
            raise ValueError("need 0 < open_base <= open_max")
        if not 0.0 <= self.rate_limit_default <= self.rate_limit_max:
            raise ValueError("need 0 <= rate_limit_default <= rate_limit_max")
        if not self.probe_lease > 0.0:
            raise ValueError("probe_lease must be positive")
        if not 0.0 < self.auth_base <= self.auth_max:
            raise ValueError("need 0 < auth_base <= auth_max")

    def auth_cooldown(self, rejections: int) -> float:
        """How long rejected credentials keep the account out after ``rejections`` in a row."""
        doublings = min(max(rejections - 1, 0), _MAX_DOUBLINGS)
        return min(self.auth_base * 2.0**doublings, self.auth_max)

    def open_cooldown(self, reopenings: int) -> float:
        """How long the circuit stays open after ``reopenings`` failed probes in a row."""
        doublings = min(max(reopenings, 0), _MAX_DOUBLINGS)
        return min(self.open_base * 2.0**doublings, self.open_max)

    def rate_limit_cooldown(self, retry_after: float | None) -> float:
        """How long a 429 keeps the account out."""
        wanted = self.rate_limit_default if retry_after is None else max(retry_after, 0.0)
        return min(wanted, self.rate_limit_max)


@dataclass(frozen=True, slots=True)
class AccountHealth:
    """One account's health at one moment, for display and decisions."""

    account_id: str
    state: CircuitState
    available: bool
    consecutive_failures: int
    open_until: float | None
    cooldown_until: float | None
    auth_error: str | None
    #: when rejected credentials are due to be checked again
    auth_until: float | None
    in_flight: int
    probe_in_flight: bool
    latency_ewma: float | None
    last_error: FailureKind | None
    last_error_at: float | None
    total_successes: int
    total_failures: int
    total_rate_limited: int
    total_auth_failures: int


class _Event(Enum):
    SUCCESS = "success"
    FAILURE = "failure"
    TICK = "tick"  # time passed
    PROBE = "probe"  # a caller asks for the half-open probe slot
    RELEASE = "release"  # a probe ended without a verdict


@dataclass(slots=True)
class _Entry:
    state: CircuitState = CircuitState.CLOSED
    consecutive_failures: int = 0
    reopenings: int = 0
    open_until: float | None = None
    probe_since: float | None = None
    cooldown_until: float | None = None
    auth_error: str | None = None
    auth_until: float | None = None
    auth_rejections: int = 0
    in_flight: int = 0
    latency_ewma: float | None = None
    last_error: FailureKind | None = None
    last_error_at: float | None = None
    total_successes: int = 0
    total_failures: int = 0
    total_rate_limited: int = 0
    total_auth_failures: int = 0


class HealthTracker:
    """Health of every upstream account, keyed by account id."""

    def __init__(self, policy: HealthPolicy | None = None) -> None:
        self.policy = policy if policy is not None else HealthPolicy()
        self._entries: dict[str, _Entry] = {}
        #: marks other processes published: account -> reason -> until (this scale)
        self._remote: dict[str, dict[MarkReason, float]] = {}
        #: marks to publish, the latest per (account, reason); 0: recovered
        self._pending: dict[tuple[str, MarkReason], float] = {}
        #: False: nobody takes the marks (one process), so none are kept
        self.publishing = False

    # -- outcomes -----------------------------------------------------------

    def record_success(self, account_id: str, now: float, latency: float) -> None:
        """The upstream answered properly; ``latency`` in seconds feeds the EWMA."""
        entry = self._entry(account_id, now)
        entry.total_successes += 1
        if entry.auth_error is not None:  # the credential check passed
            self._clear_auth(entry)
            entry.probe_since = None
            self._note(account_id, MarkReason.AUTH, 0.0)
        if entry.state is CircuitState.HALF_OPEN:
            self._note(account_id, MarkReason.CIRCUIT, 0.0)
        sample = max(latency, 0.0)
        if entry.latency_ewma is None:
            entry.latency_ewma = sample
        else:
            entry.latency_ewma += LATENCY_ALPHA * (sample - entry.latency_ewma)
        self._transition(entry, _Event.SUCCESS, now)

    def record_failure(self, account_id: str, now: float, kind: FailureKind) -> None:
        """The upstream failed in a way that counts toward its circuit."""
        entry = self._entry(account_id, now)
        entry.total_failures += 1
        entry.last_error = kind
        entry.last_error_at = now
        opened_until = entry.open_until if entry.state is CircuitState.OPEN else None
        self._transition(entry, _Event.FAILURE, now)
        if entry.state is CircuitState.OPEN and entry.open_until != opened_until:
            assert entry.open_until is not None
            self._note(account_id, MarkReason.CIRCUIT, entry.open_until)

    def record_rate_limited(self, account_id: str, now: float, retry_after: float | None) -> None:
        """A 429: keep the account out for ``retry_after`` seconds (or the default), capped.

        A later, shorter 429 never shortens a cooldown already running.
        """
        entry = self._entry(account_id, now)
        entry.total_rate_limited += 1
        until = now + self.policy.rate_limit_cooldown(retry_after)
        if entry.cooldown_until is None or until > entry.cooldown_until:
            entry.cooldown_until = until
            self._note(account_id, MarkReason.COOLDOWN, until)
        self._transition(entry, _Event.RELEASE, now)

    def record_auth_failure(self, account_id: str, now: float, message: str) -> None:
        """The account's credentials were refused: exclude it for a bounded, growing time.

        ``message`` is shown to operators; it must describe, never quote, secrets.
        """
        entry = self._entry(account_id, now)
        entry.total_auth_failures += 1
        entry.auth_error = message
        entry.auth_rejections += 1
        entry.auth_until = now + self.policy.auth_cooldown(entry.auth_rejections)
        self._note(account_id, MarkReason.AUTH, entry.auth_until)
        self._transition(entry, _Event.RELEASE, now)

    def postpone_auth_check(self, account_id: str, now: float) -> None:
        """A credential check that proved nothing (no verdict): check again later,
        after the same time as the last rejection, and free the probe slot."""
        entry = self._entries.get(account_id)
        if entry is not None and entry.auth_error is not None:
            entry.auth_until = now + self.policy.auth_cooldown(entry.auth_rejections)
            self._note(account_id, MarkReason.AUTH, entry.auth_until)
            self._transition(entry, _Event.RELEASE, now)

    def clear_auth_failure(self, account_id: str) -> None:
        """The credentials were fixed: the account may be tried again."""
        entry = self._entries.get(account_id)
        if entry is not None:
            if entry.auth_error is not None:
                self._note(account_id, MarkReason.AUTH, 0.0)
            self._clear_auth(entry)

    def auth_check_due(self, account_id: str, now: float) -> bool:
        """True if rejected credentials are due to be checked and no check is out."""
        entry = self._entries.get(account_id)
        if entry is None or entry.auth_error is None:
            return False
        self._transition(entry, _Event.TICK, now)
        return self._available(entry, now)

    def record_client_error(self, account_id: str, now: float) -> None:
        """A 4xx caused by the client's request: never counts against the account.

        The only effect is handing back a half-open probe slot, since the
        probe got an answer that says nothing either way.
        """
        entry = self._entries.get(account_id)
        if entry is not None:
            self._transition(entry, _Event.RELEASE, now)

    def release_probe(self, account_id: str, now: float) -> None:
        """A probe ended without any outcome (cancelled): free the slot."""
        entry = self._entries.get(account_id)
        if entry is not None:
            self._transition(entry, _Event.RELEASE, now)

    # -- in-flight accounting -----------------------------------------------

    def begin_request(self, account_id: str) -> None:
        entry = self._entries.setdefault(account_id, _Entry())
        entry.in_flight += 1

    def end_request(self, account_id: str) -> None:
        """Pair with ``begin_request``, in a ``finally``; never goes below zero."""
        entry = self._entries.get(account_id)
        if entry is not None and entry.in_flight > 0:
            entry.in_flight -= 1

    def in_flight(self, account_id: str) -> int:
        entry = self._entries.get(account_id)
        return 0 if entry is None else entry.in_flight

    def latency(self, account_id: str) -> float | None:
        """The latency EWMA in seconds, or None before the first success."""
        entry = self._entries.get(account_id)
        return None if entry is None else entry.latency_ewma

    # -- questions ----------------------------------------------------------

    def available(self, account_id: str, now: float) -> bool:
        """May a request be sent to this account now (a half-open one: as the probe)?"""
        if self._remote and self._marked_until(account_id, now) is not None:
            return False
        entry = self._entries.get(account_id)
        if entry is None:
            return True
        self._transition(entry, _Event.TICK, now)
        return self._available(entry, now)

    def try_acquire_probe(self, account_id: str, now: float) -> bool:
        """Call just before sending: True if the request may go out.

        Always True for an available closed circuit. For a half-open circuit,
        True only for the first caller, which becomes the probe; everyone else
        gets False until the probe's outcome is recorded.
        """
        if self._remote and self._marked_until(account_id, now) is not None:
            return False
        entry = self._entries.get(account_id)
        if entry is None:
            return True
        self._transition(entry, _Event.TICK, now)
        if not self._available(entry, now):
            return False
        self._transition(entry, _Event.PROBE, now)
        return True

    def available_at(self, account_id: str, now: float) -> float | None:
        """The soonest time the account becomes available (``now`` if it is).

        None when time alone will not do it: failed credentials, or a probe
        whose outcome is still pending.
        """
        marked = self._marked_until(account_id, now) if self._remote else None
        entry = self._entries.get(account_id)
        if entry is None:
            return now if marked is None else marked
        self._transition(entry, _Event.TICK, now)
        moment = now if marked is None else marked
        if entry.auth_error is not None:
            if entry.auth_until is None or (
                now >= entry.auth_until and entry.probe_since is not None
            ):
                return None
            moment = max(moment, entry.auth_until)
        if entry.cooldown_until is not None:
            moment = max(moment, entry.cooldown_until)
        if entry.state is CircuitState.OPEN and entry.open_until is not None:
            moment = max(moment, entry.open_until)
        elif entry.state is CircuitState.HALF_OPEN and entry.probe_since is not None:
            return None
        return moment

    def snapshot(self, account_id: str, now: float) -> AccountHealth:
        entry = self._entries.get(account_id)
        if entry is None:
            entry = _Entry()
        else:
            self._transition(entry, _Event.TICK, now)
        cooling = entry.cooldown_until
        cooling = cooling if cooling is not None and cooling > now else None
        state, open_until = entry.state, entry.open_until
        auth_error = entry.auth_error
        auth_until = entry.auth_until if auth_error is not None else None
        marks = self._remote.get(account_id)
        for reason, until in (marks or {}).items():
            if until <= now:
                continue
            if reason is MarkReason.CIRCUIT and state is not CircuitState.OPEN:
                state, open_until = CircuitState.OPEN, until
            elif reason is MarkReason.CIRCUIT:
                open_until = max(open_until or until, until)
            elif reason is MarkReason.COOLDOWN:
                cooling = max(cooling or until, until)
            elif auth_error is None:
                auth_error, auth_until = ELSEWHERE_AUTH, until
        return AccountHealth(
            account_id=account_id,
            state=state,
            available=self._available(entry, now) and self._marked_until(account_id, now) is None,
            consecutive_failures=entry.consecutive_failures,
            open_until=open_until,
            cooldown_until=cooling,
            auth_error=auth_error,
            auth_until=auth_until,
            in_flight=entry.in_flight,
            probe_in_flight=entry.probe_since is not None,
            latency_ewma=entry.latency_ewma,
            last_error=entry.last_error,
            last_error_at=entry.last_error_at,
            total_successes=entry.total_successes,
            total_failures=entry.total_failures,
            total_rate_limited=entry.total_rate_limited,
            total_auth_failures=entry.total_auth_failures,
        )

    def forget(self, account_id: str) -> None:
        """Drop everything known about an account (it left the configuration)."""
        self._entries.pop(account_id, None)
        self._remote.pop(account_id, None)

    # -- other processes ----------------------------------------------------

    def take_marks(self) -> list[tuple[str, MarkReason, float]]:
        """The marks to publish since the last call: (account, reason, until on
        this tracker's time scale, 0 when the account recovered)."""
        if not self._pending:
            return []
        taken = [(account, reason, until) for (account, reason), until in self._pending.items()]
        self._pending.clear()
        return taken

    def apply_marks(
        self, account_ids: Iterable[str], marks: Iterable[tuple[str, MarkReason, float]]
    ) -> None:
        """What other processes say of ``account_ids`` now (until on this tracker's
        scale); those accounts' earlier marks from elsewhere are replaced."""
        for account_id in account_ids:
            self._remote.pop(account_id, None)
        for account_id, reason, until in marks:
            self._remote.setdefault(account_id, {})[reason] = until

    def _marked_until(self, account_id: str, now: float) -> float | None:
        """Until when marks from elsewhere keep the account out (None: they don't)."""
        marks = self._remote.get(account_id)
        if not marks:
            return None
        until = max(marks.values())
        return until if until > now else None

    def _note(self, account_id: str, reason: MarkReason, until: float) -> None:
        if self.publishing:
            self._pending[(account_id, reason)] = until

    # -- internals ----------------------------------------------------------

    def _entry(self, account_id: str, now: float) -> _Entry:
        entry = self._entries.get(account_id)
        if entry is None:
            entry = self._entries[account_id] = _Entry()
        else:
            self._transition(entry, _Event.TICK, now)
        return entry

    @staticmethod
    def _clear_auth(entry: _Entry) -> None:
        entry.auth_error = None
        entry.auth_until = None
        entry.auth_rejections = 0

    @staticmethod
    def _available(entry: _Entry, now: float) -> bool:
        # rejected credentials: out until due, then one check at a time
        if entry.auth_error is not None and (
            entry.auth_until is None or now < entry.auth_until or entry.probe_since is not None
        ):
            return False
        if entry.cooldown_until is not None and now < entry.cooldown_until:
            return False
        if entry.state is CircuitState.OPEN:
            return False
        if entry.state is CircuitState.HALF_OPEN:
            return entry.probe_since is None
        return True

    def _open(self, entry: _Entry, now: float) -> None:
        entry.state = CircuitState.OPEN
        entry.open_until = now + self.policy.open_cooldown(entry.reopenings)
        entry.probe_since = None

    def _transition(self, entry: _Entry, event: _Event, now: float) -> None:
        """The circuit breaker: every change of ``entry.state`` happens here."""
        state = entry.state
        if event is _Event.TICK:
            if state is CircuitState.OPEN:
                if entry.open_until is None or now >= entry.open_until:
                    entry.state = CircuitState.HALF_OPEN
                    entry.probe_since = None
            elif (
                (state is CircuitState.HALF_OPEN or entry.auth_error is not None)
                and entry.probe_since is not None
                and now - entry.probe_since >= self.policy.probe_lease
            ):
                entry.probe_since = None  # the probe was lost; let another try
        elif event is _Event.SUCCESS:
            # OPEN: a late answer to a request sent before the circuit opened;
            # the cooldown runs its course.
            if state is not CircuitState.OPEN:
                entry.consecutive_failures = 0
            if state is CircuitState.HALF_OPEN:
                entry.state = CircuitState.CLOSED
                entry.reopenings = 0
                entry.open_until = None
                entry.probe_since = None
        elif event is _Event.FAILURE:
            entry.consecutive_failures += 1
            if state is CircuitState.CLOSED:
                if entry.consecutive_failures >= self.policy.failure_threshold:
                    entry.reopenings = 0
                    self._open(entry, now)
            elif state is CircuitState.HALF_OPEN:
                entry.reopenings += 1
                self._open(entry, now)
            # OPEN: already open; a late failure changes nothing.
        elif event is _Event.PROBE:
            checking = state is CircuitState.HALF_OPEN or entry.auth_error is not None
            if checking and entry.probe_since is None:
                entry.probe_since = now
        elif event is _Event.RELEASE:
            entry.probe_since = None
