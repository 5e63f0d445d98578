"""``eventkit store get|put|delete|ls|watch BUCKET``: the key-value store from the shell.

The store is the one services use: the broker's own (NATS JetStream KV) or ``--store`` /
``EVENTKIT_STORE`` (``sqlite:///path``, ``postgresql://...``) where the broker holds none.
Values are shown as stored: JSON pretty-printed, other bytes as text. ``put`` takes JSON
(what typed buckets read) unless ``--raw``.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from ..store import Bucket, Change, Entry
from ..wire import EventKitError
from .connection import BrokerOption, NamespaceOption, connected, run_async
from .output import Format, console, fail, note, print_json

__all__ = ["app"]

app = typer.Typer(
    help="Read, write and watch the key-value store (the broker's, or --store).",
    no_args_is_help=True,
)

StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        envvar="EVENTKIT_STORE",
        help="Store URL where the broker holds no store: sqlite:///path or postgresql://...",
        show_default=False,
    ),
]
BucketArg = Annotated[str, typer.Argument(help="Bucket name, e.g. carts")]
FormatOption = Annotated[Format, typer.Option("--format", "-f", help="text or json")]


def _shown(value: bytes) -> Any:
    """Stored bytes as JSON when they are JSON, else as text."""
    try:
        return json.loads(value)
    except ValueError:
        return value.decode(errors="replace")


def _record(item: Entry[bytes] | Change[bytes]) -> dict[str, Any]:
    record: dict[str, Any] = {"bucket": item.bucket, "key": item.key, "revision": item.revision}
    if isinstance(item, Change):
        record["op"] = item.op
    record["value"] = _shown(item.value) if item.value is not None else None
    return record


async def _with_bucket(
    bucket: str, broker: str | None, namespace: str | None, store: str | None, action: Any
) -> None:
    async with connected(broker, namespace) as kit:
        if store:
            kit.settings = kit.settings.with_(store=store)
        try:
            await action(kit.store(bucket, bytes))
        except EventKitError as exc:
            fail(str(exc))


def get(
    bucket: BucketArg,
    key: Annotated[str, typer.Argument(help="Key")],
    format: FormatOption = Format.text,
    broker: BrokerOption = None,
    namespace: NamespaceOption = None,
    store: StoreOption = None,
) -> None:
    """Print the value of a key (exit status 1 when it is absent)."""

    async def action(values: Bucket[bytes]) -> None:
        entry = await values.get(key)
        if entry is None:
            fail(f"{bucket}/{key} is absent", f"list the keys: eventkit store ls {bucket}")
        if format is Format.json:
            print_json(_record(entry), indent=None)
            return
        note(f"{bucket}/{key} at revision {entry.revision}")
        shown = _shown(entry.value)
        if isinstance(shown, str):
            console.out(shown)
        else:
            print_json(shown)

    run_async(_with_bucket, bucket, broker, namespace, store, action)


def put(
    bucket: BucketArg,
    key: Annotated[str, typer.Argument(help="Key")],
    value: Annotated[
        str | None, typer.Argument(help="Value (JSON unless --raw); from stdin when absent or -")
    ] = None,
    raw: Annotated[bool, typer.Option("--raw", help="Store the text as given, not JSON")] = False,
    ttl: Annotated[float | None, typer.Option(help="Seconds until the key expires")] = None,
    revision: Annotated[
        int | None, typer.Option(help="Only if the key is at this revision (0: only if absent)")
    ] = None,
    broker: BrokerOption = None,
    namespace: NamespaceOption = None,
    store: StoreOption = None,
) -> None:
    """Write a key and print its new revision."""
    text = value
    if value is None or value == "-":
        text = "" if value is None and sys.stdin.isatty() else sys.stdin.read()
    assert text is not None
    if not raw:
        try:
            json.loads(text)
        except ValueError as exc:
            fail(
                f"the value is not JSON ({exc}): typed buckets could not read it",
                """quote it for the shell, e.g. '{"items": []}', or store text with --raw""",
            )

    async def action(values: Bucket[bytes]) -> None:
        written = await values.put(key, text.encode(), ttl=ttl, revision=revision)
        console.out(str(written))

    run_async(_with_bucket, bucket, broker, namespace, store, action)


def delete(
    bucket: BucketArg,
    key: Annotated[str, typer.Argument(help="Key")],
    revision: Annotated[int | None, typer.Option(help="Only if at this revision")] = None,
    broker: BrokerOption = None,
    namespace: NamespaceOption = None,
    store: StoreOption = None,
) -> None:
    """Delete a key (watchers see the delete)."""

    async def action(values: Bucket[bytes]) -> None:
        console.out(str(await values.delete(key, revision=revision)))

    run_async(_with_bucket, bucket, broker, namespace, store, action)


def ls(
    bucket: BucketArg,
    prefix: Annotated[str, typer.Argument(help="Only keys starting with this")] = "",
    format: FormatOption = Format.text,
    broker: BrokerOption = None,
    namespace: NamespaceOption = None,
    store: StoreOption = None,
) -> None:
    """List the keys of a bucket, sorted."""

    async def action(values: Bucket[bytes]) -> None:
        keys = await values.keys(prefix)
        if format is Format.json:
            print_json(keys, indent=None)
        else:
            for found in keys:
                console.out(found)

    run_async(_with_bucket, bucket, broker, namespace, store, action)


def watch(
    bucket: BucketArg,
    prefix: Annotated[str, typer.Argument(help="Only keys starting with this")] = "",
    initial: Annotated[
        bool, typer.Option("--initial", help="Show the present values first")
    ] = False,
    count: Annotated[int | None, typer.Option(help="Stop after this many changes")] = None,
    format: FormatOption = Format.text,
    broker: BrokerOption = None,
    namespace: NamespaceOption = None,
    store: StoreOption = None,
) -> None:
    """Print every change to the bucket (or the keys under a prefix) until Ctrl-C."""

    async def action(values: Bucket[bytes]) -> None:
        seen = 0
        async with values.watch(prefix, initial=initial) as changes:
            note(f"watching {bucket}/{prefix}* (Ctrl-C to stop)")
            async for change in changes:
                record = _record(change)
                if format is Format.json:
                    print_json(record, indent=None)
                else:
                    shown = json.dumps(record["value"]) if change.op == "put" else ""
                    console.out(f"{change.revision} {change.op} {change.key} {shown}".rstrip())
                sys.stdout.flush()
                seen += 1
                if count is not None and seen >= count:
                    break

    run_async(_with_bucket, bucket, broker, namespace, store, action)


app.command("get")(get)
app.command("put")(put)
app.command("delete")(delete)
app.command("ls")(ls)
app.command("watch")(watch)
