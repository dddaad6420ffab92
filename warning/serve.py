"""`warning run` and `warning demo`: the pipeline's processes, the demo, clean shutdown.

The demo runs first, with processes of its own in a fresh namespace; then (for `run`)
the pipeline of the configured namespace serves until Ctrl-C or SIGTERM, which stop
every process this started; a process that exits meanwhile is started again (supervise.py).
"""

from __future__ import annotations

import asyncio
import signal
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from warning import redis_client
from warning.cli_support import console, print_json
from warning.config import CHANNELS


def _summary_table(summary: dict[str, Any]) -> Table:
    table = Table("tier", "version", *CHANNELS, "acks", title="Dispatched")
    table.add_column("alert", overflow="fold")
    for alert_id, s in summary["details"].items():
        cells = [str(s["reached"].get(ch, 0)) for ch in CHANNELS]
        table.add_row(s["tier"], str(s["version"]), *cells, ", ".join(a["by"] for a in s["acks"]), alert_id)
    return table


def serve(c: Any, keep_serving: bool, demo: bool, timeout: float) -> None:
    """`warning run` / `warning demo`: the demo in its own namespace, then the pipeline."""
    log_dir = Path(".run/logs")

    def _interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops the children too, like Ctrl-C
    try:
        _serve(c, log_dir, keep_serving, demo, timeout)
    except KeyboardInterrupt:
        console.print("stopped: every process this command started has exited")
        raise typer.Exit(130) from None


def _serve(c: Any, log_dir: Path, keep_serving: bool, demo: bool, timeout: float) -> None:
    from warning.runner import Processes, env_for
    from warning.supervise import Supervisor

    if demo:
        _demo(c, log_dir / "demo", timeout)
    if not keep_serving:
        return
    if _seed(c.settings):
        console.print("empty directory: loaded the bundled demo people and grids (replace them with "
                      "`warning recipients import` and `warning grids import`)")
    with Processes(log_dir, env=env_for(c.settings)) as procs:
        procs.start_pipeline(c.settings)
        console.print(f"pipeline serving topics '{c.settings.topic_prefix}feeds.*' (logs in {log_dir}/): "
                      f"worker + consumers {', '.join(CHANNELS)}; Ctrl-C stops everything this command started")
        supervisor = Supervisor(procs)
        while True:  # a process that exits is started again (warning/supervise.py)
            for line in supervisor.check():
                console.print(line, markup=False, highlight=False, soft_wrap=True)
            time.sleep(0.5)


def _seed(settings: Any) -> bool:

    from warning.keys import Keys
    from warning.targeting.importer import seed_demo_directory

    client = redis_client.connect_sync(settings.redis_url)
    try:
        return seed_demo_directory(client, Keys(settings.redis_prefix))
    finally:
        client.close()


def _demo(c: Any, log_dir: Path, timeout: float) -> None:
    from warning.bootstrap import bootstrap
    from warning.demo import demo_settings, forget_old_demos, run_demo
    from warning.runner import Processes, env_for

    settings = demo_settings(c.settings, datetime.now(UTC).strftime("%Y%m%d%H%M%S"))
    _seed(settings)
    demo = bootstrap(settings, logging=False)

    async def go() -> dict[str, Any]:
        try:
            await forget_old_demos(c.settings, settings, demo.redis)
            return await run_demo(demo, timeout)
        finally:
            await demo.redis.aclose()

    started = time.monotonic()
    with Processes(log_dir, env=env_for(settings)) as procs:
        procs.start_pipeline(settings)
        console.print(f"demo pipeline started in namespace {settings.redis_prefix} (logs in {log_dir}/)")
        try:
            summary = asyncio.run(go())
        except TimeoutError as exc:
            console.print(f"[red]demo failed:[/red] {exc}; dead processes: {procs.dead()}")
            raise typer.Exit(1) from exc
    Console().print(_summary_table(summary))
    console.print(f"demo scenario dispatched in {time.monotonic() - started:.1f}s; inspect it with "
                  f"WARNING_REDIS_PREFIX={settings.redis_prefix} warning status ALERT_ID")
    print_json({k: summary[k] for k in ("alerts", "deliveries", "acks")})
