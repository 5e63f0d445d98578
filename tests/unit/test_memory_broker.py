"""memory:// specifics that the conformance suite does not reach: the routing index and its
cache, and workers that park on an empty channel and are woken by the next publish."""

from __future__ import annotations

import gc
import uuid
from collections.abc import AsyncIterator

import anyio
import pytest

from eventkit.brokers.base import REPLY_TO, inline
from eventkit.brokers.memory import MemoryBroker, _matches
from eventkit.wire import InvalidTopic, Message, matches

pytestmark = pytest.mark.anyio


@pytest.fixture
async def broker() -> AsyncIterator[MemoryBroker]:
    async with MemoryBroker(f"memory://unit-{uuid.uuid4().hex[:8]}") as broker:
        yield broker


class Seen:
    """Records the body of each message it handles."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, message: Message) -> None:
        self.bodies.append(message.body)


async def test_a_topic_published_before_anyone_subscribed_reaches_later_subscribers(
    broker: MemoryBroker,
) -> None:
    await broker.publish(Message("shop.orders", b"early"))  # routed (to nobody) and cached
    exact, wildcard, rest = Seen(), Seen(), Seen()
    await broker.subscribe("shop.orders", exact)
    await broker.subscribe("shop.*", wildcard)
    await broker.subscribe("shop.>", rest)
    await broker.publish(Message("shop.orders", b"late"))
    await broker.join()
    assert exact.bodies == wildcard.bodies == rest.bodies == [b"late"]


async def test_a_stopped_subscription_leaves_the_cached_route(broker: MemoryBroker) -> None:
    kept, stopped = Seen(), Seen()
    await broker.subscribe("shop.orders", kept)
    sub = await broker.subscribe("shop.*", stopped)
    await broker.publish(Message("shop.orders", b"1"))
    await broker.join()
    await sub.stop()
    await broker.publish(Message("shop.orders", b"2"))
    await broker.join()
    assert kept.bodies == [b"1", b"2"]
    assert stopped.bodies == [b"1"]


async def test_topics_seen_once_each_reach_a_wildcard_inbox(broker: MemoryBroker) -> None:
    """Like RPC replies: every topic new, matched only by a pattern, none lost."""
    inbox, other = Seen(), Seen()
    await broker.subscribe("app.reply.node1.*", inbox)
    await broker.subscribe("app.reply.node2.*", other)
    for i in range(300):
        await broker.publish(Message(f"app.reply.node1.c{i}", str(i).encode()))
    await broker.join()
    assert inbox.bodies == [str(i).encode() for i in range(300)]
    assert other.bodies == []


async def test_a_bad_topic_is_refused_every_time(broker: MemoryBroker) -> None:
    for _ in range(2):
        with pytest.raises(InvalidTopic):
            await broker.publish(Message("shop..orders", b"x"))


async def test_a_parked_worker_wakes_for_each_message(broker: MemoryBroker) -> None:
    """The worker drains, parks on an empty channel, and each later publish wakes it."""
    seen = Seen()
    await broker.subscribe("shop.orders", seen)
    for i in range(5):
        await broker.publish(Message("shop.orders", str(i).encode()))
        await broker.join()  # the channel is empty again: the worker parks
        assert seen.bodies == [str(k).encode() for k in range(i + 1)]


async def test_a_backlog_is_not_walked_by_the_garbage_collector(broker: MemoryBroker) -> None:
    """Queued messages are kept as untracked fields, so a backlog adds nothing that each
    full collection has to walk; they are all delivered, in order, afterwards."""
    seen = Seen()
    await broker.subscribe("shop.orders", seen)
    gc.collect()
    before = len(gc.get_objects())
    for i in range(1000):  # the memory broker's publish never yields: all of it queues
        await broker.publish(Message("shop.orders", str(i).encode(), {"x-id": str(i)}))
    assert len(gc.get_objects()) - before < 100
    await broker.join()
    assert seen.bodies == [str(i).encode() for i in range(1000)]


async def test_a_small_backlog_is_shared_by_a_queue_group(broker: MemoryBroker) -> None:
    """Members whose handlers never await still take turns, a few messages at a time."""
    members = [Seen() for _ in range(4)]
    for member in members:
        await broker.subscribe("shop.orders", member, queue="workers")
    for i in range(40):
        await broker.publish(Message("shop.orders", str(i).encode()))
    await broker.join()
    assert all(member.bodies for member in members), [len(m.bodies) for m in members]
    taken = sorted(int(body) for member in members for body in member.bodies)
    assert taken == list(range(40))


@pytest.mark.parametrize(
    ("pattern", "topic"),
    [
        ("a.*", "a.b"),
        ("a.*", "a.b.c"),
        ("a.*", "a"),
        ("a.*.c", "a.b.c"),
        ("a.*.c", "a.b.d"),
        ("*.b", "a.b"),
        ("a.>", "a.b"),
        ("a.>", "a.b.c"),
        ("a.>", "a"),
        ("a.>", "b.c"),
        (">", "a"),
        ("*", "a.b"),
        ("*.*.*.*", "ns.reply.node.c1"),
    ],
)
def test_the_routing_index_matches_patterns_as_topics_does(pattern: str, topic: str) -> None:
    assert _matches(tuple(pattern.split(".")), topic.split(".")) is matches(pattern, topic)


async def test_a_no_responders_notice_to_a_bad_topic_does_not_make_it_valid(
    broker: MemoryBroker,
) -> None:
    """The broker's own messages are routed without validation; that must not let the
    topic they went to skip validation when someone publishes to it."""
    await broker.publish(Message("svc.rpc.nobody", b"", {REPLY_TO: "bad..reply"}))
    with pytest.raises(InvalidTopic):
        await broker.publish(Message("bad..reply", b"x"))


async def test_a_durable_message_cut_off_in_one_member_goes_to_another() -> None:
    """A member stopped past its drain timeout puts its message back, and a member that
    sits parked on the empty channel is woken for it (no later publish needed)."""
    url = f"memory://unit-{uuid.uuid4().hex[:8]}"
    started = anyio.Event()

    async def stuck(message: Message) -> None:
        started.set()
        await anyio.sleep_forever()

    seen = Seen()
    async with MemoryBroker(url, drain_timeout=0.05) as a, MemoryBroker(url) as b:
        sub = await a.subscribe("shop.orders", stuck, durable="billing")
        await anyio.wait_all_tasks_blocked()  # a's worker parks first: the message is a's
        await b.subscribe("shop.orders", seen, durable="billing")
        await a.publish(Message("shop.orders", b"m1"))
        with anyio.fail_after(5):
            await started.wait()
        await sub.stop()  # cut off after the drain timeout: m1 was not acked
        await b.join()
        assert seen.bodies == [b"m1"]


async def test_an_inline_subscription_is_called_as_the_message_is_published(
    broker: MemoryBroker,
) -> None:
    """The RPC reply inbox's route: no queue and no worker between publish and the call."""
    seen = Seen()
    sub = await broker.subscribe("inline.replies", inline(seen))
    await broker.publish(Message("inline.replies", b"1"))
    assert seen.bodies == [b"1"]  # before publish returned: no hand-off to a worker
    await sub.stop()
    await broker.publish(Message("inline.replies", b"2"))
    assert seen.bodies == [b"1"]
    group = await broker.subscribe("inline.replies", inline(seen), queue="g")
    await broker.publish(Message("inline.replies", b"3"))  # a group keeps its workers
    assert seen.bodies == [b"1"]
    await broker.join()
    assert seen.bodies == [b"1", b"3"]
    await group.stop()
