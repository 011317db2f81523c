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

from ..config.schema import Config, GatewayKey
from ..errors import RateLimited
from ..formats.registry import FORMATS
from ..formats.unified import Usage
from ..ledger.pricing import cost_of, price_rule
from ..ledger.query import LedgerReader
from ..ledger.records import LedgerRecord
from ..ledger.writer import LedgerWriter
from ..metrics.families import GatewayMetrics, status_class
from ..routing.state import SpendBudgets
from ..server.messages import Request
from ..state.local_budgets import LocalBudgets
from .token_estimate import estimate_input_tokens

__all__ = ["Accounting", "BudgetGate", "record_of"]

_TOKEN_TYPES = (
    ("input", "input_tokens"),
    ("output", "output_tokens"),
    ("cache_read", "cache_read_tokens"),
    ("cache_creation", "cache_write_tokens"),
    ("reasoning", "reasoning_tokens"),
)


def _text(notes: dict[str, object], name: str) -> str:
    value = notes.get(name)
    return value if isinstance(value, str) else ""


def _number(notes: dict[str, object], name: str) -> float | None:
    value = notes.get(name)
    return float(value) if isinstance(value, (int, float)) else None


def record_of(
    request: Request, status: int, duration: float, now: float, config: Config
) -> LedgerRecord:
    """The ledger record of a finished request, priced with ``config.prices``."""
    notes = request.notes
    usage = notes.get("usage")
    if not isinstance(usage, Usage):
        usage = Usage()
    model, upstream_model = _text(notes, "model"), _text(notes, "upstream_model")
    cost = cost_of(usage, price_rule(config.prices, upstream_model, model))
    attempts = notes.get("attempts")
    return LedgerRecord(
        time=now,
        request_id=request.request_id,
        key_id=_text(notes, "key_id"),
        account_id=_text(notes, "account_id"),
        client_format=_text(notes, "client_format"),
        upstream_format=_text(notes, "upstream_format"),
        model=model,
        upstream_model=upstream_model,
        status=status,
        error_kind=_text(notes, "error"),
        attempts=attempts if isinstance(attempts, int) else 0,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        cache_write_1h_tokens=usage.cache_write_1h_tokens,
        reasoning_tokens=usage.reasoning_tokens,
        duration_ms=round(duration * 1000, 2),
        ttfb_ms=_number(notes, "ttfb_ms"),
        streamed=notes.get("streamed") is True,
        cost=cost,
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
    """The application's ``finished`` hook for inference requests."""

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

    def finished(self, request: Request, status: int, duration: float) -> None:
        notes = request.notes
        if "client_format" not in notes:
            return  # not an inference request
        config = self.config()
        record = record_of(request, status, duration, self.wall_clock(), config)
        self.budgets.settle(record, request)
        self._count(record, notes, config)
        if self.ledger is not None:
            self.ledger.submit(record)

    def _count(self, record: LedgerRecord, notes: dict[str, object], config: Config) -> None:
        m = self.metrics
        account = config.account_by_id(record.account_id)
        provider = account.provider if account is not None else ""
        model = m.model_label(config, record.model)
        gen_ai = ("chat", provider, model)
        error = record.error_kind or ("" if record.status < 400 else "UpstreamHTTPError")
        m.requests.inc(
            (record.client_format, record.account_id, status_class(record.status), error)
        )
        m.duration.observe((*gen_ai, error), record.duration_ms / 1000)
        if record.status < 400 and record.ttfb_ms is not None:
            m.ttft.observe(gen_ai, record.ttfb_ms / 1000)
        if record.account_id:
            for token_type, field in _TOKEN_TYPES:
                count = getattr(record, field)
                if count or token_type in ("input", "output"):
                    m.tokens.observe((*gen_ai, token_type), count)
        if record.cost:
            m.cost.inc((record.key_id, model), record.cost)
        rejected = notes.get("rejected")
        if isinstance(rejected, str):
            m.rejected.inc((record.key_id, rejected))
