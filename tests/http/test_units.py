"""Pure parts of the HTTP broker: wire headers, settings, membership; no sockets."""

from __future__ import annotations

import pytest

from eventkit.brokers.http._config import parse_settings
from eventkit.brokers.http._gossip import DurableSpec, Entry, Membership, NodeRecord
from eventkit.brokers.http._wire import decode_headers, encode_headers, foreign_messages
from eventkit.wire import ConfigError, InvalidEvent, InvalidTopic, Message


def test_headers_round_trip_through_http_names_and_values() -> None:
    headers = {
        "ce-id": "1",
        "ce-source": "/a b",
        "ce-subject": "grüße 100%",
        "content-type": 'application/json; charset="utf-8"',
        "eventkit-deadletter-reason": "ValueError: boom\r\nsecond line",
        "x-spaces": " a  b ",
        "host": "not the HTTP host",
        "content-length": "12",
        "weird name": "v",
        "eventkit-http-to": "a user's header that looks like ours",
        "traceparent": "00-abc-def-01",
    }
    wire = encode_headers(Message("t", b"", headers))
    assert all(v.isascii() and "\n" not in v for v in wire.values())
    assert wire["ce-source"] == "/a%20b"  # as the CloudEvents HTTP binding asks
    assert wire["content-type"] == headers["content-type"]
    # What an HTTP stack adds on the way is not part of the message.
    on_arrival = {**wire, "User-Agent": "x", "Host": "127.0.0.1:1", "Content-Length": "0"}
    message, transport = decode_headers(on_arrival)
    assert message == headers
    assert transport == {}


def test_foreign_headers_keep_cloudevents_and_trace_context_only() -> None:
    message, transport = decode_headers(
        {"CE-ID": "1", "ce-source": "%2Fx", "X-Custom": "y", "traceparent": "t", "Accept": "*"}
    )
    assert message == {"ce-id": "1", "ce-source": "/x", "traceparent": "t"}
    assert transport == {}


def test_foreign_messages_accept_binary_structured_and_batches() -> None:
    binary = {"ce-id": "1", "ce-source": "/s", "ce-type": "t", "ce-specversion": "1.0"}
    assert len(foreign_messages("a", b"{}", binary)) == 1
    ct = {"content-type": "application/cloudevents+json"}
    event = b'{"id":"1","source":"/s","type":"t","specversion":"1.0","data":{"n":1}}'
    assert foreign_messages("a", event, ct)[0].body == event
    batch = {"content-type": "application/cloudevents-batch+json"}
    assert len(foreign_messages("a", b"[" + event + b"," + event + b"]", batch)) == 2
    with pytest.raises(InvalidEvent, match="ce-id"):
        foreign_messages("a", b"{}", {"ce-source": "/s"})
    with pytest.raises(InvalidEvent):
        foreign_messages("a", b'{"id": "1"}', ct)


def test_settings_from_url_and_options() -> None:
    s = parse_settings(
        "http://127.0.0.1:8901?seeds=127.0.0.1:8902,h:8903&token=s3cr3t&max_payload=2048"
        "&sink=shop.orders.>=http://127.0.0.1:9000/hook&gossip_interval=0.5",
        {"dead_after": 3},
    )
    assert (s.host, s.port, s.token, s.max_payload) == ("127.0.0.1", 8901, "s3cr3t", 2048)
    assert s.seeds == ("127.0.0.1:8902", "h:8903")
    assert s.sinks == (("shop.orders.>", "http://127.0.0.1:9000/hook"),)
    assert (s.gossip_interval, s.dead_after) == (0.5, 3.0)
    assert parse_settings("http://", {}).host == "127.0.0.1"  # loopback unless told
    assert "s3cr3t" not in s.display
    options = {"sinks": [("a.>", "http://x/hook")], "seeds": ["127.0.0.1:1"]}
    assert parse_settings("http://127.0.0.1:0", options).sinks == (("a.>", "http://x/hook"),)


