"""Request notices: a message with a reply topic that reaches no subscriber.

Where ``capabilities.no_responders`` holds, the broker tells the reply topic at once (RPC
fails over without waiting for a timeout). Where it does not, nothing arrives: callers rely
on timeouts, and the suite checks that the broker does not claim otherwise.
"""

from __future__ import annotations

import pytest

from eventkit.brokers import Broker
from eventkit.brokers.base import NO_RESPONDERS, REPLY_TO
from eventkit.wire import Message

from .util import Recorder, settle

pytestmark = pytest.mark.anyio


async def test_a_request_to_nobody_is_answered_by_a_notice(broker: Broker, topic: str) -> None:
    replies = Recorder("replies")
    await broker.subscribe(f"{topic}.reply.*", replies)
    await settle(broker, broker)
    await broker.publish(Message(f"{topic}.nobody", b"{}", {REPLY_TO: f"{topic}.reply.c1"}))
    if broker.capabilities.no_responders:
        await replies.wait_for(1)
        (notice,) = replies.messages
        assert notice.topic == f"{topic}.reply.c1"
        assert notice.headers.get(NO_RESPONDERS) == "1"
        assert notice.body == b""
    else:
        await _nothing_before_a_marker(broker, replies, f"{topic}.reply.c1")


async def test_a_request_that_reaches_a_subscriber_gets_no_notice(
    broker: Broker, topic: str
) -> None:
    replies, requests = Recorder("replies"), Recorder("requests")
    await broker.subscribe(f"{topic}.reply.*", replies)
    await broker.subscribe(f"{topic}.svc", requests)
    await settle(broker, broker)
    await broker.publish(Message(f"{topic}.svc", b"{}", {REPLY_TO: f"{topic}.reply.c2"}))
    await requests.wait_for(1)
    await _nothing_before_a_marker(broker, replies, f"{topic}.reply.c2")
    assert requests.messages[0].headers[REPLY_TO] == f"{topic}.reply.c2"


async def _nothing_before_a_marker(broker: Broker, replies: Recorder, reply_topic: str) -> None:
    """No notice reached ``replies``: a notice is sent as the request is published, so one
    would arrive before a marker published to the reply topic afterwards."""
    await broker.publish(Message(reply_topic, b"", {"x-id": "marker"}))
    await replies.wait_ids(["marker"])
    assert [m.headers.get("x-id") for m in replies.messages] == ["marker"], replies.messages
