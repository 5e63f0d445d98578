"""``eventkit stream``: open a streaming endpoint and print its items as they arrive.

Items go to stdout as JSON lines (one compact object per line, flushed each), so the output
pipes into ``jq`` or a file while the stream runs. For an endpoint that takes items (a client
or bidi stream, as the registry says), standard input is read as JSON lines and each line is
sent as one item; the end of input closes the sending side. Ctrl-C cancels the stream (the
service's handler is closed) and exits with status 130; a service's error goes to stderr
with its code (status 1), after the items that came before it.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import anyio
import anyio.to_thread
import typer

from ..rpc import DEFAULT_HEARTBEAT, DEFAULT_WINDOW, Stream
from ..service import Client
from ..wire import RemoteError, StreamClosed
from .connection import BrokerOption, NamespaceOption, TokenOption, connected, run_async
from .output import fail, print_json, progress
from .pubsub import _metadata, _remote_error, read_json

__all__ = ["stream"]


def stream(
    service: Annotated[str, typer.Argument(help="Service name, e.g. logs")],
    endpoint: Annotated[str, typer.Argument(help="Streaming endpoint, e.g. Logs.Tail")],
    request: Annotated[
        str | None,
        typer.Argument(
            help="The opening request as JSON (server streams); from stdin when - . "
            "Client and bidi streams read their items from stdin, one JSON value a line"
        ),
    ] = None,
    broker: BrokerOption = None,
    namespace: NamespaceOption = None,
    timeout: Annotated[
        float | None, typer.Option(help="Deadline of the whole stream in seconds [default: none]")
    ] = None,
    count: Annotated[int | None, typer.Option(help="Stop after this many items")] = None,
    window: Annotated[
        int, typer.Option(help="Items taken in before the service must wait")
    ] = DEFAULT_WINDOW,
    heartbeat: Annotated[
        float, typer.Option(help="Seconds between frames on an idle stream")
    ] = DEFAULT_HEARTBEAT,
    metadata: Annotated[
        list[str] | None, typer.Option("--metadata", "-m", help="KEY=VALUE, propagated")
    ] = None,
    version: Annotated[str | None, typer.Option(help="Only nodes of this version")] = None,
    token: TokenOption = None,
) -> None:
    """Stream from (and to) an endpoint; items print as JSON lines until the stream ends."""
    md = _metadata(metadata or [])

    async def go() -> None:
        async with connected(broker, namespace, token) as kit:
            kind = await _kind_of(kit, service, endpoint)
            takes_items = kind in ("client", "bidi")
            if takes_items and request not in (None, "-"):
                fail(
                    f"{service} {endpoint} is a {kind} stream: it takes its requests as items",
                    "pipe them on stdin, one JSON value a line",
                )
            payload = None if takes_items else read_json(request, "request")
            opened = kit.stream(
                service,
                endpoint,
                payload,
                timeout=timeout,
                metadata=md or None,
                version=version,
                window=window,
                heartbeat=heartbeat,
            )
            try:
                with progress(f"opening {service} {endpoint}"):
                    await opened.open()
                async with opened:
                    await _run(opened, takes_items, count)
            except RemoteError as exc:
                _remote_error(exc, kit.settings, broker is not None)

    run_async(go)


async def _kind_of(kit: Client, service: str, endpoint: str) -> str | None:
    """How ``endpoint`` streams, as the registry says (None when it does not know it)."""
    with progress(f"asking the registry for {service}"):
        for info in await kit.describe(service):
            for known in info.endpoints:
                if known.name == endpoint:
                    return known.stream
    return None


async def _run(opened: Stream[Any], takes_items: bool, count: int | None) -> None:
    error: RemoteError | None = None
    async with anyio.create_task_group() as tg:
        if takes_items:
            tg.start_soon(_send_stdin, opened)
        try:
            await _print(opened, count)
        except RemoteError as exc:
            error = exc  # raised outside the task group, so it is not wrapped in a group
        tg.cancel_scope.cancel()
    if error is not None:
        raise error


async def _print(opened: Stream[Any], count: int | None) -> None:
    seen = 0
    async for item in opened:
        print_json(item, indent=None)
        seen += 1
        if count is not None and seen >= count:
            return


async def _send_stdin(opened: Stream[Any]) -> None:
    """Each line of stdin is one item; the end of input closes the sending side."""
    number = 0
    while True:
        line = await anyio.to_thread.run_sync(sys.stdin.readline, abandon_on_cancel=True)
        if not line:
            break
        number += 1
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            fail(
                f"line {number} of stdin is not JSON: {exc}; the stream was cancelled",
                """send one JSON value a line, e.g. {"file": "app.log", "text": "hi"}""",
            )
        try:
            await opened.send(item)
        except StreamClosed:
            return  # the service ended the stream: what it says comes on stdout
    await opened.close_send()
