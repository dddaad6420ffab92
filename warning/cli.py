"""The ``warning`` command. JSON output (``--json``) is an interface scripts rely on."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from warning import heap, redis_client
from warning.cli_alerts import alerts, status
from warning.cli_control import alert_app, silence_app
from warning.cli_response import ack, escalator, report, tokens_app
from warning.cli_support import UNREACHABLE, command_settings, console, load_container, print_json, unreachable
from warning.config import CHANNELS, ConfigError, load_settings
from warning.control.policy import ReleasePolicyError
from warning.feeds import TopicMismatch
from warning.rules.pack import RulePackError
from warning.targeting.directory import DirectoryError
from warning.targeting.templates import TemplateError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Early-warning dispatch pipeline.")
feed_app = typer.Typer(no_args_is_help=True, help="Push feeds to Kafka.")
cap_app = typer.Typer(no_args_is_help=True, help="CAP 1.1 / 1.2 messages.")
grids_app = typer.Typer(no_args_is_help=True, help="The community grid registry (GeoJSON).")
recipients_app = typer.Typer(no_args_is_help=True, help="The recipient directory (in Redis).")
rules_app = typer.Typer(no_args_is_help=True, help="Rule packs.")
app.add_typer(feed_app, name="feed")
app.add_typer(rules_app, name="rules")
app.add_typer(cap_app, name="cap")
app.add_typer(grids_app, name="grids")
app.add_typer(recipients_app, name="recipients")
app.add_typer(tokens_app, name="tokens")
app.add_typer(alert_app, name="alert")
app.add_typer(silence_app, name="silence")
app.command()(status)
app.command()(alerts)
app.command()(escalator)
app.command()(report)
app.command()(ack)


@app.command()
def worker() -> None:
    """Run the Faust worker (ingest, evaluate, lifecycle, target, enqueue)."""
    from faust.worker import Worker

    from warning import eventloop
    from warning.app import create_app
    from warning.feeds import ensure_topics

    c = load_container(serving="worker")
    ensure_topics(c.settings)
    eventloop.use(c.settings.event_loop)
    faust_app = create_app(c)

    @faust_app.task
    async def settle_heap() -> None:  # once the worker is up: its startup objects live as long as it
        heap.settle(c.settings.gc_threshold)

    faust_worker = Worker(faust_app, loglevel=c.settings.faust_log_level, quiet=True)
    # Faust's terminal spinner sets the root logger to DEBUG so that every log call turns it:
    # each debug line of aiokafka then builds a record (7 % of the worker's time under load)
    # and its escape codes end up in the log. No spinner: the log level means what it says.
    faust_worker.spinner = None
    faust_worker.execute_from_commandline()


@app.command()
def consumer(channel: Annotated[str, typer.Argument(help="sms | push | grid | cell_broadcast")],
             burst: Annotated[bool, typer.Option(help="exit when the queues are empty")] = False) -> None:
    """Run one channel's delivery consumer."""
    if channel not in CHANNELS:
        raise typer.BadParameter(f"channel must be one of {', '.join(CHANNELS)}")
    import structlog

    from consumers.channels.build import build_notifier
    from consumers.notifier import Starting
    from consumers.worker import RateLimit, RetryPolicy, Worker
    from warning.delivery.receipts import KafkaReceiptLog, Receipts
    from warning.feeds import ensure_topics
    from warning.heartbeat import beating

    c = load_container(serving=f"consumer-{channel}")
    s = c.settings
    ensure_topics(s)
    # SMPP gateways pace themselves (a bucket per gateway); the channel's bucket is Twilio's.
    per_s = None if channel == "sms" and s.sms_provider == "smpp" else s.rate_limits.get(channel)
    rate = RateLimit(per_s=per_s, burst=max(per_s, 1.0)) if per_s else None
    retry = RetryPolicy(max_attempts=s.retry_max_attempts, base_s=s.retry_base_s, cap_s=s.retry_cap_s,
                        deadline_s=s.retry_deadline_s)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        receipt_log = KafkaReceiptLog(s.kafka_bootstrap, c.topics.receipts, wait=False)
        await receipt_log.start()
        receipts = Receipts(c.store, receipt_log)
        notifier = build_notifier(channel, c, receipts)
        if isinstance(notifier, Starting):
            await notifier.start()  # binds before the first job, so receipts flow at once
        if states := getattr(notifier, "states", None):
            c.pulse.details["smpp_bound"] = states  # each beat says which gateways are bound
        heap.settle(s.gc_threshold)

        async def forget(job: Any) -> None:
            if await c.recipients.forget_address(job.recipient, job.channel, job.address):
                structlog.get_logger().warning("address_forgotten", delivery_id=job.delivery_id, alert_id=job.alert_id,
                            channel=job.channel, reason="provider reports it unregistered")
        c.pulse.details["mode"] = s.provider_mode(channel)  # the sandbox where live is required alerts
        try:
            async with beating(c.redis, c.keys, c.pulse):
                await Worker(c.store, notifier, batch=s.consumer_batch, visibility_timeout_s=s.visibility_timeout_s,
                             retry=retry, rate=rate, receipts=receipts,
                             receipt_timeout_s=s.sms_receipt_timeout_s, forget=forget).run(stop, burst=burst)
        finally:
            await notifier.close()
            await receipt_log.close()
            await c.redis.aclose()

    from warning import eventloop

    eventloop.run(main(), s.event_loop)


