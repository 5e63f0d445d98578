"""The options every subcommand shares (``--broker``, ``--namespace``) and the connection.

Every command talks to ``--broker`` (or ``EVENTKIT_BROKER``), by default the local NATS at
``nats://127.0.0.1:4222`` that ``eventkit up`` starts when nothing runs there. A broker that
does not answer is an error that says how to start one.
"""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

import anyio
import typer

from ..service import Client, Settings, new_node_id
from ..wire import ConfigError, ConnectionLost, redact
from .output import fail, progress

__all__ = [
    "DEFAULT_BROKER",
    "BrokerOption",
    "NamespaceOption",
    "connected",
    "no_broker_hint",
    "run_async",
    "settings_for",
]

DEFAULT_BROKER = "nats://127.0.0.1:4222"

BrokerOption = Annotated[
    str | None,
    typer.Option(
        "--broker",
        "-b",
        envvar="EVENTKIT_BROKER",
        help=f"Broker URL [default: {DEFAULT_BROKER}]",
        show_default=False,
    ),
]
NamespaceOption = Annotated[
    str | None,
    typer.Option(
        "--namespace",
        "-n",
        envvar="EVENTKIT_NAMESPACE",
        help="First token of the kit's topics; services only see others of their namespace "
        "[default: eventkit]",
        show_default=False,
    ),
]


def no_broker_hint(url: str) -> str:
    return (
        f"start the local stack with `eventkit up DIR` (it starts NATS at {DEFAULT_BROKER} "
        "when nothing runs there), or run `nats-server -js`, or point --broker / "
        f"EVENTKIT_BROKER at a running broker (now: {redact(url)})"
    )


def settings_for(broker: str | None, namespace: str | None) -> Settings:
    """Settings of a command: its flags (already merged with the environment by the option's
    envvar), then the other ``EVENTKIT_*`` variables, then the command's default broker."""
    argv = ["--broker", broker or DEFAULT_BROKER]
    if namespace:
        argv += ["--namespace", namespace]
    try:
        return Settings.load(argv=argv)
    except ConfigError as exc:
        fail(str(exc))


@asynccontextmanager
async def connected(broker: str | None, namespace: str | None) -> AsyncIterator[Client]:
    """A connected client of the command; a broker that does not answer ends the command."""
    settings = settings_for(broker, namespace)
    try:
        client = Client(settings=settings, node_id=new_node_id("cli"))
    except ConfigError as exc:
        fail(str(exc))
    where = redact(settings.broker)
    with progress(f"connecting to {where}"):
        try:
            await client.connect()
        except ConnectionLost as exc:
            fail(f"no broker answers at {where} ({redact(str(exc))})", no_broker_hint(where))
    try:
        yield client
    finally:
        with anyio.CancelScope(shield=True):
            await client.close()


def run_async(func: Callable[..., Awaitable[Any]], *args: Any, handle_signals: bool = True) -> Any:
    """Run ``func(*args)`` on asyncio; Ctrl-C (or SIGTERM) ends it quietly with status 130
    (unless ``handle_signals`` is false: then ``func`` handles them itself)."""

    async def main() -> Any:
        result: Any = None
        async with anyio.create_task_group() as tg:

            async def watch_signals() -> None:
                with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    async for _ in signals:
                        raise _Interrupted

            async def body() -> None:
                nonlocal result
                result = await func(*args)
                tg.cancel_scope.cancel()

            if handle_signals:
                tg.start_soon(watch_signals)
            tg.start_soon(body)
        return result

    try:
        return anyio.run(main)
    except BaseExceptionGroup as group:
        leaves = _leaves(group)
        if any(isinstance(leaf, _Interrupted) for leaf in leaves):
            raise typer.Exit(130) from None
        raise leaves[0] from None  # one failure (typer.Exit of fail(), or a bug): unwrapped


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    found: list[BaseException] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            found += _leaves(exc)
        else:
            found.append(exc)
    return found


class _Interrupted(Exception):
    """SIGINT or SIGTERM reached a command that was waiting."""
