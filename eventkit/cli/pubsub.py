"""``eventkit call``, ``publish`` and ``watch``: talk to services from the shell.

``call`` prints the reply as JSON (an error's code and detail go to stderr, and the exit
status is 1). ``watch`` is a live tail of the CloudEvents on a topic pattern, one readable
line each, or one JSON object per line (``--format json``) for a pipe.
"""

from __future__ import annotations

import base64
import json
import sys
from datetime import datetime
from typing import Annotated, Any

import anyio
import typer
from rich.markup import escape

from ..service import Settings
from ..wire import (
    ConfigError,
    InvalidEvent,
    InvalidTopic,
    Message,
    RemoteError,
    decode_attributes,
    redact,
)
from .connection import BrokerOption, NamespaceOption, TokenOption, connected, run_async, where
from .output import Format, console, err, fail, note, print_json, progress

__all__ = ["call", "publish", "watch"]


def read_json(argument: str | None, what: str) -> Any:
    """The JSON of ``argument``, or of stdin when it is ``-`` or absent and stdin is a pipe."""
    text = argument
    if argument is None or argument == "-":
        text = "" if argument is None and sys.stdin.isatty() else sys.stdin.read()
    if text is None or not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        fail(
            f"the {what} is not JSON: {exc}",
            """quote it for the shell, e.g. '{"name": "Ada"}', or pipe it on stdin""",
        )


