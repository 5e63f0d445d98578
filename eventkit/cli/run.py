"""``eventkit run MODULE:ATTR [--reload]``: run one service, restarting it when its code changes.

Without ``--reload`` the service runs in this process (``Service.run``: SIGINT/SIGTERM drain
and leave). With it, this process only watches files (watchfiles) and runs the service in a
child process of its own session, so a terminal's Ctrl-C reaches the watcher alone, which
stops the child gracefully (SIGTERM: drain, say leave) before starting the new code. The
watcher stops on SIGINT (even one inherited as ignored), SIGTERM and SIGHUP (a closed
terminal) alike, and the child never outlives it (:mod:`.lifeline`).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from ..service import Service
from ..wire import ConfigError
from .connection import DEFAULT_BROKER, BrokerOption, NamespaceOption
from .lifeline import bind_to_supervisor, child_env, honour_stop_signals, signal_group
from .output import err, fail, note

__all__ = ["load_service", "run", "split_target"]


def split_target(target: str) -> tuple[str, str | None]:
    module, _, attr = target.partition(":")
    if not module or (":" in target and not attr):
        fail(
            f"{target!r} is not MODULE:ATTR", "e.g. `eventkit run examples.helloworld.service:svc`"
        )
    return module, attr or None


def load_service(target: str) -> Service:
    """Import ``MODULE:ATTR`` (from the current directory first) and return the Service.

    Without ``:ATTR``, the module's one Service is taken.
    """
    module_name, attr = split_target(target)
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            fail(
                f"no module {module_name!r} (from {os.getcwd()})",
                "run from the directory that holds the module's package, or add it to PYTHONPATH",
            )
        raise
    found = {k: v for k, v in vars(module).items() if isinstance(v, Service)}
    if attr is None:
        if len(found) != 1:
            fail(
                f"{module_name} has {len(found)} Service objects; name one: {module_name}:ATTR",
                f"services there: {', '.join(sorted(found)) or 'none'}",
            )
        return next(iter(found.values()))
    if not hasattr(module, attr):
        fail(
            f"{module_name} has no attribute {attr!r}",
            f"Service objects there: {', '.join(sorted(found)) or 'none'}",
        )
    value = getattr(module, attr)
    if not isinstance(value, Service):
        fail(
            f"{target} is a {type(value).__name__}, not an eventkit.Service",
            f"Service objects there: {', '.join(sorted(found)) or 'none'}",
        )
    return value


def run(
    target: Annotated[str, typer.Argument(help="MODULE:ATTR naming a Service")],
    reload: Annotated[
        bool, typer.Option(help="Restart the service when its Python files change")
    ] = False,
    watch: Annotated[
        list[Path] | None,
        typer.Option(help="Directories to watch with --reload [default: the current one]"),
    ] = None,
    broker: BrokerOption = None,
    namespace: NamespaceOption = None,
    log_level: Annotated[
        str | None, typer.Option(envvar="EVENTKIT_LOG_LEVEL", help="DEBUG, INFO, ...")
    ] = None,
) -> None:
    """Run a service (MODULE:ATTR names an eventkit.Service) until Ctrl-C."""
    bind_to_supervisor()
    if reload:
        _reload(target, watch or [Path.cwd()], broker, namespace, log_level)
        return
    service = load_service(target)
    argv: list[str] = []
    # The service's own broker (in code) comes before the command's default one.
    if broker or service._broker_arg is None:
        argv += ["--broker", broker or DEFAULT_BROKER]
    if namespace:
        argv += ["--namespace", namespace]
    if log_level:
        argv += ["--log-level", log_level]
    try:
        service.run(argv)
    except ConfigError as exc:
        fail(str(exc), code=2)


def _child_command(target: str, namespace: str | None, log_level: str | None) -> list[str]:
    # The broker URL goes through the environment (see _spawn), not the command line that
    # any user of the machine can read in the process list: it may hold a password.
    cmd = [sys.executable, "-m", "eventkit.cli", "run", target]
    if namespace:
        cmd += ["--namespace", namespace]
    if log_level:
        cmd += ["--log-level", log_level]
    return cmd


def _reload(
    target: str,
    paths: list[Path],
    broker: str | None,
    namespace: str | None,
    log_level: str | None,
) -> None:
    import watchfiles

    for path in paths:
        if not path.exists():
            fail(f"--watch {path}: no such directory")
    cmd = _child_command(target, namespace, log_level)
    stop = threading.Event()

    def on_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = honour_stop_signals(on_stop)
    env = dict(os.environ)
    if broker:
        env["EVENTKIT_BROKER"] = broker
    child = _spawn(cmd, env)
    note(f"watching {', '.join(str(p) for p in paths)} for changes; Ctrl-C to stop")
    try:
        for changes in watchfiles.watch(
            *paths,
            watch_filter=watchfiles.PythonFilter(),
            stop_event=stop,
            raise_interrupt=False,
            debounce=300,
        ):
            changed = sorted({Path(p).name for _, p in changes})
            note(f"changed: {', '.join(changed)}; restarting {target}")
            _stop(child)
            child = _spawn(cmd, env)
    finally:
        _stop(child)
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _spawn(cmd: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """The service in a session of its own, bound to this watcher's life; the broker URL
    travels in ``env``, not on the command line (where `ps` would show its secrets)."""
    child = subprocess.Popen(cmd, start_new_session=True, env=child_env(env))
    note(f"started the service (pid {child.pid})")
    return child


def _stop(child: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    """SIGTERM (the service drains and leaves), then SIGKILL after ``grace`` seconds."""
    if child.poll() is not None:
        return
    signal_group(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    if child.poll() is None:
        err.print(f"[red]the service did not stop within {grace:.0f}s: killing it[/]")
        signal_group(child.pid, signal.SIGKILL)
        child.wait()
