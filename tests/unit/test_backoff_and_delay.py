"""Stepped backoff and delay values: validated where written, read the same by every broker."""

from __future__ import annotations

from datetime import timedelta

import pytest

from eventkit import DeliveryPolicy, Event, Service
from eventkit.brokers.base import backoff_steps, delay_seconds
from eventkit.brokers.http._gossip import DurableSpec
from eventkit.wire import ConfigError


def test_steps_give_the_nth_delay_then_repeat_the_last() -> None:
    policy = DeliveryPolicy(backoff_steps=(0.1, 1, 5))
    assert [policy.backoff(n) for n in range(1, 6)] == [0.1, 1.0, 5.0, 5.0, 5.0]


def test_without_steps_the_exponential_backoff_stays() -> None:
    policy = DeliveryPolicy(backoff_initial=0.1, backoff_max=0.3)
    assert [policy.backoff(n) for n in range(1, 5)] == [0.1, 0.2, 0.3, 0.3]


def test_steps_override_the_exponential_fields() -> None:
    policy = DeliveryPolicy(backoff_initial=2.0, backoff_max=9.0, backoff_steps=[0.5])
    assert policy.backoff_steps == (0.5,)
    assert policy.backoff(1) == policy.backoff(7) == 0.5


@pytest.mark.parametrize("steps", [[], [-1.0], [0.1, float("nan")], [float("inf")], "1,2"])
def test_bad_steps_are_refused(steps: object) -> None:
    with pytest.raises(ConfigError):
        DeliveryPolicy(backoff_steps=steps)  # type: ignore[arg-type]


def test_zero_is_a_valid_step() -> None:
    assert backoff_steps([0, 0.5]) == (0.0, 0.5)


def test_delay_in_seconds_or_timedelta() -> None:
    assert delay_seconds(1.5) == 1.5
    assert delay_seconds(timedelta(milliseconds=250)) == 0.25
    for bad in (-0.1, float("nan"), float("inf"), timedelta(seconds=-1)):
        with pytest.raises(ConfigError):
            delay_seconds(bad)


def test_the_subscribe_decorator_takes_backoff() -> None:
    svc = Service("shop-backoff")

    @svc.subscribe("shop.orders", durable="billing", backoff=[0.1, 1, 5], max_attempts=4)
    async def on_order(event: Event[dict[str, object]]) -> None: ...

    policy = svc.subscribers[0].policy
    assert policy.backoff_steps == (0.1, 1.0, 5.0)
    assert policy.max_attempts == 4


def test_backoff_without_durable_is_refused() -> None:
    svc = Service("shop-backoff")
    with pytest.raises(ConfigError, match="durable"):

        @svc.subscribe("shop.orders", backoff=[0.1])
        async def on_order(event: Event[dict[str, object]]) -> None: ...


def test_bad_backoff_fails_at_the_decorator() -> None:
    svc = Service("shop-backoff")
    with pytest.raises(ConfigError):
        svc.subscribe("shop.orders", durable="billing", backoff=[])


def test_http_durable_specs_carry_the_steps_through_gossip() -> None:
    spec = DurableSpec("billing", "shop.orders", 4, 0.05, 5.0, stamp=1.0, backoff_steps=(0.2, 2))
    again = DurableSpec.from_json(spec.to_json())
    assert again == spec
    assert [again.backoff(n) for n in (1, 2, 3)] == [0.2, 2, 2]
    plain = DurableSpec("billing", "shop.orders").to_json()
    assert "backoff_steps" not in plain  # what an older peer reads as before
    with pytest.raises(ValueError, match="backoff_steps"):
        DurableSpec.from_json({**plain, "backoff_steps": []})
