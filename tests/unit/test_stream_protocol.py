"""Streams' flow control, numbering and liveness, as the pure state both ends share."""

from __future__ import annotations

import json

from eventkit.rpc._stream_protocol import (
    SILENT_BEATS,
    Inbound,
    Liveness,
    Outbound,
    encode_batches,
    header_int,
)


def test_nothing_is_produced_beyond_the_credit() -> None:
    out = Outbound(granted=3)
    for item in range(3):
        assert out.room()
        out.push(item)
    assert not out.room()
    assert not out.grant(2)  # an old grant (it arrived late) changes nothing
    assert out.grant(5)
    assert out.room()


def test_items_are_taken_out_numbered_in_batches() -> None:
    out = Outbound(granted=10)
    for item in "abcde":
        out.push(item)
    assert out.take(2) == (1, ["a", "b"])
    assert out.take(10) == (3, ["c", "d", "e"])
    assert out.sent == 5 and not out.pending
    assert out.take(10) == (6, [])


def test_batches_are_reordered_and_repeats_dropped() -> None:
    inbound = Inbound(window=10)
    assert not inbound.add(4, 2, b"[4,5]")  # early: held until 1-3 arrive
    assert inbound.gap()
    assert inbound.add(1, 3, b"[1,2,3]")
    assert list(inbound.batches) == [(3, b"[1,2,3]"), (2, b"[4,5]")]
    assert inbound.received == 5 and not inbound.gap()
    assert not inbound.add(2, 2, b"[2,3]")  # a repeat
    assert not inbound.add(6, 0, b"[]")  # empty
    assert len(inbound.batches) == 2


def test_a_batch_beyond_the_credit_is_refused() -> None:
    inbound = Inbound(window=4)
    assert not inbound.add(1, 5, b"[1,2,3,4,5]")
    assert inbound.refused == 1 and inbound.received == 0


def test_credit_is_granted_once_half_the_window_was_taken() -> None:
    inbound = Inbound(window=8)
    assert inbound.granted == 8
    inbound.taken = 3
    assert inbound.credit_due() is None
    inbound.taken = 4
    assert inbound.credit_due() == 12
    assert inbound.credit_due() is None
    assert inbound.grant_at == 8  # the next grant is due once 8 were taken
    inbound.taken = 8
    assert inbound.credit_due() == 16
    one = Inbound(window=1)
    one.taken = 1
    assert one.credit_due() == 2


def test_the_end_waits_for_items_still_on_the_way() -> None:
    inbound = Inbound(window=10)
    inbound.finish(3)
    assert not inbound.complete and inbound.gap()
    inbound.add(1, 3, b"[1,2,3]")
    assert inbound.complete and not inbound.gap()


def test_a_heartbeat_that_says_more_was_sent_shows_a_gap() -> None:
    inbound = Inbound(window=10)
    inbound.add(1, 2, b"[1,2]")
    inbound.sender_at(2)
    assert not inbound.gap()
    inbound.sender_at(4)
    assert inbound.gap()
    inbound.sender_at(3)  # older news changes nothing
    assert inbound.peer_sent == 4


def test_liveness_heartbeats_and_silence() -> None:
    live = Liveness(interval=1.0, now=100.0)
    assert not live.beat_due(100.4)
    assert live.beat_due(100.5)
    assert not live.silent(100.0 + SILENT_BEATS)
    assert live.silent(100.01 + SILENT_BEATS)
    live.last_heard = 103.0
    assert not live.silent(105.0)
    assert live.bound == (SILENT_BEATS + 0.5) * 1.0


def test_missing_items_are_lost_only_after_three_beats() -> None:
    live = Liveness(interval=1.0, now=0.0)
    inbound = Inbound(window=10)
    assert not live.lost(inbound, 0.0)
    inbound.sender_at(2)
    assert not live.lost(inbound, 1.0)  # the gap starts now
    assert not live.lost(inbound, 1.0 + SILENT_BEATS)
    assert live.lost(inbound, 1.01 + SILENT_BEATS)
    inbound.add(1, 2, b"[1,2]")
    assert not live.lost(inbound, 10.0)
    assert live.gap_since is None


def test_batches_are_split_by_size_but_never_below_one_item() -> None:
    items = [{"text": "x" * 100, "n": i} for i in range(40)]
    whole = encode_batches(items, 1 << 20)
    assert [count for count, _ in whole] == [40]
    split = encode_batches(items, 1000)
    assert sum(count for count, _ in split) == 40
    assert all(len(body) <= 1000 for _, body in split)
    assert [x for _, body in split for x in json.loads(body)] == items
    (single,) = encode_batches([{"big": "y" * 5000}], 1000)
    assert single[0] == 1 and len(single[1]) > 1000


def test_header_numbers() -> None:
    assert header_int({"a": "12"}, "a") == 12
    assert header_int({"a": "x"}, "a") is None
    assert header_int({}, "a") is None
