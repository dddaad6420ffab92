"""`warning status ID` and `warning alerts [--closed]`: what operators read about alerts."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from warning.cli_support import console, load_container, print_json


def status(alert_id: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """An alert's tier, version, deliveries per channel and status, acks and reach."""
    from warning.readmodel import alert_status

    c = load_container(logging=False)
    result = asyncio.run(alert_status(c.store, alert_id))
    if result is None:
        console.print(f"error: no alert {alert_id!r}")
        raise typer.Exit(1)
    if as_json:
        print_json(result)
        return
    table = Table(title=f"{alert_id}  {result['tier']}  v{result['version']} ({result['msg_type']})")
    table.add_column("channel")
    table.add_column("statuses")
    for channel, counts in result["channels"].items():
        table.add_row(channel, ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    Console().print(table)
    Console().print(f"acks: {[a['by'] for a in result['acks']]}  reach: {result['reach']}")


def alerts(as_json: Annotated[bool, typer.Option("--json")] = False,
           closed: Annotated[bool, typer.Option("--closed", help="expired and cancelled ones, newest first")] = False,
           since: Annotated[str, typer.Option(help="closed since (RFC 3339)")] = "",
           hazard: Annotated[str, typer.Option()] = "", area: Annotated[str, typer.Option()] = "",
           limit: Annotated[int, typer.Option(min=1)] = 50) -> None:
    """Active (unexpired, not cancelled) alerts, or the closed ones with --closed."""
    from warning.readmodel import active_alerts

    c = load_container(logging=False)
    if closed:
        _closed_alerts(c, since, hazard, area, limit, as_json)
        return
    result = asyncio.run(active_alerts(c.store))
    if as_json:  # the documented shape: scripts read these five fields
        print_json([{k: a[k] for k in ("alert_id", "hazard", "area", "tier", "version")} for a in result])
        return
    table = Table("alert_id", "hazard", "area", "tier", "version")
    for a in result:
        table.add_row(a["alert_id"], a["hazard"], a["area"], a["tier"], str(a["version"]))
    Console().print(table)


def _closed_alerts(c: Any, since: str, hazard: str, area: str, limit: int, as_json: bool) -> None:
    from datetime import datetime

    from warning.response.history import closed_alerts

    try:
        since_s = datetime.fromisoformat(since).timestamp() if since else None
    except ValueError as exc:
        console.print(f"error: --since {since!r} is not an RFC 3339 time")
        raise typer.Exit(2) from exc
    page, total = asyncio.run(closed_alerts(c, since_s, None, hazard or None, area or None, limit))
    if as_json:
        print_json(page)
        return
    table = Table("alert_id", "hazard", "area", "tier", "version", "state", "closed", title=f"{total} closed")
    for a in page:
        closed_at = datetime.fromtimestamp(a["closed_at"]).astimezone().strftime("%Y-%m-%d %H:%M")
        table.add_row(a["alert_id"], a["hazard"], a["area"], a["tier"], str(a["version"]), a["state"], closed_at)
    Console().print(table)
