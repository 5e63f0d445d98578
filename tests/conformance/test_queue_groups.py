"""Queue groups: competing consumers share the work, each message to one member."""

from __future__ import annotations

from collections import Counter
from functools import partial

import pytest

from eventkit.brokers import Broker
from eventkit.wire import UnsupportedFeature

from .target import Target
from .util import Recorder, delivered_at_least, name, numbered, settle, wait_until

pytestmark = pytest.mark.anyio


async def _unsupported(broker: Broker, topic: str) -> bool:
    """Where queue groups are not supported, asking for one must say so."""
    if broker.capabilities.queue_groups:
        return False
    with pytest.raises(UnsupportedFeature):
        await broker.subscribe(f"{topic}.work", Recorder(), queue=name(topic, "q"))
    return True


async def test_members_share_the_work(broker: Broker, target: Target, topic: str) -> None:
    if await _unsupported(broker, topic):
        return
    group = name(topic, "workers")
    count = 400
    async with target.new_broker() as other:
        # The handlers never await: a broker must not let one member take the whole backlog.
        members = [Recorder(f"member{i}") for i in range(4)]
        for i, member in enumerate(members):
            await (broker if i % 2 else other).subscribe(f"{topic}.work", member, queue=group)
        await settle(broker, broker, other)
        for message in numbered(f"{topic}.work", count):
            await broker.publish(message)

        def total() -> int:
            return sum(len(m.messages) for m in members)

        await wait_until(lambda: total() >= count, what=f"{count} deliveries to the group")
        ids = Counter(i for m in members for i in m.ids())
        assert set(ids) == {str(i) for i in range(count)}
        assert [i for i, n in ids.items() if n > 1] == []  # exactly one member each
        busy = [m.label for m in members if m.messages]
        if target.fair_queue_groups:
            assert len(busy) == 4, [len(m.messages) for m in members]
        else:
            assert len(busy) >= 2, [len(m.messages) for m in members]


async def test_two_groups_each_get_every_message(
    broker: Broker, target: Target, topic: str
) -> None:
    if await _unsupported(broker, topic):
        return
    async with target.new_broker() as other:
        groups: dict[str, list[Recorder]] = {"billing": [], "shipping": []}
        for group, members in groups.items():
            for via in (broker, other):
                member = Recorder(f"{group}@{len(members)}")
                members.append(member)
                await via.subscribe(f"{topic}.orders", member, queue=name(topic, group))
        await settle(broker, broker, other)
        for message in numbered(f"{topic}.orders", 100):
            await broker.publish(message)
        for group, members in groups.items():
            await wait_until(
                partial(delivered_at_least, members, 100), what=f"100 deliveries to group {group}"
            )
            ids = Counter(i for m in members for i in m.ids())
            assert sorted(ids, key=int) == [str(i) for i in range(100)], group
            assert max(ids.values()) == 1, group


async def test_group_and_plain_subscriber(broker: Broker, target: Target, topic: str) -> None:
    if await _unsupported(broker, topic):
        return
    async with target.new_broker() as other:
        plain = Recorder("plain")
        members = [Recorder("m0"), Recorder("m1")]
        await broker.subscribe(f"{topic}.orders", members[0], queue=name(topic, "g"))
        await other.subscribe(f"{topic}.orders", members[1], queue=name(topic, "g"))
        await other.subscribe(f"{topic}.orders", plain)
        await settle(broker, broker, other)
        for message in numbered(f"{topic}.orders", 100):
            await broker.publish(message)
        ids = [str(i) for i in range(100)]
        await plain.wait_ids(ids)
        await wait_until(
            lambda: sum(len(m.messages) for m in members) >= 100, what="100 group deliveries"
        )
        group_ids = Counter(i for m in members for i in m.ids())
        assert sorted(group_ids, key=int) == ids
        assert max(group_ids.values()) == 1
        assert plain.duplicates() == []


async def test_same_group_name_on_other_topics_is_another_group(broker: Broker, topic: str) -> None:
    if await _unsupported(broker, topic):
        return
    group = name(topic, "shared")
    a, b = Recorder("a"), Recorder("b")
    await broker.subscribe(f"{topic}.a", a, queue=group)
    await broker.subscribe(f"{topic}.b", b, queue=group)
    await settle(broker, broker)
    for message in [*numbered(f"{topic}.a", 10), *numbered(f"{topic}.b", 10, start=10)]:
        await broker.publish(message)
    await a.wait_ids(str(i) for i in range(10))
    await b.wait_ids(str(i) for i in range(10, 20))
    assert {m.topic for m in a.messages} == {f"{topic}.a"}
    assert {m.topic for m in b.messages} == {f"{topic}.b"}
