"""The Service on memory:// through the real code paths (eventkit.testing)."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import pytest
from pydantic import BaseModel

import eventkit
import eventkit.testing
from eventkit import (
    ConfigError,
    Context,
    DeadLetter,
    DriverMissing,
    Event,
    Invocation,
    Next,
    Service,
)
from eventkit.brokers.memory import MemoryBroker
from eventkit.wire import Message, dead_letter_topic

pytestmark = pytest.mark.anyio


class OrderPlaced(BaseModel):
    order_id: str
    total_cents: int


async def test_publish_and_typed_delivery_with_context() -> None:
    svc = Service("orders", version="1.0.0", metadata={"team": "core"})
    seen: list[tuple[Event[OrderPlaced], Context]] = []

    @svc.subscribe("shop.orders.*")
    async def on_order(event: Event[OrderPlaced], ctx: Context) -> None:
        seen.append((event, ctx))

    async with eventkit.testing.run(svc) as kit:
        await kit.publish(
            "shop.orders.placed",
            OrderPlaced(order_id="o-1", total_cents=999),
            type="shop.order.placed",
            subject="o-1",
            metadata={"user": "ann"},
        )
        await kit.join()
    ((event, ctx),) = seen
    assert event.data == OrderPlaced(order_id="o-1", total_cents=999)
    assert event.type == "shop.order.placed" and event.subject == "o-1"
    assert event.source == kit.source and event.specversion == "1.0"
    assert ctx.metadata == {"user": "ann"} and ctx.node_id == svc.node_id
    assert ctx.topic == "shop.orders.placed" and ctx.service == "orders"


async def test_service_publishes_with_its_source_and_metadata_propagates() -> None:
    svc = Service("orders")

    @svc.subscribe("shop.orders.placed")
    async def relay(order: OrderPlaced) -> None:
        await svc.publish("shop.audit", {"order": order.order_id}, type="shop.audited")

    async with eventkit.testing.run(svc) as kit:
        audit = await kit.record("shop.audit")
        await kit.publish(
            "shop.orders.placed",
            OrderPlaced(order_id="o-2", total_cents=1),
            metadata={"tenant": "acme"},
        )
        await kit.join()
    (event,) = audit.events
    assert event.source == f"/services/orders/{svc.node_id}"
    assert event.data == {"order": "o-2"}
    assert event.type == "shop.audited"


async def test_invalid_events_are_counted_and_the_service_keeps_running(
    caplog: pytest.LogCaptureFixture,
) -> None:
    svc = Service("orders")
    good: list[OrderPlaced] = []

    @svc.subscribe("shop.orders.placed")
    async def on_order(order: OrderPlaced) -> None:
        good.append(order)

    async with eventkit.testing.run(svc) as kit:
        await kit.publish("shop.orders.placed", {"order_id": 1})
        await kit.broker.publish(Message("shop.orders.placed", b"garbage", {}))
        await kit.publish("shop.orders.placed", OrderPlaced(order_id="ok", total_cents=1))
        await kit.join()
    assert [o.order_id for o in good] == ["ok"]
    assert svc.stats.invalid == 2 and svc.stats.handled == 1
    assert "not a CloudEvent" in caplog.text and "total_cents" in caplog.text


async def test_handler_exception_is_logged_and_never_kills_the_service(
    caplog: pytest.LogCaptureFixture,
) -> None:
    svc = Service("orders")
    calls: list[str] = []

    @svc.subscribe("shop.orders.placed")
    async def flaky(order: OrderPlaced) -> None:
        calls.append(order.order_id)
        if order.order_id == "bad":
            raise RuntimeError("kaput")

    with caplog.at_level(logging.ERROR):
        async with eventkit.testing.run(svc) as kit:
            for oid in ("a", "bad", "b"):
                await kit.publish("shop.orders.placed", OrderPlaced(order_id=oid, total_cents=1))
            await kit.join()
    assert calls == ["a", "bad", "b"]
    assert svc.stats.failed == 1
    assert "RuntimeError: kaput" in caplog.text  # the traceback is in the log


async def test_durable_invalid_event_is_dead_lettered_with_the_reason() -> None:
    svc = Service("billing")

    @svc.subscribe("shop.orders.placed", durable="billing", max_attempts=3)
    async def bill(order: OrderPlaced) -> None: ...

    async with eventkit.testing.run(svc) as kit:
        dead: list[Message] = []

        async def on_dead(m: Message) -> None:
            dead.append(m)

        await kit.broker.subscribe(dead_letter_topic("billing"), on_dead)
        await kit.publish("shop.orders.placed", {"order_id": "x"})
        await kit.join()
    (msg,) = dead
    assert "total_cents" in msg.headers["eventkit-deadletter-reason"]
    assert msg.headers["eventkit-deadletter-attempts"] == "1"


async def test_durable_failure_is_retried_then_dead_lettered() -> None:
    svc = Service("billing")
    attempts: list[int] = []

    @svc.subscribe("shop.orders.placed", durable="billing2", max_attempts=3)
    async def bill(order: OrderPlaced, ctx: Context) -> None:
        attempts.append(ctx.attempt)
        raise RuntimeError("card declined")

    async with eventkit.testing.run(svc) as kit:
        dead = await kit.record(dead_letter_topic("billing2"), OrderPlaced)
        await kit.publish("shop.orders.placed", OrderPlaced(order_id="o", total_cents=1))
        await kit.join()
    assert attempts == [1, 2, 3]
    assert dead.data == [OrderPlaced(order_id="o", total_cents=1)]


async def test_handler_raising_dead_letter_skips_retries() -> None:
    svc = Service("billing")
    attempts: list[int] = []

    @svc.subscribe("shop.orders.placed", durable="billing3")
    async def bill(order: OrderPlaced, ctx: Context) -> None:
        attempts.append(ctx.attempt)
        raise DeadLetter("unknown customer")

    async with eventkit.testing.run(svc) as kit:
        dead = await kit.record(dead_letter_topic("billing3"))
        await kit.publish("shop.orders.placed", OrderPlaced(order_id="o", total_cents=1))
        await kit.join()
    assert attempts == [1]
    assert dead.events[0].data == {"order_id": "o", "total_cents": 1}


async def test_subscriber_middleware_sees_the_decoded_data_as_request() -> None:
    svc = Service("orders")
    seen: dict[str, tuple[str, Any]] = {}  # topic pattern -> (kind, request)

    @svc.use
    async def spy(inv: Invocation, call_next: Next) -> Any:
        seen[inv.name] = (inv.kind, inv.request)
        return await call_next(inv)

    @svc.subscribe("shop.orders.placed")
    async def on_order(order: OrderPlaced, ctx: Context) -> None: ...

    @svc.subscribe("shop.orders.paid")
    async def on_paid(event: Event[OrderPlaced]) -> None: ...

    async with eventkit.testing.run(svc) as kit:
        await kit.publish("shop.orders.placed", OrderPlaced(order_id="o-1", total_cents=5))
        await kit.publish("shop.orders.paid", OrderPlaced(order_id="o-2", total_cents=7))
        await kit.join()
    assert seen["shop.orders.placed"] == ("subscriber", OrderPlaced(order_id="o-1", total_cents=5))
    kind, event = seen["shop.orders.paid"]
    assert kind == "subscriber"
    assert isinstance(event, Event) and event.data == OrderPlaced(order_id="o-2", total_cents=7)


async def test_subscriber_middleware_that_replaces_the_request_changes_what_the_handler_gets() -> (
    None
):
    svc = Service("orders")
    got: list[tuple[OrderPlaced, str]] = []

    @svc.use
    async def waive(inv: Invocation, call_next: Next) -> Any:
        inv.request = OrderPlaced(order_id="waived", total_cents=0)
        return await call_next(inv)

    @svc.subscribe("shop.orders.placed")
    async def on_order(order: OrderPlaced, ctx: Context) -> None:
        got.append((order, ctx.topic))

    async with eventkit.testing.run(svc) as kit:
        await kit.publish("shop.orders.placed", OrderPlaced(order_id="o-1", total_cents=5))
        await kit.join()
    assert got == [(OrderPlaced(order_id="waived", total_cents=0), "shop.orders.placed")]


async def test_lifecycle_hooks_run_in_order() -> None:
    svc = Service("hooks")
    order: list[str] = []

    @svc.before_start
    def b1() -> None:
        order.append("before_start")

    @svc.after_start
    async def a1() -> None:
        order.append("after_start")

    @svc.before_stop
    async def b2() -> None:
        order.append("before_stop")

    @svc.after_stop
    def a2() -> None:
        order.append("after_stop")

    async with svc:
        assert svc.running
    assert not svc.running
    assert order == ["before_start", "after_start", "before_stop", "after_stop"]


async def test_stop_drains_in_flight_handlers() -> None:
    url = "memory://drain-test"
    svc = Service("slow", broker=url, drain_timeout=5)
    started, stopping, finished = anyio.Event(), anyio.Event(), []

    @svc.subscribe("jobs.run")
    async def slow(data: Any) -> None:
        started.set()
        await stopping.wait()  # still in flight when the stop begins
        finished.append(data)

    svc.before_stop(stopping.set)

    await svc.start(broker=url)
    async with eventkit.connect(url) as kit:
        await kit.publish("jobs.run", 1)
        await started.wait()
        await svc.stop()
    assert finished == [1]


async def test_start_and_stop_are_idempotent_and_context_works() -> None:
    svc = Service("idem")
    await svc.start(broker=MemoryBroker("memory://idem"))
    await svc.start()
    await svc.stop()
    await svc.stop()


async def test_unknown_scheme_fails_at_start() -> None:
    svc = Service("s", broker="kafka://localhost:9092")
    with pytest.raises(ConfigError, match="unknown broker URL scheme 'kafka'"):
        await svc.start()


def test_missing_driver_names_the_pip_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins
    import sys

    real_import = builtins.__import__

    def no_aio_pika(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "aio_pika" or name.startswith("aio_pika."):
            raise ImportError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_aio_pika)
    for name in [m for m in sys.modules if m.startswith("eventkit.brokers.rabbitmq")]:
        monkeypatch.delitem(sys.modules, name)
    with pytest.raises(DriverMissing, match=r'pip install "eventkit-micro\[rabbitmq\]"'):
        eventkit.from_url("amqp://guest:guest@127.0.0.1:5672/")


def test_import_eventkit_imports_no_driver() -> None:
    import subprocess
    import sys

    code = (
        "import sys, eventkit, eventkit.testing; "
        "bad = [m for m in ('nats', 'aio_pika', 'aiormq', 'aiohttp') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
