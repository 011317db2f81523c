"""What happens when an inference request is finished: ledger, metrics, budget.

Theory of operation: the application calls ``Accounting.finished`` once per
request, when the response to the client is complete (a stream: when it ended
or the client left). It builds the ``LedgerRecord`` from what the request path
noted (``request.notes``: key, formats, models, account, attempts, usage,
time to first byte), prices it (``ledger.pricing``), settles the key's budget
reservation with the real cost, adds to the metrics, and hands the record to
the ledger's writer thread. Nothing here waits on I/O.

``BudgetGate.admit`` runs before routing: a key with a budget gets its
period's total from the ledger (on a worker thread, then from memory), and
the request reserves its estimated cost or is refused with a 429.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import Any

from ..config.schema import Config, GatewayKey, PriceRule
from ..errors import RateLimited
from ..formats.registry import FORMATS
from ..formats.unified import Usage
from ..ledger.budgets import SpendBudgets
from ..ledger.pricing import cost_of, price_rule
from ..ledger.query import LedgerReader
from ..ledger.records import LedgerRecord
from ..ledger.writer import LedgerWriter
from ..metrics.families import GatewayMetrics, status_class
from ..metrics.registry import Buckets, Value
from ..server.messages import Request
from ..state.local_budgets import LocalBudgets
from .token_estimate import estimate_input_tokens

__all__ = ["Accounting", "BudgetGate", "record_of"]


#: what a request that reported no usage used
_NO_USAGE = Usage()
#: price rules remembered per (upstream model, requested model) and configuration
_RULE_CACHE = 1024


def record_of(
    request: Request, status: int, duration: float, now: float, rule: PriceRule | None
) -> LedgerRecord:
    """The ledger record of a finished request, priced with ``rule``.

    The request path notes the text fields as strings (``str`` only turns an
    absent one into ``""``)."""
    get = request.notes.get
    usage = get("usage")
    if not isinstance(usage, Usage):
        usage = _NO_USAGE
    attempts, ttfb_ms = get("attempts"), get("ttfb_ms")
    # positional, in the fields' order: keywords would cost a dict per record
    return LedgerRecord._make(
        (
            now,  # time
            request.request_id,
            str(get("key_id", "")),
            str(get("account_id", "")),
            str(get("client_format", "")),
            str(get("upstream_format", "")),
            str(get("model", "")),
            str(get("upstream_model", "")),
            status,
            str(get("error", "")),  # error_kind
            attempts if isinstance(attempts, int) else 0,
            usage.input_tokens,
            usage.output_tokens,
            usage.cache_read_tokens,
            usage.cache_write_tokens,
            usage.cache_write_1h_tokens,
            usage.reasoning_tokens,
            round(duration * 1000, 2),  # duration_ms
            float(ttfb_ms) if isinstance(ttfb_ms, (int, float)) else None,
            get("streamed") is True,
            cost_of(usage, rule) if rule is not None else 0.0,
        )
    )


class BudgetGate:
    """Per-key spend budgets, enforced before routing (see ``ledger.budgets``)."""

    def __init__(
        self,
        reader: LedgerReader | None,
        clock: Callable[[], float] = time.time,
        book: SpendBudgets | None = None,
    ) -> None:
        self.reader = reader
        #: the keys' totals: in this process, or shared by every worker
        self.book: SpendBudgets = LocalBudgets() if book is None else book
        self.clock = clock

    async def admit(
        self, request: Request, key: GatewayKey, config: Config, body: dict[str, Any]
    ) -> None:
        if key.budget is None:
            return
        now = self.clock()
        start = await self.book.due(key.id, key.budget_period, now)
        if start is not None:
            reader = self.reader
            spent = 0.0 if reader is None else await asyncio.to_thread(reader.spent, key.id, start)
            await self.book.load(key.id, key.budget_period, self.clock(), spent)
            now = self.clock()
        model = body.get("model")
        rule = price_rule(config.prices, model if isinstance(model, str) else "")
        estimate = 0.0
        if rule is not None:
            unified = FORMATS[str(request.notes["client_format"])].parse_request(body)
            estimate = cost_of(Usage(input_tokens=estimate_input_tokens(unified)), rule)
        decision, held = await self.book.reserve(key.id, key.budget, estimate, now)
        if not decision.allowed:
            request.notes["rejected"] = "budget"
            currency = config.prices.currency
            raise RateLimited(
                f"this API key's spend budget of {key.budget:.2f} {currency} per "
                f"{key.budget_period} is used up ({decision.spent:.2f} {currency} spent); "
                f"it resets in {_duration(decision.reset_in)}",
                retry_after=math.ceil(decision.reset_in),
            )
        request.notes["budget_reserved"] = held

    def settle(self, record: LedgerRecord, request: Request) -> None:
        held = request.notes.get("budget_reserved")
        if isinstance(held, float):
            self.book.settle(record.key_id, held, record.cost, record.time)
        elif record.cost:  # counts only where the key's total is known
            self.book.settle(record.key_id, 0.0, record.cost, record.time)


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{max(1, minutes)} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    return f"{hours // 24} days"


class Accounting:
    """The application's ``finished`` hook for inference requests.

    It runs on the event loop once per request, so it does as little as it
    can: the record is one named tuple, and the metric series a request adds
    to are looked up once per kind of request (client format, account,
    status, error, model label) and per key, then kept (``_Series``) until
    the configuration is replaced; counting is then a few additions.
    """

    def __init__(
        self,
        config: Callable[[], Config],
        metrics: GatewayMetrics,
        *,
        ledger: LedgerWriter | None,
        budgets: BudgetGate,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.metrics = metrics
        self.ledger = ledger
        self.budgets = budgets
        self.wall_clock = wall_clock
        #: the configuration the kept rules and series were resolved with
        self._bound_for: Config | None = None
        self._rules: dict[tuple[str, str], PriceRule | None] = {}
        self._series: dict[tuple[str, str, int, str, str], _Series] = {}
        self._cost: dict[tuple[str, str], Value] = {}

    def finished(self, request: Request, status: int, duration: float) -> None:
        notes = request.notes
        if "client_format" not in notes:
            return  # not an inference request
        config = self.config()
        if self._bound_for is not config:  # rules, providers and model labels may differ
            self._bound_for, self._rules, self._series, self._cost = config, {}, {}, {}
        rule = self._rule(config, notes.get("upstream_model"), notes.get("model"))
        record = record_of(request, status, duration, self.wall_clock(), rule)
        self.budgets.settle(record, request)
        self._count(record, notes, config)
        if self.ledger is not None:
            self.ledger.submit(record)

    def _rule(self, config: Config, upstream_model: object, model: object) -> PriceRule | None:
        """``price_rule``, remembered until the configuration is replaced."""
        names = (
            upstream_model if isinstance(upstream_model, str) else "",
            model if isinstance(model, str) else "",
        )
        try:
            return self._rules[names]
        except KeyError:
            pass
        if len(self._rules) >= _RULE_CACHE:  # requested models are the clients' strings
            self._rules = {}
        rule = self._rules[names] = price_rule(config.prices, *names)
        return rule

    def _count(self, record: LedgerRecord, notes: dict[str, object], config: Config) -> None:
        m = self.metrics
        model = m.model_label(config, record.model)
        error = record.error_kind or ("" if record.status < 400 else "UpstreamHTTPError")
        kind = (record.client_format, record.account_id, record.status, error, model)
        series = self._series.get(kind)
        if series is None:
            series = self._series[kind] = _Series(m, config, kind)
        series.requests.value += 1
        series.duration.observe(record.duration_ms / 1000)
        if record.status < 400 and record.ttfb_ms is not None:
            series.ttft.observe(record.ttfb_ms / 1000)
        if series.input_tokens is not None and series.output_tokens is not None:
            series.input_tokens.observe(record.input_tokens)
            series.output_tokens.observe(record.output_tokens)
            if record.cache_read_tokens or record.cache_write_tokens or record.reasoning_tokens:
                for token_type, count in (
                    ("cache_read", record.cache_read_tokens),
                    ("cache_creation", record.cache_write_tokens),
                    ("reasoning", record.reasoning_tokens),
                ):
                    if count:
                        m.tokens.buckets_of((*series.gen_ai, token_type)).observe(count)
        if record.cost:
            labels = (record.key_id, model)
            cost = self._cost.get(labels)
            if cost is None:
                cost = self._cost[labels] = m.cost.value_of(labels)
            cost.value += record.cost
        rejected = notes.get("rejected")
        if isinstance(rejected, str):
            m.rejected.inc((record.key_id, rejected))


class _Series:
    """The metric series one kind of finished request adds to, resolved once.

    A series appears in ``/metrics`` only once something was added to it, as
    when every event looked its series up: the time to first token only for
    successes that had one, token counts only for requests that reached an
    account.
    """

    __slots__ = (
        "metrics",
        "gen_ai",
        "requests",
        "duration",
        "input_tokens",
        "output_tokens",
        "_ttft",
    )

    def __init__(
        self, m: GatewayMetrics, config: Config, kind: tuple[str, str, int, str, str]
    ) -> None:
        client_format, account_id, status, error, model = kind
        account = config.account_by_id(account_id)
        self.metrics = m
        self.gen_ai = gen_ai = ("chat", account.provider if account is not None else "", model)
        self.requests = m.requests.value_of(
            (client_format, account_id, status_class(status), error)
        )
        self.duration = m.duration.buckets_of((*gen_ai, error))
        self.input_tokens = m.tokens.buckets_of((*gen_ai, "input")) if account_id else None
        self.output_tokens = m.tokens.buckets_of((*gen_ai, "output")) if account_id else None
        self._ttft: Buckets | None = None

    @property
    def ttft(self) -> Buckets:
        if self._ttft is None:
            self._ttft = self.metrics.ttft.buckets_of(self.gen_ai)
        return self._ttft
