"""``eventkit services``, ``describe`` and ``health``: what runs, what it serves, if it answers.

The registry travels over the broker, so these commands ask it: a query makes every node
announce itself. On NATS they also list the NATS micro services that answer ``$SRV.INFO``
(kind ``nats-micro``: any language's micro framework), which ``eventkit call`` reaches on
the subjects they advertise. ``health`` measures, for every node of a service, how long its
answer to a registry query took (every node has a registry loop), and, for nodes that serve RPC, the
round trip of a request through the node's RPC server (see :func:`_rpc_ping`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Annotated, Any

import anyio
import typer
from rich.markup import escape
from rich.table import Table

from ..discovery import (
    ANNOUNCE,
    QUERY,
    EndpointInfo,
    NodeInfo,
    RegistryQuery,
    ServiceInfo,
    registry_topic,
)
from ..rpc import (
    CALLER,
    DEADLINE,
    ENDPOINT,
    NO_RESPONDERS,
    NODE,
    REPLY_TO,
    STATUS,
    node_topic,
    reply_topic,
)
from ..service import Client, Settings
from ..wire import DataCodec, Message, decode_attributes, redact
from . import probes
from .connection import (
    BrokerOption,
    NamespaceOption,
    connected,
    not_seen_hint,
    run_async,
    where,
)
from .output import Format, console, fail, print_json, print_yaml, progress
from .schema_text import message_lines

__all__ = ["PING_ENDPOINT", "describe", "health", "known_or_fail", "node_address", "services"]

PING_ENDPOINT = "eventkit.ping"
"""The endpoint name ``health`` sends to each node. No service defines it, so a live RPC
server answers 404 at once: the request made the whole round trip through the node."""

WaitOption = Annotated[
    float, typer.Option(help="Seconds to wait for nodes to answer the registry query")
]


def services(
    format: Annotated[Format, typer.Option("--format", "-f")] = Format.text,
    wait: WaitOption = 1.0,
    broker: BrokerOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """List the services that run in the namespace (one row per name and version)."""

    async def go() -> None:
        async with connected(broker, namespace) as kit:
            with progress("asking the registry"):
                found = await kit.services(wait=wait)
            if format is not Format.text:
                dump = [_service_dump(info) for info in found]
                print_json(dump) if format is Format.json else print_yaml(dump)
                return
            if not found:
                fail(
                    f"no services in {where(kit.settings)}",
                    "start some with `eventkit run MODULE:ATTR` or `eventkit up DIR`; "
                    + not_seen_hint(kit.settings, broker is not None),
                )
            table = Table(title=f"services in {where(kit.settings)}")
            for column in ("NAME", "VERSION", "KIND", "NODES", "ENDPOINTS", "SUBSCRIPTIONS"):
                table.add_column(column)
            for info in found:
                table.add_row(
                    info.name,
                    info.version,
                    info.kind,
                    str(len(info.nodes)),
                    ", ".join(e.name for e in info.endpoints) or "-",
                    ", ".join(sorted(_topics(info))) or "-",
                )
            console.print(table)

    run_async(go)


def _topics(info: ServiceInfo) -> set[str]:
    topics: set[str] = set()
    for node in info.nodes:
        for sub in node.subscriptions:
            how = f" (queue {sub.queue})" if sub.queue else ""
            how += f" (durable {sub.durable})" if sub.durable else ""
            topics.add(sub.topic + how)
    return topics


def _service_dump(info: ServiceInfo) -> dict[str, Any]:
    return info.model_dump(mode="json")


async def known_or_fail(kit: Client, name: str, wait: float, chosen: bool) -> list[ServiceInfo]:
    """The service's versions in the view; else fail, naming where the command looked."""
    with progress(f"asking the registry for {name}"):
        found = await kit.describe(name, wait=wait)
        if found:
            return found
        known = sorted({info.name for info in await kit.services(wait=wait)})
    fail(
        f"no service {name!r} in {where(kit.settings)}",
        f"known services: {', '.join(known)}"
        if known
        else "known services: none; " + not_seen_hint(kit.settings, chosen),
    )


