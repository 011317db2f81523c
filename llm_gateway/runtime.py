"""Running the gateway: start-up, configuration reload, signals, shutdown.

This is the composition root: the one module that imports the request path
(``pipeline/``, ``admin/``), the state backends, the ledger and the metrics,
and wires them into the inbound server (``server/``), which imports none of
them.

Theory of operation: ``serve_forever`` loads and validates the configuration
(refusing to start on an invalid file), configures logging, raises the
open-file limit and logs the connections it allows (``server/capacity.py``), builds the
application and the HTTP server, and runs until SIGINT or SIGTERM. A watcher
task ``stat``s the config file every ``RELOAD_INTERVAL`` seconds; when it
changed, the file is re-read and validated on a worker thread
(``server/reloading.ConfigWatcher``), and the new ``Config`` replaces the old one in
``GatewayState`` for every later request, with the health policy and the
server's limits; settings read only at start are logged at warning when they
change. A file that fails to validate, is empty or is missing is logged and
reported in ``/health``: the last good configuration stays in force. The
server never writes the whole configuration back (only the OAuth manager
saves rotated tokens, and the admin page enables or disables accounts, through
the store's locked update), so it cannot undo a change the CLI made. Before
binding, it refuses to start on an address that something already serves
(``server/occupancy.py``), ``--workers`` included.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path

from .admin.routes import AdminApi, install_admin_routes
from .config.routing import RoutingConfig
from .config.schema import Config
from .config.store import ConfigStore, Loaded
from .errors import ConfigError
from .ledger.budgets import SpendBudgets
from .ledger.query import LedgerReader
from .ledger.writer import LedgerWriter
from .logs import configure
from .metrics.shared import PUBLISH_INTERVAL, SharedSnapshots
from .oauth.manager import TokenManager
from .pipeline.accounting import Accounting, BudgetGate
from .pipeline.credentials import Credentials
from .pipeline.metrics_route import MetricsApp, MetricsEndpoint
from .pipeline.probes import probe_open_circuits
from .pipeline.proxy import Proxy, install_routes
from .pipeline.upkeep import run_upkeep
from .routing.health import HealthPolicy, HealthTracker
from .routing.ratelimit import RateLimiter
from .routing.state import RateBuckets, SharedHealth
from .server.app import GatewayApp, GatewayState, error_for_status
from .server.banner import start_line
from .server.capacity import describe, open_file_limit, overcommitted, plan, raise_open_file_limit
from .server.malloc import return_large_blocks
from .server.occupancy import occupant
from .server.reloading import RELOAD_INTERVAL, ConfigWatcher, error_detail, restart_needed
from .server.tcp import HTTPServer, ServerLimits
from .server.workers import reserve_port, run_workers
from .state.backends import multi_host_problem, open_state
from .state.local_buckets import LocalBuckets
from .state.redis_link import load_redis
from .state.shared_buckets import SharedBuckets
from .state.shared_budgets import SharedBudgets
from .state.shared_health import SharedHealthTable
from .upstream.pool import ConnectionPool
from .upstream.proxy import ProxySettings

__all__ = ["Gateway", "serve_forever"]

log = logging.getLogger("llm_gateway.runtime")

#: seconds between two looks at ``routing.health_check_interval`` while it is 0
PROBE_RECHECK = 1.0


def health_policy(routing: RoutingConfig) -> HealthPolicy:
    return HealthPolicy(
        failure_threshold=routing.failure_threshold,
        open_base=routing.open_base,
        open_max=routing.open_max,
        rate_limit_default=routing.rate_limit_default,
        rate_limit_max=routing.rate_limit_max,
        auth_base=routing.credential_retry_base,
        auth_max=routing.credential_retry_max,
    )


def _warn_unrouted(config: Config, before: Config | None) -> None:
    """Warn about accounts that list no models (newly so, on a reload)."""
    known = {a.id for a in before.upstream_accounts if a.serves_no_model} if before else set()
    for account in config.upstream_accounts:
        if account.serves_no_model and account.id not in known:
            log.warning(
                "upstream account lists no models: no request is routed to it",
                extra={
                    "account_id": account.id,
                    "reason": f"set them with: upstream update {account.id} --models GLOBS",
                },
            )


class Gateway:
    """One gateway instance: state, application, server, and the reload watcher."""

    def __init__(
        self,
        store: ConfigStore,
        environ: Mapping[str, str],
        *,
        metrics_dir: Path | None = None,
        limiter: RateBuckets | None = None,
        shared_health: SharedHealth | None = None,
        budgets: SpendBudgets | None = None,
    ):
        self.store = store
        self.environ = environ
        store.remove_stale_temporaries()
        loaded = store.load_current(strict=False)
        config = loaded.config
        self.watcher = ConfigWatcher(store, loaded)
        self.started_config = config
        _warn_unrouted(config, None)
        self.health = HealthTracker(health_policy(config.routing))
        self.state = GatewayState(
            config=config,
            health=self.health,
            config_path=str(store.path.absolute()),
            config_digest=loaded.digest,
        )
        self.app = GatewayApp(self.state)
        capacity = plan(open_file_limit(), config.server, config.proxy)
        self.pool = ConnectionPool(
            max_connections_per_origin=capacity.per_upstream,
            idle_expiry=config.proxy.idle_connection_timeout,
            proxy=ProxySettings.from_sources(config.environment.as_mapping(), environ),
        )
        credentials = Credentials(store.home, environ)
        # ``state``: read at start
        local = limiter if limiter is not None else LocalBuckets(RateLimiter())
        self.shared = open_state(config.state, local, shared_health)
        self.state.shared_state = self.shared.report
        self.tokens = TokenManager(
            store,
            self.pool,
            credentials.secret_key,
            time.time,
            settings=lambda: self.state.config.oauth,
            share=self.shared.tokens,
        )
        self.proxy = Proxy(
            self.state,
            self.pool,
            credentials,
            health=self.health,
            tokens=self.tokens,
            limiter=self.shared.buckets,
            shared_health=self.shared.health,
        )
        install_routes(self.app, self.proxy)
        self.ledger = self._accounting(config, metrics_dir, budgets)
        usage = LedgerReader(store.home / config.ledger.file) if config.ledger.enabled else None
        self.admin = AdminApi(self.state, store, ledger=lambda: usage)
        install_admin_routes(self.app, self.admin)
        server = config.server
        self.server = HTTPServer(
            self.app,
            ServerLimits(
                max_body_bytes=server.max_body_bytes,
                max_header_bytes=server.max_header_bytes,
                header_timeout=server.header_timeout,
                keepalive_timeout=server.keepalive_timeout,
                max_connections=capacity.max_connections,
                shutdown_timeout=server.shutdown_timeout,
                body_timeout=server.body_timeout,
                body_min_rate=server.body_min_rate,
                stream_keepalive=server.stream_keepalive,
            ),
            render_error=error_for_status,
        )
        self._watcher: asyncio.Task[None] | None = None
        #: start-only settings given on the command line instead
        self._overridden: frozenset[str] = frozenset()
        self._prober: asyncio.Task[None] | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._upkeep: asyncio.Task[None] | None = None
        self._publisher: asyncio.Task[None] | None = None
        self.metrics_server: HTTPServer | None = None

    def _accounting(
        self, config: Config, metrics_dir: Path | None, budgets: SpendBudgets | None = None
    ) -> LedgerWriter | None:
        """The usage ledger, budgets and ``/metrics`` (``ledger``, ``metrics``: read at start)."""
        ledger: LedgerWriter | None = None
        reader: LedgerReader | None = None
        settings = config.ledger
        if settings.enabled:
            path = self.store.home / settings.file
            ledger = LedgerWriter(
                path,
                batch_size=settings.batch_size,
                flush_interval=settings.flush_interval,
                queue_size=settings.queue_size,
                retention=settings.retention_days * 86400,
            )
            reader = LedgerReader(path)
        self.proxy.budgets = BudgetGate(reader, book=budgets)
        accounting = Accounting(
            lambda: self.state.config, self.proxy.metrics, ledger=ledger, budgets=self.proxy.budgets
        )
        if ledger is not None or config.metrics.enabled:
            self.app.finished.append(accounting.finished)
        self.tokens.on_refresh = lambda account_id, ok: self.proxy.metrics.oauth.inc(
            (account_id, "ok" if ok else "failed")
        )
        self.metrics_endpoint = MetricsEndpoint(
            self.state,
            self.proxy.metrics,
            connections=lambda: self.server.active_connections,
            dropped=lambda: ledger.dropped + ledger.failed_batches if ledger else 0,
            shared=SharedSnapshots(metrics_dir) if metrics_dir is not None else None,
        )
        self.app.route("GET", "/metrics", self.metrics_endpoint.scrape)
        return ledger

    async def start(
        self, host: str | None = None, port: int | None = None, *, reuse_port: bool = False
    ) -> list[int]:
        config = self.state.config.server
        self._overridden = frozenset(
            name
            for name, value in (("server.host", host), ("server.port", port))
            if value is not None
        )
        ports = await self.server.start(
            config.host if host is None else host,
            config.port if port is None else port,
            reuse_port=reuse_port,
        )
        if self.ledger is not None:
            self.ledger.start()
        await self.shared.start()
        await self._start_metrics(reuse_port)
        self._watcher = asyncio.ensure_future(self._watch_config())
        self._prober = asyncio.ensure_future(self._probe_periodically())
        self._refresher = asyncio.ensure_future(
            self.tokens.run_background(lambda: self.state.config.upstream_accounts, interval=60)
        )
        self._upkeep = asyncio.ensure_future(
            run_upkeep(
                lambda: self.state.config,
                self.health,
                self.pool,
                self.proxy.credential_for,
                self.proxy.catalog,
                time.monotonic,
            )
        )
        return ports

    async def _start_metrics(self, reuse_port: bool) -> None:
        settings = self.state.config.metrics
        if self.metrics_endpoint.shared is not None:
            self._publisher = asyncio.ensure_future(
                self.metrics_endpoint.publish_periodically(PUBLISH_INTERVAL)
            )
        if not settings.enabled or settings.listen is None:
            return
        host, _, port = settings.listen.rpartition(":")
        self.metrics_server = HTTPServer(
            MetricsApp(self.metrics_endpoint), ServerLimits(max_connections=64)
        )
        await self.metrics_server.start(host.strip("[]"), int(port), reuse_port=reuse_port)

    async def reload(self) -> bool:
        """Re-read the config when the file changed, reading and parsing on a worker
        thread; True when a new one took effect."""
        return self.watcher.due() and self._take(await asyncio.to_thread(self.watcher.read))

    def _take(self, outcome: Loaded | ConfigError | None) -> bool:
        if outcome is None:
            return False
        if isinstance(outcome, ConfigError):
            self.proxy.metrics.reloads.inc(("failed",))
            self.state.config_error = error_detail(self.store, outcome)
            log.error("configuration not reloaded", extra={"error": str(outcome)})
            return False
        self._apply(outcome)
        self.proxy.metrics.reloads.inc(("ok",))
        return True

    def _apply(self, loaded: Loaded) -> None:
        config, old = loaded.config, self.state.config
        self._settle_health(old, config)
        _warn_unrouted(config, old)
        if config.environment != old.environment:
            self.pool.set_proxy(
                ProxySettings.from_sources(config.environment.as_mapping(), self.environ)
            )
        if config.routing != old.routing:
            self.health.policy = health_policy(config.routing)
        if config.server != old.server:
            self.server.limits = replace(
                self.server.limits,
                max_body_bytes=config.server.max_body_bytes,
                max_header_bytes=config.server.max_header_bytes,
                header_timeout=config.server.header_timeout,
                keepalive_timeout=config.server.keepalive_timeout,
                max_connections=plan(
                    open_file_limit(), config.server, config.proxy
                ).max_connections,
                shutdown_timeout=config.server.shutdown_timeout,
                body_timeout=config.server.body_timeout,
                body_min_rate=config.server.body_min_rate,
                stream_keepalive=config.server.stream_keepalive,
            )
        self.state.config = config
        self.state.config_digest, self.state.config_error = loaded.digest, None
        log.info("configuration reloaded", extra={"path_file": str(self.store.path)})
        pending = restart_needed(self.started_config, config, self._overridden)
        if set(pending) - set(self.state.restart_needed):
            log.warning(
                "configuration reloaded; these settings take effect only after a restart",
                extra={"settings": ", ".join(pending)},
            )
        self.state.restart_needed = pending

    def _settle_health(self, old: Config, new: Config) -> None:
        """Accounts whose credentials changed, or that were re-enabled, get a fresh
        chance; removed accounts are forgotten."""
        before = {a.id: a for a in old.upstream_accounts}
        for account in new.upstream_accounts:
            previous = before.pop(account.id, None)
            if previous is None:
                continue
            renewed = (
                previous.api_key != account.api_key
                or previous.oauth.access_token != account.oauth.access_token
                or (account.enabled and not previous.enabled)
                or previous.enabled_at != account.enabled_at  # ``upstream enable``
            )
            if renewed:
                self.health.clear_auth_failure(account.id)
        for account_id in before:
            self.health.forget(account_id)

    async def _watch_config(self) -> None:
        while True:
            await asyncio.sleep(RELOAD_INTERVAL)
            await self.reload()

    async def _probe_periodically(self) -> None:
        """Active health checks, when ``routing.health_check_interval`` is set."""
        while True:
            interval = self.state.config.routing.health_check_interval
            await asyncio.sleep(interval or PROBE_RECHECK)
            if interval:
                await probe_open_circuits(
                    self.state.config,
                    self.health,
                    self.pool,
                    self.proxy.credentials,
                    time.monotonic(),
                )

    async def stop(self) -> None:
        for task in (self._watcher, self._prober, self._refresher, self._upkeep, self._publisher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self.tokens.aclose()
        await self.server.shutdown()
        await self.shared.aclose()
        if self.metrics_server is not None:
            await self.metrics_server.shutdown()
        await self.pool.aclose()
        if self.ledger is not None:
            await asyncio.to_thread(self.ledger.close)
        if self.metrics_endpoint.shared is not None:
            self.metrics_endpoint.shared.remove()


async def _run(
    gateway: Gateway,
    host: str | None,
    port: int | None,
    err: Callable[[str], None],
    *,
    reuse_port: bool = False,
    program: str = "llm-gateway",
) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    ports = await gateway.start(host, port, reuse_port=reuse_port)
    bound = host if host is not None else gateway.state.config.server.host
    address = f"http://{bound}:{ports[0]}"
    log.info("listening", extra={"address": address})
    err(start_line(address, str(gateway.store.path), gateway.state.config, program))
    await stop.wait()
    log.info("shutting down")
    await gateway.stop()


def serve_forever(
    store: ConfigStore,
    environ: Mapping[str, str],
    *,
    host: str | None,
    port: int | None,
    err: Callable[[str], None],
    workers: int = 1,
    program: str = "llm-gateway",
) -> int:
    """Run in the foreground until SIGINT/SIGTERM; returns the exit code.

    ``program``: the command that runs the CLI, for the next step the start line names."""
    config = store.load()
    if config.state.backend == "redis":
        load_redis()  # a one-line error, before anything starts, when it is missing
    problem = multi_host_problem(config)
    if problem is not None:
        raise ConfigError(problem)
    configure(config.logging.level, config.logging.format, environ)
    files = raise_open_file_limit()  # before forking: workers inherit it
    capacity = plan(files.soft, config.server, config.proxy)
    log.info(describe(files, capacity))
    for warning in overcommitted(capacity):
        log.warning(warning)
    return_large_blocks()
    bind_host = config.server.host if host is None else host
    bind_port = config.server.port if port is None else port
    held_by = occupant(bind_host, bind_port)
    if held_by is not None:  # SO_REUSEPORT would let two servers share the port
        err(f"error: {held_by}")
        return 1
    if workers <= 1:
        return _serve_one(store, environ, host, port, err, program=program)
    reserved = None
    if bind_port == 0:
        reserved, bind_port = reserve_port(bind_host)
    err(f"llm-gateway starting {workers} workers on {bind_host}:{bind_port}")
    metrics_dir = fresh_metrics_dir(store.home, bind_port)
    # created before forking: every worker (and any started again) shares it
    buckets = SharedBuckets.create()
    health = SharedHealthTable.create()
    budgets = SharedBudgets.create()

    def serve(index: int) -> int:
        quiet: Callable[[str], None] = err if index == 0 else (lambda text: None)
        return _serve_one(
            store,
            environ,
            bind_host,
            bind_port,
            quiet,
            reuse_port=True,
            metrics_dir=metrics_dir,
            program=program,
            limiter=buckets,
            shared_health=health,
            budgets=budgets,
        )

    try:
        return run_workers(workers, serve)
    finally:
        if reserved is not None:
            reserved.close()


def _serve_one(
    store: ConfigStore,
    environ: Mapping[str, str],
    host: str | None,
    port: int | None,
    err: Callable[[str], None],
    *,
    reuse_port: bool = False,
    metrics_dir: Path | None = None,
    program: str = "llm-gateway",
    limiter: RateBuckets | None = None,
    shared_health: SharedHealth | None = None,
    budgets: SpendBudgets | None = None,
) -> int:
    gateway = Gateway(
        store,
        environ,
        metrics_dir=metrics_dir,
        limiter=limiter,
        shared_health=shared_health,
        budgets=budgets,
    )
    try:
        asyncio.run(_run(gateway, host, port, err, reuse_port=reuse_port, program=program))
    except OSError as exc:
        err(f"error: cannot listen: {exc.strerror or exc}")
        return 1
    return 0


def fresh_metrics_dir(home: Path, port: int) -> Path:
    """The directory where ``--workers`` processes leave their metric snapshots
    (one per port), emptied of an earlier run's files."""
    directory = home / "run" / f"metrics-{port}"
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("*.json"):
        old.unlink(missing_ok=True)
    return directory
