"""The options every subcommand shares (``--broker``, ``--namespace``) and the connection.

Every command talks to ``--broker`` (or ``EVENTKIT_BROKER``), by default the local NATS at
``nats://127.0.0.1:4222``: the library's default too (:data:`eventkit.service.DEFAULT_BROKER`),
so a service started with ``svc.run()`` and the command meet without a setting. A broker that
does not answer is an error that says how to start one of its kind.
"""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any
from urllib.parse import urlsplit

import anyio
import typer

from ..rpc import where_services_meet
from ..service import DEFAULT_BROKER, Client, Settings, new_node_id
from ..wire import ConfigError, ConnectionLost, redact
from .output import fail, progress

__all__ = [
    "DEFAULT_BROKER",
    "BrokerOption",
    "NamespaceOption",
    "TokenOption",
    "connected",
    "no_broker_hint",
    "not_seen_hint",
    "run_async",
    "settings_for",
    "where",
]

BrokerOption = Annotated[
    str | None,
    typer.Option(
        "--broker",
        "-b",
        envvar="EVENTKIT_BROKER",
        help=f"Broker URL [default: {DEFAULT_BROKER}, the library's default too]",
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


TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="EVENTKIT_TOKEN",
        help="Token to send (a signed JWT: `eventkit auth token` makes one for development); "
        "best given as EVENTKIT_TOKEN, as a command line is seen by other users",
        show_default=False,
    ),
]


def no_broker_hint(url: str) -> str:
    """What to do when nothing answers at ``url``: advice for that kind of broker."""
    scheme = urlsplit(url).scheme.lower()
    shown = redact(url)
    if scheme in ("nats", "tls"):
        if url == DEFAULT_BROKER:
            return (
                "start the local stack with `eventkit up DIR` (it starts NATS here when "
                "nothing answers), or run `nats-server -js`, or point --broker / "
                "EVENTKIT_BROKER at a running broker"
            )
        return (
            f"start a NATS server at {shown} (`nats-server -js -p PORT`, or "
            "`eventkit up DIR --embed` for a local one), or point --broker / EVENTKIT_BROKER "
            f"at a running broker; without either, the default is {DEFAULT_BROKER}"
        )
    if scheme in ("amqp", "amqps"):
        return (
            f"start RabbitMQ at {shown} (`rabbitmq-server`, or `docker compose up -d "
            "rabbitmq`), and check the host, port, user, password and vhost of the URL"
        )
    if scheme in ("http", "https"):
        return (
            f"the HTTP broker is peer to peer: a process of it must listen at {shown} and "
            "name the others as ?seeds=host:port; see docs/http.md"
        )
    return f"start the broker at {shown}, or point --broker / EVENTKIT_BROKER at a running one"


def where(settings: Settings) -> str:
    """``namespace 'ns' on URL`` (the URL without secrets): where a command looked."""
    return f"namespace {settings.namespace!r} on {redact(settings.broker)}"


def not_seen_hint(settings: Settings, chosen: bool) -> str:
    """What to check when a command finds no service: the broker URL and namespace it used."""
    source = "from --broker / EVENTKIT_BROKER" if chosen else "the default"
    return f"this command used {where(settings)} ({source}). {where_services_meet(settings.broker)}"


def settings_for(broker: str | None, namespace: str | None) -> Settings:
    """Settings of a command: its flags (already merged with the environment by the option's
    envvar), then the other ``EVENTKIT_*`` variables, then the default broker."""
    argv = ["--broker", broker or DEFAULT_BROKER]
    if namespace:
        argv += ["--namespace", namespace]
    try:
        return Settings.load(argv=argv)
    except ConfigError as exc:
        fail(str(exc))


@asynccontextmanager
async def connected(
    broker: str | None, namespace: str | None, token: str | None = None
) -> AsyncIterator[Client]:
    """A connected client of the command (sending ``token``, when given, with its calls and
    events); a broker that does not answer ends the command."""
    settings = settings_for(broker, namespace)
    if token:
        settings = settings.with_(token=token)
    try:
        client = Client(settings=settings, node_id=new_node_id("cli"))
    except ConfigError as exc:
        fail(str(exc))
    shown = redact(settings.broker)
    with progress(f"connecting to {shown}"):
        try:
            await client.connect()
        except ConnectionLost as exc:
            fail(f"no broker answers at {shown} ({redact(str(exc))})", no_broker_hint(shown))
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
