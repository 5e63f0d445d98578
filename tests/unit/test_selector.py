"""The selector: strategies, exclusion and blacklist, as a pure function of its inputs."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from eventkit.discovery import NodeInfo, Selector
from eventkit.wire import ConfigError


def nodes(*ids: str) -> list[NodeInfo]:
    return [
        NodeInfo(id=i, service="svc", version="1", address="h/1", ttl=30.0, started=0.0)
        for i in ids
    ]


def pick(selector: Selector, pool: list[NodeInfo], now: float = 0.0, **kw: object) -> str:
    chosen = selector.select("svc", pool, now=now, **kw)  # type: ignore[arg-type]
    assert chosen is not None
    return chosen.id


def test_round_robin_alternates_across_calls_and_ignores_list_order() -> None:
    selector = Selector("round_robin")
    pool = nodes("b", "a", "c")
    seen = [pick(selector, pool if i % 2 else list(reversed(pool))) for i in range(6)]
    assert seen == ["a", "b", "c", "a", "b", "c"]


def test_round_robin_counts_per_service() -> None:
    selector = Selector()
    pool = nodes("a", "b")
    assert selector.select("one", pool, now=0).id == "a"  # type: ignore[union-attr]
    assert selector.select("two", pool, now=0).id == "a"  # type: ignore[union-attr]
    assert selector.select("one", pool, now=0).id == "b"  # type: ignore[union-attr]


def test_random_covers_every_node() -> None:
    selector = Selector("random", rng=random.Random(7))
    pool = nodes("a", "b", "c", "d")
    counts = Counter(pick(selector, pool) for _ in range(400))
    assert set(counts) == {"a", "b", "c", "d"}
    assert min(counts.values()) > 50  # roughly uniform: 100 expected each


def test_least_inflight_avoids_the_busy_node() -> None:
    selector = Selector("least_inflight", rng=random.Random(3))
    pool = nodes("a", "b", "c")
    for _ in range(20):
        selector.acquire("b")
    assert selector.in_flight("b") == 20
    counts = Counter(pick(selector, pool) for _ in range(300))
    # "b" only wins when it is drawn twice, which sampling without replacement never does.
    assert counts["b"] == 0
    assert counts["a"] > 100 and counts["c"] > 100


def test_least_inflight_balances_as_calls_start_and_end() -> None:
    selector = Selector("least_inflight", rng=random.Random(11))
    pool = nodes("a", "b", "c", "d")
    for _ in range(400):
        selector.acquire(pick(selector, pool))
    loads = [selector.in_flight(n.id) for n in pool]
    assert sum(loads) == 400
    assert max(loads) - min(loads) <= 10  # random would typically spread ~+-20 here
    for n in pool:
        for _ in range(selector.in_flight(n.id)):
            selector.release(n.id)
    assert [selector.in_flight(n.id) for n in pool] == [0, 0, 0, 0]
    selector.release("a")  # an extra release never goes negative
    assert selector.in_flight("a") == 0


def test_exclude_skips_nodes_and_none_when_all_excluded() -> None:
    selector = Selector()
    pool = nodes("a", "b", "c")
    assert {pick(selector, pool, exclude={"a", "c"}) for _ in range(3)} == {"b"}
    assert selector.select("svc", pool, exclude={"a", "b", "c"}, now=0) is None
    assert selector.select("svc", [], now=0) is None


def test_blacklist_skips_a_failed_node_until_it_expires() -> None:
    selector = Selector("round_robin", blacklist_for=5.0)
    pool = nodes("a", "b")
    selector.mark_failed("a", now=100.0)
    assert {pick(selector, pool, now=101.0) for _ in range(4)} == {"b"}
    assert selector.blacklisted("a", 104.9)
    assert {pick(selector, pool, now=105.0) for _ in range(4)} == {"a", "b"}
    assert not selector.blacklisted("a", 105.0)


def test_every_node_blacklisted_still_gives_one() -> None:
    selector = Selector("random", rng=random.Random(1))
    pool = nodes("a", "b")
    selector.mark_failed("a", now=0.0)
    selector.mark_failed("b", now=0.0)
    assert {pick(selector, pool, now=1.0) for _ in range(50)} == {"a", "b"}
    # ... but an excluded node is never chosen, blacklisted or not.
    assert {pick(selector, pool, now=1.0, exclude={"a"}) for _ in range(5)} == {"b"}


def test_bad_strategy_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="round_robin"):
        Selector("fastest")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="blacklist_for"):
        Selector(blacklist_for=-1)