@app.command()
def api() -> None:
    """Run the HTTP API (feeds, alerts, acknowledgements, provider callbacks) on WARNING_API_PORT."""
    import uvicorn

    from warning.api.app import create_api

    c = load_container(serving="api")
    uvicorn.run(create_api(c), host="0.0.0.0", port=c.settings.api_port, log_level="warning",
                access_log=False)


@app.command()
def sandbox() -> None:
    """Run the local provider sandbox (Twilio, FCM, Web Push, grid receivers) on WARNING_SANDBOX_PORT."""
    import uvicorn

    from warning.sandbox.server import create_sandbox

    settings = load_settings()
    loopback = settings.sandbox_host in ("127.0.0.1", "localhost", "::1")
    uvicorn.run(create_sandbox(settings), host="127.0.0.1" if loopback else "0.0.0.0", port=settings.sandbox_port,
                log_level="warning",
                access_log=False, timeout_graceful_shutdown=1)


@app.command()
def queues(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Depth and oldest-job age per channel and tier lane, retries waiting, dead letters."""
    c = load_container(logging=False)

    async def stats() -> list[dict[str, Any]]:
        try:
            return [await c.store.queue.queue_stats(channel) for channel in CHANNELS]
        finally:
            await c.redis.aclose()

    result = asyncio.run(stats())
    if as_json:
        print_json(result)
        return
    table = Table("channel", "lane", "depth", "pending", "oldest age (s)", "delayed", "dead")
    for s in result:
        for lane, figures in s["lanes"].items():
            table.add_row(s["channel"], lane, str(figures["depth"]), str(figures["pending"]),
                          str(figures["oldest_age_s"]), str(s["delayed"]), str(s["dead"]))
    Console().print(table)


@app.command()
def health(role: Annotated[str, typer.Argument(help="api | worker | consumer-sms | consumer-push | consumer-grid | "
                                                    "consumer-cell_broadcast | escalator")],
           ready: Annotated[bool, typer.Option("--ready", help="readiness rather than liveness")] = False) -> None:
    """This container's process of a role, for the orchestrator's probes: exit 0 healthy, 1 not (one line why)."""
    from warning.health import check

    verdict = asyncio.run(check(load_settings(), role, ready))
    print(("healthy: " if verdict.ok else "unhealthy: ") + verdict.why)
    if not verdict.ok:
        raise typer.Exit(1)


@app.command("topics")
def topics() -> None:
    """Create the pipeline's Kafka topics if missing."""
    from warning.feeds import ensure_topics

    created = ensure_topics(command_settings())
    print_json({"created": created})


@feed_app.command("push")
def feed_push(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
              batch: Annotated[int, typer.Option(min=1, help="readings per Kafka message")] = 500) -> None:
    """Push a JSONL file of observations, or one CAP XML message, to Kafka."""
    from warning.feeds import ensure_topics, looks_like_xml, push_cap, push_observations, read_lines

    settings = command_settings()
    ensure_topics(settings)
    data = file.read_bytes()
    if looks_like_xml(data):
        print_json({"cap": push_cap(settings, data), "topic": settings.topic_prefix + "feeds.cap"})
        return
    sent, odd = push_observations(settings, read_lines(file), batch=batch)
    print_json({"readings": sent, "unparsed_lines": odd, "topic": settings.topic_prefix + "feeds.observations"})


@cap_app.command("validate")
def cap_validate(files: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False)]) -> None:
    """Validate CAP files (official XSD + semantics): one JSON object per file; exit 1 if any is invalid."""
    from warning.cap.validate import validate_cap

    all_valid = True
    for file in files:
        verdict = validate_cap(file.read_bytes())
        all_valid &= verdict.valid
        print_json(verdict.as_json(str(file)))
    if not all_valid:
        raise typer.Exit(1)


@cap_app.command("show")
def cap_show(alert_id: str) -> None:
    """The alert's latest version as CAP 1.2 XML."""
    from warning.models import AlertVersion

    c = load_container(logging=False)
    raw = asyncio.run(c.store.alerts.latest_json(alert_id))
    if not raw:
        console.print(f"error: no alert {alert_id!r}")
        raise typer.Exit(1)
    sys.stdout.write(c.render_cap(AlertVersion.model_validate_json(raw)).decode("utf-8") + "\n")


