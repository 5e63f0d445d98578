"""``eventkit health --url``: one node's readiness, as its probe port reports it.

The same state ``/readyz`` answers an orchestrator (connected, registered, not draining),
read with the standard library so that it works as a container's health check command.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import typer
from rich.markup import escape

from .output import Format, console, fail, print_json, print_yaml

__all__ = ["check"]


def _get(url: str, timeout: float) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:  # 503: not ready, with the report as the body
        return exc.code, json.loads(exc.read() or b"{}")


def check(url: str, timeout: float, format: Format) -> None:
    """Print the node's report; exit 1 unless it is live and ready."""
    base = url.rstrip("/")
    if not base.startswith(("http://", "https://")):
        fail(f"--url {url!r} is not an http:// address", "e.g. --url http://127.0.0.1:9464")
    try:
        live_status, _ = _get(base + "/healthz", timeout)
        ready_status, report = _get(base + "/readyz", timeout)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        fail(
            f"no probe answers at {base}: {reason}",
            "is the service running with EVENTKIT_METRICS_PORT set to that port?",
        )
    report = {**report, "live": live_status == 200, "ready": ready_status == 200}
    if format is Format.json:
        print_json(report)
    elif format is Format.yaml:
        print_yaml(report)
    else:
        checks = ", ".join(f"{k}={v}" for k, v in report.get("checks", {}).items())
        state = "[green]ready[/]" if report["ready"] else "[red]not ready[/]"
        who = escape(f"{report.get('service', '?')} {report.get('node', '?')}")
        console.print(f"{who}: {state} ({escape(checks)})")
    if not (report["live"] and report["ready"]):
        raise typer.Exit(1)