def describe(
    service: Annotated[str, typer.Argument(help="Service name")],
    format: Annotated[Format, typer.Option("--format", "-f")] = Format.text,
    wait: WaitOption = 1.0,
    broker: BrokerOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Name, version, metadata, endpoints with their fields and types (for streams, of one
    item, and how they stream), subscriptions, nodes and their addresses; --format json
    prints the registry records (JSON Schema included)."""

    async def go() -> None:
        async with connected(broker, namespace) as kit:
            found = await known_or_fail(kit, service, wait, broker is not None)
            # A second short query gathers the other nodes of a service with several.
            registry = await kit.get_registry()
            await registry.query(None, wait=min(wait, 0.3))
            found = registry.view.describe(service) or found
            if format is not Format.text:
                dump = [_service_dump(info) for info in found]
                print_json(dump) if format is Format.json else print_yaml(dump)
                return
            for info in found:
                _print_service(info, kit.settings)

    run_async(go)


def _print_service(info: ServiceInfo, settings: Settings) -> None:
    """go-micro's listing: the service, its endpoints' messages field by field, its nodes."""
    console.print(f"[bold]{escape(info.name)}[/] version {escape(info.version)}")
    if info.kind != "eventkit":
        console.print(f"kind: {escape(info.kind)} (found through the broker's own discovery)")
    if info.metadata:
        console.print("metadata: " + ", ".join(f"{k}={v}" for k, v in info.metadata.items()))
    for endpoint in info.endpoints:
        _print_endpoint(endpoint)
    for topic in sorted(_topics(info)):
        console.print(f"subscribes [green]{escape(topic)}[/]")
    _print_nodes(info, settings)


_ROLES: dict[str | None, tuple[str, str]] = {
    None: ("request", "response"),
    "server": ("request", "items"),
    "client": ("items", "response"),
    "bidi": ("items in", "items out"),
}
"""What an endpoint's two schemas describe: a streaming side, one of its items."""


def _print_endpoint(endpoint: EndpointInfo) -> None:
    kind = f" [magenta]({endpoint.stream} stream)[/]" if endpoint.stream else ""
    console.print(f"\nendpoint [cyan]{escape(endpoint.name)}[/]{kind}")
    if endpoint.subject:
        console.print(f"  subject  {escape(endpoint.subject)}")
    request, response = _ROLES.get(endpoint.stream, _ROLES[None])
    _print_message(request, endpoint.request)
    _print_message(response, endpoint.response)
    if endpoint.metadata:
        console.print(f"  metadata: {escape(json.dumps(endpoint.metadata))}")


def _print_message(role: str, schema: dict[str, Any]) -> None:
    first, *rest = message_lines(schema)
    console.print(f"  {role} {escape(first)}")
    for line in rest:
        console.print(f"  {escape(line)}")


def _print_nodes(info: ServiceInfo, settings: Settings) -> None:
    """Each node's address: the topic its RPC server listens on, on the broker (calls go
    there), and its process: the host name and pid it runs as."""
    for node in info.nodes:
        console.print(f"\nnode [bold]{escape(node.id)}[/]")
        if node.kind != "eventkit":  # reached at its endpoints' subjects, listed above
            console.print(f"  address  each endpoint's subject on {redact(settings.broker)}")
        else:
            started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(node.started))
            console.print(f"  address  {escape(node_address(settings, node))} (its RPC topic)")
            console.print(f"  process  {escape(node.address)} (host/pid)")
            console.print(f"  started  {started}")
        if node.metadata:
            pairs = ", ".join(f"{k}={v}" for k, v in node.metadata.items())
            console.print(f"  metadata {escape(pairs)}")


def node_address(settings: Settings, node: NodeInfo) -> str:
    """Where a node is reached: its own RPC topic on the broker (``topic on URL``)."""
    topic = node_topic(settings.namespace, node.service, node.id)
    return f"{topic} on {redact(settings.broker)}"


@dataclass
class NodeHealth:
    node: NodeInfo
    registry_ms: float | None = None
    rpc_ms: float | None = None
    rpc_status: str = "-"

    @property
    def ok(self) -> bool:
        if self.registry_ms is None:
            return False
        return not self.node.endpoints or self.rpc_ms is not None


