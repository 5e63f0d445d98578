"""Stepped backoff and delay values: validated where written, read the same by every broker."""

from __future__ import annotations

from datetime import timedelta

import pytest

from eventkit import DeliveryPolicy, Event, Service
from eventkit.brokers.base import backoff_steps, delay_seconds
from eventkit.brokers.http._gossip import DurableSpec
from eventkit.brokers.nats._delay import schedule_at, scheduler_version
from eventkit.brokers.rabbitmq._delay import delay_ms
from eventkit.wire import ConfigError, UnsupportedFeature


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


@pytest.mark.parametrize(
    "steps", [[], [-1.0], [0.1, float("nan")], [float("inf")], "1,2", [0.1] * 101]
)
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


def test_nats_uses_the_scheduler_from_2_12() -> None:
    assert scheduler_version("2.12.0") and scheduler_version("2.15.1")
    assert not scheduler_version("2.9.10") and not scheduler_version("2.11.9")
    assert not scheduler_version("") and not scheduler_version("dev")


def test_nats_schedules_round_up_to_the_second() -> None:
    assert schedule_at(1_700_000_000.0) == "@at 2023-11-14T22:13:20Z"
    assert schedule_at(1_700_000_000.001) == "@at 2023-11-14T22:13:21Z"  # never early


def test_rabbitmq_delays_round_up_to_two_significant_digits() -> None:
    assert [delay_ms(s) for s in (0.0, 0.07, 0.099, 1.234, 1.3, 12.345)] == [
        0,
        70,
        99,
        1300,
        1300,
        13000,
    ]
    assert delay_ms(40 * 86400) >= 40 * 86400 * 1000


def test_rabbitmq_refuses_a_delay_past_what_a_ttl_holds() -> None:
    with pytest.raises(UnsupportedFeature, match="days"):
        delay_ms(60 * 86400)