@pytest.mark.parametrize(
    ("url", "options"),
    [
        ("nats://127.0.0.1:1", {}),
        ("http://127.0.0.1:0?seeds=nohost", {}),
        ("http://127.0.0.1:0?bogus=1", {}),
        ("http://127.0.0.1:0", {"bogus": 1}),
        ("http://127.0.0.1:0", {"gossip_interval": 1, "dead_after": 1}),
        ("http://127.0.0.1:0", {"max_payload": 0}),
        ("http://127.0.0.1:0?sink=a.b", {}),
        ("http://127.0.0.1:0", {"sinks": [("a.b", "ftp://x")]}),
        ("https://127.0.0.1:0", {}),
    ],
)
def test_bad_settings_are_config_errors(url: str, options: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        parse_settings(url, options)


def test_bad_sink_pattern_is_invalid_topic() -> None:
    with pytest.raises(InvalidTopic):
        parse_settings("http://127.0.0.1:0", {"sinks": [("a..b", "http://x/")]})


def _record(node_id: str, addr: str, seq: int, *entries: Entry, started: float = 1.0) -> NodeRecord:
    return NodeRecord(node_id, addr, started, seq, "alive", entries)


def test_membership_keeps_the_newest_record_and_drops_silent_nodes() -> None:
    view = Membership(_record("me", "h:1", 0))
    plain = Entry(1, "a.>")
    assert view.merge([_record("b", "h:2", 1, plain)], [], now=0.0)
    assert view.route("a.x").plain == {"b": [1]}
    assert not view.merge([_record("b", "h:2", 1)], [], now=0.0)  # not newer: ignored
    assert view.route("a.x").plain == {"b": [1]}
    view.merge([_record("b", "h:2", 5, plain)], [], now=1.0)  # a heartbeat
    assert view.expire(2.0, now=2.5) == []
    assert [r.id for r in view.expire(2.0, now=3.5)] == ["b"]
    assert view.route("a.x").plain == {}
    assert not view.merge([_record("b", "h:2", 5, plain)], [], now=4.0)  # tombstone
    assert view.merge([_record("b", "h:2", 6, plain)], [], now=4.0)  # alive after all


def test_membership_leave_restart_and_unreachable() -> None:
    view = Membership(_record("me", "h:1", 0))
    group = Entry(3, "a.b", queue="g")
    view.merge([_record("b", "h:2", 1, group), _record("c", "h:3", 1, group)], [])
    assert view.route("a.b").groups == {("a.b", "g"): [("b", 3), ("c", 3)]}
    view.mark_unreachable("c")
    assert view.route("a.b").groups == {("a.b", "g"): [("b", 3)]}
    view.merge([_record("c", "h:3", 2, group)], [])  # heard from again
    assert len(view.route("a.b").groups[("a.b", "g")]) == 2
    view.merge([NodeRecord("b", "h:2", 1.0, 2, "left")], [])
    assert [p.id for p in view.peers()] == ["c"]
    view.merge([_record("c2", "h:3", 1, started=2.0)], [])  # c restarted on its address
    assert [p.id for p in view.peers()] == ["c2"]
    view.merge([_record("c", "h:3", 9, group)], [])  # the old incarnation cannot return
    assert [p.id for p in view.peers()] == ["c2"]


def test_durable_specs_outlive_subscribers_and_newest_wins() -> None:
    view = Membership(_record("me", "h:1", 0))
    view.merge([], [DurableSpec("d", "a.>", max_attempts=3, stamp=1.0)])
    view.merge([], [DurableSpec("d", "a.>", max_attempts=7, stamp=0.5)])
    assert view.durables["d"].max_attempts == 3
    assert view.route("a.x").durables == ["d"]
    assert view.durable_members("d") == []
    view.merge([_record("b", "h:2", 1, Entry(4, "a.>", durable="d", max_in_flight=2))], [])
    assert view.durable_members("d") == [("b", Entry(4, "a.>", durable="d", max_in_flight=2))]
    assert DurableSpec("d", "a", backoff_initial=0.1, backoff_max=0.3).backoff(3) == 0.3
