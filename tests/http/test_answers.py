"""Replies carried back in the response to the request's POST (eventkit.brokers.http._answers)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import anyio
import pytest

import eventkit
from eventkit import Service
from eventkit.brokers.base import NO_RESPONDERS, REPLY_TO, inline
from eventkit.brokers.http import HttpBroker
from eventkit.brokers.http._answers import Answers, read_answer
from eventkit.brokers.http._gossip import Route
from eventkit.rpc import DEADLINE
from eventkit.wire import Message
from tests.conformance.util import Recorder, settle, wait_until

from .conftest import NodeFactory

pytestmark = pytest.mark.anyio


def _spy_posts(node: HttpBroker) -> list[str]:
    """The topics POSTed to ``node`` (its HTTP server calls ``node.receive``)."""
    topics: list[str] = []
    receive = node.receive

    async def recording(topic: str, *args: Any) -> Any:
        topics.append(topic)
        return await receive(topic, *args)

    node.receive = recording  # type: ignore[method-assign]
    return topics


async def _echo_service(broker: HttpBroker, delay: float = 0.0) -> Service:
    svc = Service(f"echo-{uuid.uuid4().hex[:6]}", heartbeat=0.5)

    @svc.endpoint("Echo.Back")
    async def back(req: dict[str, Any]) -> dict[str, Any]:
        await anyio.sleep(delay)
        return req

    await svc.start(broker=broker)
    return svc


async def _call_when_known(kit: eventkit.Client, service: str, **options: Any) -> Any:
    with anyio.fail_after(10):
        while True:
            try:
                return await kit.call(service, "Echo.Back", {"n": 0}, **options)
            except eventkit.ServiceUnavailable:
                await anyio.sleep(0.1)


async def test_a_reply_comes_back_in_the_response_to_its_request(nodes: NodeFactory) -> None:
    server = await nodes()
    caller = await nodes(seeds=server.address)
    svc = await _echo_service(server)
    try:
        async with eventkit.Client(caller) as kit:
            await _call_when_known(kit, svc.name)
            posted = _spy_posts(caller)
            for n in range(5):
                assert await kit.call(svc.name, "Echo.Back", {"n": n}) == {"n": n}
            assert [t for t in posted if ".reply." in t] == []  # no POST of a reply
    finally:
        await svc.stop()


async def test_a_reply_slower_than_the_callers_read_bound_comes_by_post(
    nodes: NodeFactory,
) -> None:
    server = await nodes()
    caller = await nodes(seeds=server.address, request_timeout=1.0)  # reads answers 0.8 s
    svc = await _echo_service(server, delay=1.2)
    try:
        async with eventkit.Client(caller) as kit:
            posted = _spy_posts(caller)
            assert await _call_when_known(kit, svc.name, timeout=5.0) == {"n": 0}
            assert [t for t in posted if ".reply." in t] != []
    finally:
        await svc.stop()


async def test_a_request_taken_by_a_node_that_dies_is_not_reported_unreceived(
    nodes: NodeFactory,
) -> None:
    """The response's headers say "taken" before any handler runs: a body cut short by the
    node's end is no reply, never "nobody received it" (which would make a call fail over
    and run twice)."""
    server = await nodes(drain_timeout=0.2)
    caller = await nodes(seeds=server.address)
    started = anyio.Event()

    async def stuck(message: Message) -> None:
        started.set()
        await anyio.sleep_forever()  # cut off by the node's end (drain_timeout 0.2 s)

    await server.subscribe("answers.stuck", stuck)
    replies = Recorder()
    await caller.subscribe("answers.reply.x", replies)
    await settle(caller, server)
    request = Message(
        "answers.stuck", b"{}", {REPLY_TO: "answers.reply.x", DEADLINE: repr(time.time() + 20)}
    )
    async with anyio.create_task_group() as tg:
        tg.start_soon(caller.publish, request)
        await started.wait()
        assert server._runner is not None
        await server._runner.cleanup()  # the node goes away while the response is open
    # publish() has returned: a notice would have been delivered before this marker.
    await caller.publish(Message("answers.reply.x", b"", {"x-id": "marker"}))
    await replies.wait_ids(["marker"])
    assert all(NO_RESPONDERS not in m.headers for m in replies.messages)


async def test_only_a_reply_that_just_the_requester_subscribes_to_goes_in_the_response() -> None:
    answers = Answers()
    reply = Message("ns.reply.a.1", b'{"x":\n1}', {"eventkit-status": "200", "x-u": "ü\r\n"})
    alone = Route(plain={"node-a": [3]})
    assert not answers.take(reply, alone)  # nobody waits for it

    waiter = answers.expect("ns.reply.a.1", "node-a")
    assert waiter is not None
    assert answers.expect("ns.reply.a.1", "node-a") is None  # one waiter per reply topic
    assert not answers.take(reply, Route(plain={"node-a": [3], "node-b": [1]}))
    assert not answers.take(reply, Route(plain={"node-a": [3]}, sinks=["http://x/"]))
    assert not answers.take(reply, Route(plain={"node-b": [1]}))
    assert answers.take(reply, alone)
    assert not answers.take(reply, alone)  # answered once; a second goes by POST
    ids, got = read_answer(waiter.future.result())  # type: ignore[misc]
    assert ids == [3]
    assert got == reply
    answers.forget("ns.reply.a.1", waiter)
    assert not answers
    assert read_answer(b"") is None


async def test_without_a_deadline_a_request_is_answered_by_post(nodes: NodeFactory) -> None:
    server = await nodes()
    caller = await nodes(seeds=server.address)

    async def answer(message: Message) -> None:
        await server.publish(Message(message.headers[REPLY_TO], b"pong"))

    await server.subscribe("answers.ping", answer)
    replies = Recorder()
    await caller.subscribe("answers.pong", replies)
    await settle(caller, server)
    posted = _spy_posts(caller)
    await caller.publish(Message("answers.ping", b"", {REPLY_TO: "answers.pong", "x-id": "1"}))
    await wait_until(lambda: len(replies.messages) == 1, what="the reply")
    assert "answers.pong" in posted


async def test_an_inline_subscription_is_called_as_the_message_is_taken(
    nodes: NodeFactory,
) -> None:
    """The reply inbox's route on HTTP: no queue, no worker between the POST (or the
    response carrying the reply) and the waiting call."""
    node = await nodes()
    seen: list[bytes] = []

    async def on_reply(message: Message) -> None:
        seen.append(message.body)

    sub = await node.subscribe("answers.inline", inline(on_reply))
    await node.publish(Message("answers.inline", b"1"))
    assert seen == [b"1"]  # handled before publish returned: no hand-off to a task
    await sub.stop()
    await node.publish(Message("answers.inline", b"2"))
    assert seen == [b"1"]