@grids_app.command("import")
def grids_import(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)]) -> None:
    """Load or replace the grid registry from a GeoJSON FeatureCollection (workers pick it up)."""

    from warning.keys import Keys
    from warning.targeting.grids import GridFileError
    from warning.targeting.importer import store_grids

    settings = load_settings()
    client = redis_client.connect_sync(settings.redis_url)
    try:
        count = store_grids(client, Keys(settings.redis_prefix), file.read_bytes(), str(file))
    except GridFileError as exc:
        console.print(f"error: {exc}")
        raise typer.Exit(1) from exc
    finally:
        client.close()
    print_json({"grids": count})


@recipients_app.command("import")
def recipients_import(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)]) -> None:
    """Upsert or remove people from CSV or JSONL (`op` column: upsert | remove); bad lines are reported."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from warning.keys import Keys
    from warning.targeting.importer import count_lines, import_recipients

    settings = load_settings()
    client = redis_client.connect_sync(settings.redis_url)
    total = count_lines(file)
    started = time.monotonic()
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=console, transient=True) as bar:
        task = bar.add_task(f"importing {file.name}", total=total)
        report = import_recipients(client, Keys(settings.redis_prefix), file,
                                   progress=lambda n: bar.advance(task, n))
    client.close()
    for line, reason in report.errors[:20]:
        console.print(f"{file}:{line}: {reason}")
    if len(report.errors) > 20:
        console.print(f"… and {len(report.errors) - 20} more bad lines")
    print_json({**report.as_json(), "seconds": round(time.monotonic() - started, 2)})
    if report.errors:
        raise typer.Exit(1)


@rules_app.command("replay")
def rules_replay(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
                 pack: Annotated[Path | None, typer.Option(help="rule pack YAML")] = None) -> None:
    """Run rules + lifecycle offline (no Kafka, no Redis); one JSON object per lifecycle change."""
    from warning.lifecycle import LifecycleConfig
    from warning.models import Observation
    from warning.replay import replay
    from warning.rules.evaluate import EvalConfig
    from warning.rules.pack import load_pack
    from warning.targeting.directory import load_directory

    settings = load_settings()
    rule_pack, directory = load_pack(pack or settings.rules_file), load_directory(settings.directory_file)
    lifecycle = LifecycleConfig(ttl_s=settings.alert_ttl_s, downgrade_hold_s=settings.downgrade_hold_s)
    observations = []
    for number, line in enumerate(file.read_bytes().splitlines(), 1):
        if line.strip():
            try:
                observations.append(Observation.model_validate_json(line))
            except ValueError as exc:
                console.print(f"{file}:{number}: skipped: {exc}".replace("\n", " "))
    for version in replay(rule_pack, directory, observations, EvalConfig(), lifecycle):
        print_json({"hazard": version.hazard, "key": version.key, "tier": version.tier.value,
                     "msg_type": version.msg_type, "at": version.caused_at.isoformat()})


@app.command()
def run(demo: Annotated[bool, typer.Option(help="replay the bundled demo scenario once")] = True,
        timeout: float = 180.0) -> None:
    """Start the pipeline processes, replay the demo, keep serving until Ctrl-C."""
    from warning.serve import serve

    serve(load_container(serving="run"), keep_serving=True, demo=demo, timeout=timeout)


@app.command("demo")
def demo_cmd(timeout: float = 180.0) -> None:
    """Like run, but exit after the demo with a one-line JSON summary."""
    from warning.serve import serve

    serve(load_container(serving="run"), keep_serving=False, demo=True, timeout=timeout)


@app.command()
def bench(scenario: Annotated[str, typer.Argument(
              help="evaluate | reach | latency | fanout | fanout-city | peer | peer-ours | manual | smpp | failover "
                   "| chaos | all")] = "all",
          repeats: Annotated[int, typer.Option(min=1, help="runs per scenario; figures are medians")] = 3,
          as_json: Annotated[bool, typer.Option("--json")] = False,
          save: Annotated[bool, typer.Option(help="write bench/results/latest.json and a dated copy")] = False,
          cluster: Annotated[bool, typer.Option(help="on the local 3-node Kafka cluster")] = False,
          ) -> None:
    """Run benchmark scenarios on the real local stack; print a table (or one JSON object per scenario)."""
    from warning.bench.report import on_cluster, run_scenarios

    base = load_settings()
    results = run_scenarios(on_cluster(base) if cluster else base, scenario, repeats, save=save)
    for result in results:
        if as_json:
            print_json({k: v for k, v in result.items() if k != "runs"})


def main() -> None:
    from warning.logs import configure_logging

    configure_logging("WARNING")  # stdout is for results (JSON); logs go to stderr from the start
    debug = "--debug" in sys.argv or os.environ.get("WARNING_LOG_LEVEL", "").upper() == "DEBUG"
    sys.argv = [a for a in sys.argv if a != "--debug"]
    try:
        app()
    except (ConfigError, RulePackError, DirectoryError, ReleasePolicyError, TemplateError, TopicMismatch) as exc:
        console.print(f"configuration error: {exc}")
        sys.exit(2)
    except UNREACHABLE as exc:
        if debug:
            raise
        console.print(unreachable(exc), soft_wrap=True)
        sys.exit(2)