def _metadata(pairs: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            fail(f"metadata {pair!r} is not KEY=VALUE", "e.g. --metadata user=ada")
        found[key] = value
    return found


def call(
    service: Annotated[str, typer.Argument(help="Service name, e.g. helloworld")],
    endpoint: Annotated[str, typer.Argument(help="Endpoint, e.g. Helloworld.Call")],
    request: Annotated[
        str | None, typer.Argument(help="Request as JSON; from stdin when absent or -")
    ] = None,
    broker: BrokerOption = None,
    namespace: NamespaceOption = None,
    timeout: Annotated[float, typer.Option(help="Deadline of the call in seconds")] = 5.0,
    metadata: Annotated[
        list[str] | None, typer.Option("--metadata", "-m", help="KEY=VALUE, propagated")
    ] = None,
    version: Annotated[str | None, typer.Option(help="Only nodes of this version")] = None,
    token: TokenOption = None,
) -> None:
    """Call an endpoint of a service and print the reply as JSON."""
    payload = read_json(request, "request")
    md = _metadata(metadata or [])

    async def go() -> None:
        async with connected(broker, namespace, token) as kit:
            with progress(f"calling {service} {endpoint}"):
                try:
                    reply = await kit.call(
                        service,
                        endpoint,
                        payload,
                        timeout=timeout,
                        metadata=md or None,
                        version=version,
                    )
                except RemoteError as exc:
                    _remote_error(exc, kit.settings, broker is not None)
            print_json(reply)

    run_async(go)


def _remote_error(exc: RemoteError, settings: Settings, chosen: bool) -> None:
    origin = f" from {exc.id}" if exc.id else ""
    err.print(
        f"[bold red]error {exc.code}[/] {escape(exc.status)}{escape(origin)}: {escape(exc.detail)}"
    )
    if exc.data is not None:
        err.print(escape(json.dumps(exc.data, indent=2, default=str)))
    if exc.code == 401:
        err.print(
            "[yellow]hint:[/] the service checks tokens: give one with --token or "
            "EVENTKIT_TOKEN (`eventkit auth token --subject NAME --scope S` makes one for "
            "development with the service's key)"
        )
    if exc.code == 503:
        source = "from --broker / EVENTKIT_BROKER" if chosen else "the default"
        err.print(
            f"[yellow]hint:[/] this command used {escape(where(settings))} ({source}); "
            "`eventkit services` lists what runs there; start the service with "
            "`eventkit run MODULE:ATTR` or `eventkit up DIR` on the same broker and namespace"
        )
    raise typer.Exit(1)


def publish(
    topic: Annotated[str, typer.Argument(help="Topic, e.g. shop.order.placed")],
    data: Annotated[
        str | None, typer.Argument(help="Event data as JSON; from stdin when absent or -")
    ] = None,
    type: Annotated[
        str | None, typer.Option("--type", "-t", help="CloudEvents type [default: the topic]")
    ] = None,
    subject: Annotated[str | None, typer.Option(help="CloudEvents subject")] = None,
    structured: Annotated[
        bool | None,
        typer.Option(
            "--structured/--binary",
            help="Content mode: the whole event in the body, or attributes in ce-* headers "
            "(default: the broker's, structured on NATS, binary elsewhere)",
            show_default=False,
        ),
    ] = None,
    delay: Annotated[
        float | None,
        typer.Option(help="Seconds before subscribers get it (held by the broker's server)"),
    ] = None,
    broker: BrokerOption = None,
    namespace: NamespaceOption = None,
    token: TokenOption = None,
) -> None:
    """Publish one CloudEvent; prints its id."""
    payload = read_json(data, "event data")

    async def go() -> None:
        async with connected(broker, namespace, token) as kit:
            if delay and not kit.broker.capabilities.delay_kept:
                fail(
                    f"{kit.broker.__class__.__name__} holds a delayed event in the publishing "
                    "process, and this command exits at once",
                    "publish with delay= from a service, or use nats:// or amqp://",
                )
            try:
                event_id = await kit.publish(
                    topic, payload, type=type, subject=subject, structured=structured, delay=delay
                )
            except (InvalidTopic, ConfigError) as exc:
                fail(str(exc))
            console.print(event_id)

    run_async(go)


def watch(
    pattern: Annotated[
        str, typer.Argument(help="Topic pattern: * matches one token, > the rest")
    ] = ">",
    format: Annotated[Format, typer.Option("--format", "-f", help="text or json")] = Format.text,
    count: Annotated[int | None, typer.Option(help="Stop after this many messages")] = None,
    broker: BrokerOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Tail the CloudEvents on a topic pattern until Ctrl-C."""
    if format is Format.yaml:
        fail("watch prints text or json", "use --format json for a pipe")

    async def go() -> None:
        send, receive = anyio.create_memory_object_stream[Message](10_000)

        async def on_message(message: Message) -> None:
            await send.send(message)

        async with connected(broker, namespace) as kit:
            try:
                subscription = await kit.broker.subscribe(pattern, on_message)
            except InvalidTopic as exc:
                fail(str(exc), "e.g. `eventkit watch 'shop.>'`")
            note(f"watching {pattern} on {redact(kit.settings.broker)} (Ctrl-C to stop)")
            seen = 0
            try:
                async with receive:
                    async for message in receive:
                        show(message, format)
                        seen += 1
                        if count is not None and seen >= count:
                            break
            finally:
                with anyio.CancelScope(shield=True):
                    await subscription.stop()

    run_async(go)


def event_record(message: Message) -> dict[str, Any]:
    """A message as one JSON object: the topic, the CloudEvents attributes, the data."""
    try:
        attrs, raw, is_json = decode_attributes(message)
    except InvalidEvent as exc:
        return {"topic": message.topic, "error": str(exc), "data": _data(message.body, False)}
    return {"topic": message.topic, **attrs, "data": _data(raw, is_json)}


def _data(raw: Any, is_json: bool) -> Any:
    if not isinstance(raw, bytes):
        return raw
    if not raw:
        return None
    if is_json:
        try:
            return json.loads(raw)
        except ValueError:
            pass
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(raw).decode()}


def show(message: Message, format: Format) -> None:
    record = event_record(message)
    if format is Format.json:
        print_json(record, indent=None)
        return
    stamp = datetime.now().strftime("%H:%M:%S.%f")[:-3]
    data = json.dumps(record.get("data"), separators=(",", ":"), default=str)
    if len(data) > 400:
        data = data[:400] + "..."
    if "error" in record:
        console.print(
            f"[dim]{stamp}[/] [bold]{escape(message.topic)}[/] [red]not a CloudEvent[/] "
            f"{escape(data)}"
        )
        return
    console.print(
        f"[dim]{stamp}[/] [bold cyan]{escape(message.topic)}[/] "
        f"[green]{escape(str(record.get('type')))}[/] "
        f"[dim]from {escape(str(record.get('source')))} id={escape(str(record.get('id')))}[/] "
        f"{escape(data)}"
    )