def health(
    service: Annotated[str | None, typer.Argument(help="Service name")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds each node has to answer")] = 2.0,
    format: Annotated[Format, typer.Option("--format", "-f")] = Format.text,
    url: Annotated[
        str | None,
        typer.Option(
            help="Read one node's probes instead, e.g. http://127.0.0.1:9464 "
            "(its EVENTKIT_METRICS_PORT): /healthz and /readyz"
        ),
    ] = None,
    broker: BrokerOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Whether every node of a service answers, and how fast; exits 1 when one does not.

    With ``--url``, the readiness one node reports on its probe port (what an orchestrator
    sees): exits 1 when it is not ready (starting, draining, or its broker link down).
    """
    if url is not None:
        probes.check(url, timeout, format)
        return
    if service is None:
        fail("name a service, or a node's probe address with --url", "e.g. eventkit health greeter")

    async def go() -> None:
        async with connected(broker, namespace) as kit:
            known = await known_or_fail(kit, service, min(timeout, 1.0), broker is not None)
            nodes = {n.id: n for info in known for n in info.nodes if n.kind == "eventkit"}
            if not nodes:
                fail(
                    f"{service!r} is a {known[0].kind} service, not run by eventkit: its "
                    "nodes answer no registry query",
                    f"ask NATS itself: nats micro ping {service} (or nats micro stats)",
                )
            with progress(f"probing {len(nodes)} node(s) of {service}"):
                results = await probe(kit, service, nodes, timeout)
            if format is not Format.text:
                dump = [_health_dump(r) for r in results]
                print_json(dump) if format is Format.json else print_yaml(dump)
            else:
                table = Table(
                    "NODE", "PROCESS", "REGISTRY", "RPC", "STATUS", title=f"health of {service}"
                )
                for r in results:
                    table.add_row(
                        r.node.id,
                        r.node.address,
                        _ms(r.registry_ms),
                        r.rpc_status if r.rpc_ms is None else f"{_ms(r.rpc_ms)} ({r.rpc_status})",
                        "[green]ok[/]" if r.ok else "[red]not answering[/]",
                    )
                console.print(table)
            if not all(r.ok for r in results):
                raise typer.Exit(1)

    run_async(go)


def _ms(value: float | None) -> str:
    return "no answer" if value is None else f"{value:.1f} ms"


def _health_dump(r: NodeHealth) -> dict[str, Any]:
    return {
        "node": r.node.id,
        "address": r.node.address,
        "ok": r.ok,
        "registry_ms": r.registry_ms,
        "rpc_ms": r.rpc_ms,
        "rpc_status": r.rpc_status,
    }


async def probe(
    kit: Client, service: str, nodes: dict[str, NodeInfo], timeout: float
) -> list[NodeHealth]:
    """Time every node's answer to a registry query, then ping the RPC servers."""
    results = {nid: NodeHealth(node) for nid, node in nodes.items()}
    codec = DataCodec(NodeInfo)
    all_answered = anyio.Event()
    started = time.perf_counter()

    async def on_registry(message: Message) -> None:
        try:
            attrs, raw, is_json = decode_attributes(message)
            if attrs.get("type") != ANNOUNCE:
                return
            node = (
                codec.from_body(raw, is_json) if isinstance(raw, bytes) else (codec.from_value(raw))
            )
        except ValueError:
            return
        if node.service != service:
            return
        entry = results.setdefault(node.id, NodeHealth(node))
        if entry.registry_ms is None:
            entry.registry_ms = (time.perf_counter() - started) * 1000
        if all(r.registry_ms is not None for r in results.values()):
            all_answered.set()

    subscription = await kit.broker.subscribe(registry_topic(kit.namespace), on_registry)
    try:
        started = time.perf_counter()
        await kit.publish(registry_topic(kit.namespace), RegistryQuery(service=service), type=QUERY)
        with anyio.move_on_after(timeout):
            await all_answered.wait()
    finally:
        await subscription.stop()
    async with anyio.create_task_group() as tg:
        for entry in results.values():
            if entry.node.endpoints:
                tg.start_soon(_rpc_ping, kit, entry, timeout)
            else:
                entry.rpc_status = "no endpoints"
    return sorted(results.values(), key=lambda r: r.node.id)


async def _rpc_ping(kit: Client, entry: NodeHealth, timeout: float) -> None:
    """Send :data:`PING_ENDPOINT` to the node's own topic and time the reply.

    Any reply from the node (the 404 of an unknown endpoint) proves its RPC server serves;
    a no-responders notice (brokers that have them) or silence means it does not.
    """
    me = f"{kit.node_id}-health-{entry.node.id}"[:200]
    inbox = reply_topic(kit.namespace, me)
    got = anyio.Event()
    reply: list[Message] = []

    async def on_reply(message: Message) -> None:
        reply.append(message)
        got.set()

    subscription = await kit.broker.subscribe(f"{inbox}.*", on_reply)
    try:
        started = time.perf_counter()
        await kit.broker.publish(
            Message(
                node_topic(kit.namespace, entry.node.service, entry.node.id),
                b"null",
                {
                    ENDPOINT: PING_ENDPOINT,
                    REPLY_TO: f"{inbox}.ping",
                    CALLER: kit.node_id,
                    DEADLINE: f"{time.time() + timeout:.6f}",
                },
            )
        )
        with anyio.move_on_after(timeout):
            await got.wait()
        elapsed = (time.perf_counter() - started) * 1000
    finally:
        await subscription.stop()
    if not reply:
        entry.rpc_status = "no answer"
    elif reply[0].headers.get(NO_RESPONDERS):
        entry.rpc_status = "not serving RPC"
    else:
        entry.rpc_ms = elapsed
        answered_by = reply[0].headers.get(NODE)
        entry.rpc_status = f"answered {reply[0].headers.get(STATUS, '?')}"
        if answered_by != entry.node.id:
            entry.rpc_status += f" by {answered_by}"
