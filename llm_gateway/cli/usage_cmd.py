"""``llm-gateway usage ...``: who used how much, and what it cost, from the ledger.

``summary`` totals requests, errors, tokens, cache hit rate and cost grouped by
key, model, account, day or hour (UTC); ``requests`` lists the latest records,
newest first; ``export`` writes every record of a window as CSV. Tables fit a
terminal (aligned columns, a totals row); ``--json`` and ``--csv`` are exact
(every digit of a cost, no totals row in CSV). Times: ``7d``, ``12h``, ``30m``
ago, or an ISO date or time (UTC unless it says otherwise).
"""

from __future__ import annotations

import argparse
import csv
import re
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..ledger.query import GROUPS, BudgetUse, LedgerReader, SummaryRow
from ..ledger.records import COLUMNS, LedgerRecord
from .context import CliError, Context

__all__ = ["budget_use", "ledger_reader", "parse_time", "register"]

_AGO = re.compile(r"^(\d+(?:\.\d+)?)([dhm])$")
_UNIT = {"d": 86400.0, "h": 3600.0, "m": 60.0}
_SUMMARY_FIELDS = (
    "requests",
    "errors",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "cache_hit_rate",
    "cost",
)


def parse_time(text: str, now: float | None = None) -> float:
    """``7d``/``12h``/``30m`` ago, ``now``, or an ISO date or time -> epoch seconds."""
    now = time.time() if now is None else now
    if text == "now":
        return now
    match = _AGO.match(text)
    if match:
        return now - float(match.group(1)) * _UNIT[match.group(2)]
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a time: use 7d, 12h, 30m (ago), now, or an ISO date or time"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _utc(timestamp: float) -> str:
    moment = datetime.fromtimestamp(timestamp, timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def ledger_reader(ctx: Context) -> LedgerReader:
    config = ctx.store.load()
    return LedgerReader(ctx.store.home / config.ledger.file)


def budget_use(ctx: Context, key_id: str, period: str) -> _Use:
    use = ledger_reader(ctx).budget_use(key_id, period, time.time())
    return _Use(use)


class _Use:
    def __init__(self, use: BudgetUse):
        self.spent = use.spent
        self.resets_at = _utc(use.end).replace(".000Z", "Z")


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("usage", help="requests, tokens and costs from the usage ledger")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    def output(p: argparse.ArgumentParser) -> None:
        group = p.add_mutually_exclusive_group()
        group.add_argument("--json", action="store_true", help="exact JSON")
        group.add_argument("--csv", action="store_true", help="exact CSV")

    summary = sub.add_parser("summary", help="totals grouped by key, model, account, day or hour")
    summary.add_argument(
        "--since", default="7d", help="start: 7d, 12h, 30m ago or an ISO time (default: 7d)"
    )
    summary.add_argument("--until", help="end (default: now)")
    summary.add_argument(
        "--by", choices=tuple(GROUPS), default="model", help="group by (default: model)"
    )
    output(summary)
    summary.set_defaults(handler=cmd_summary, waits_for_gateway=False)

    requests = sub.add_parser("requests", help="the latest requests, newest first")
    requests.add_argument("--key", help="only this gateway key id")
    requests.add_argument("--model", help="only models matching this glob")
    requests.add_argument("--status", help="5xx, 4xx, 429, ok or error")
    requests.add_argument("--since", help="start: 7d, 12h, 30m ago or an ISO time")
    requests.add_argument("--limit", type=int, default=20, help="how many (default: 20)")
    output(requests)
    requests.set_defaults(handler=cmd_requests, waits_for_gateway=False)

    export = sub.add_parser("export", help="every record of a window as CSV, oldest first")
    export.add_argument("--since", default="30d", help="start (default: 30d)")
    export.add_argument("--until", help="end (default: now)")
    export.set_defaults(handler=cmd_export, waits_for_gateway=False)


def _window(args: argparse.Namespace) -> tuple[float | None, float | None]:
    try:
        since = parse_time(args.since) if args.since else None
        until = parse_time(args.until) if getattr(args, "until", None) else None
    except argparse.ArgumentTypeError as error:
        raise CliError(str(error)) from None
    return since, until


def _summary_dict(row: SummaryRow) -> dict[str, Any]:
    return {
        "group": row.group,
        **{name: getattr(row, name) for name in _SUMMARY_FIELDS},
    }


def cmd_summary(args: argparse.Namespace, ctx: Context) -> int:
    config = ctx.store.load()
    reader = LedgerReader(ctx.store.home / config.ledger.file)
    since, until = _window(args)
    rows = reader.summary(since, until, args.by)
    total = reader.total(since, until)
    currency = config.prices.currency
    if args.json:
        ctx.json(
            {
                "since": _utc(since) if since is not None else None,
                "until": _utc(until) if until is not None else None,
                "by": args.by,
                "currency": currency,
                "prices_as_of": config.prices.as_of or None,
                "rows": [_summary_dict(r) for r in rows],
                "total": {k: v for k, v in _summary_dict(total).items() if k != "group"},
            }
        )
        return 0
    if args.csv:
        writer = csv.writer(ctx.stdout, lineterminator="\n")
        writer.writerow([args.by, *_SUMMARY_FIELDS])
        for row in rows:
            writer.writerow([row.group, *(_exact(getattr(row, f)) for f in _SUMMARY_FIELDS)])
        return 0
    if not rows:
        ctx.out("No requests in this window." + _hint(reader.path))
        return 0
    header = [
        args.by,
        "requests",
        "errors",
        "input",
        "output",
        "cache read",
        "cache write",
        "reasoning",
        "cache hit",
        f"cost ({currency})",
    ]
    body = [_summary_cells(r) for r in rows]
    _table(ctx, header, body, totals=_summary_cells(total))
    if config.prices.as_of:
        ctx.out(f"Prices as of {config.prices.as_of}.")
    return 0


def _summary_cells(row: SummaryRow) -> list[str]:
    return [
        row.group or "-",
        f"{row.requests:,}",
        f"{row.errors:,}",
        f"{row.input_tokens:,}",
        f"{row.output_tokens:,}",
        f"{row.cache_read_tokens:,}",
        f"{row.cache_write_tokens:,}",
        f"{row.reasoning_tokens:,}",
        f"{row.cache_hit_rate * 100:.1f}%",
        f"{row.cost:,.4f}",
    ]


def _hint(path: Path) -> str:
    return "" if path.exists() else f" (no ledger yet at {path})"


def _exact(value: object) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def _table(
    ctx: Context,
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    totals: Sequence[str] | None,
) -> None:
    """Columns aligned: the first left, numbers right; a rule and the totals last."""
    everything = [list(header), *map(list, rows)]
    if totals is not None:
        everything.append(["total", *totals[1:]])
    widths = [max(len(r[i]) for r in everything) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        parts = [cells[0].ljust(widths[0])]
        parts += [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join(parts).rstrip()

    ctx.out(line([h.upper() for h in header]))
    for row in rows:
        ctx.out(line(row))
    if totals is not None:
        ctx.out("  ".join("-" * w for w in widths))
        ctx.out(line(everything[-1]))


def _record_dict(record: LedgerRecord) -> dict[str, Any]:
    data = record._asdict()
    data["time"] = _utc(record.time)
    return data


def cmd_requests(args: argparse.Namespace, ctx: Context) -> int:
    if args.limit < 1:
        raise CliError("--limit must be at least 1")
    reader = ledger_reader(ctx)
    since, _ = _window(args)
    found = reader.recent(
        args.limit, key=args.key, model=args.model, status=args.status, since=since
    )
    if args.json:
        ctx.json([_record_dict(r) for r in found])
        return 0
    if args.csv:
        _write_csv(ctx, found)
        return 0
    if not found:
        ctx.out("No matching requests." + _hint(reader.path))
        return 0
    header = [
        "time",
        "key",
        "model",
        "account",
        "status",
        "attempts",
        "input",
        "output",
        "cache read",
        "ms",
        "stream",
        "cost",
    ]
    rows = [
        [
            _utc(r.time)[:19].replace("T", " "),
            r.key_id or "-",
            r.model or "-",
            r.account_id or "-",
            str(r.status) + (f" {r.error_kind}" if r.error_kind else ""),
            str(r.attempts),
            f"{r.input_tokens:,}",
            f"{r.output_tokens:,}",
            f"{r.cache_read_tokens:,}",
            f"{r.duration_ms:,.0f}",
            "yes" if r.streamed else "no",
            f"{r.cost:.4f}",
        ]
        for r in found
    ]
    _table(ctx, header, rows, totals=None)
    return 0


def _write_csv(ctx: Context, records: Any) -> None:
    writer = csv.writer(ctx.stdout, lineterminator="\n")
    writer.writerow(COLUMNS)
    for record in records:
        row = _record_dict(record)
        writer.writerow(["" if row[c] is None else _exact(row[c]) for c in COLUMNS])


def cmd_export(args: argparse.Namespace, ctx: Context) -> int:
    since, until = _window(args)
    _write_csv(ctx, ledger_reader(ctx).records(since, until))
    return 0
