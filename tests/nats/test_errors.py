"""Bad input and bad conditions give clear eventkit errors and lose nothing."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from eventkit.brokers.nats import NatsBroker
from eventkit.brokers.nats._embedded import EmbeddedNats, free_port
from eventkit.wire import BrokerClosed, ConfigError, ConnectionLost, Message, PayloadTooLarge
from tests.conformance.util import Recorder, settle, wait_until

pytestmark = pytest.mark.anyio


async def test_unreachable_server_says_how_to_start_one() -> None:
    broker = NatsBroker(f"nats://127.0.0.1:{free_port()}", connect_timeout=0.5)
    with pytest.raises(ConnectionLost) as info:
        await broker.connect()
    text = str(info.value)
    assert "nats-server -js" in text
    assert "eventkit up" in text
    await broker.close()  # a broker that never connected closes quietly


async def test_oversized_body_is_refused_before_sending(nats_server: EmbeddedNats) -> None:
    async with NatsBroker(nats_server.url) as broker:
        limit = broker.capabilities.max_payload
        assert limit is not None
        got = Recorder()
        await broker.subscribe("err.big", got)
        await settle(broker, broker)
        with pytest.raises(PayloadTooLarge, match="nothing was sent"):
            await broker.publish(Message("err.big", bytes(limit + 1), {"x-id": "over"}))
        # A body under the limit but with huge headers is refused too (NATS counts both).
        headers = {f"x-h{i}": "v" * 1000 for i in range(10)} | {"x-id": "fat"}
        with pytest.raises(PayloadTooLarge, match="with headers"):
            await broker.publish(Message("err.big", bytes(limit), headers))
        await broker.publish(Message("err.big", bytes(limit), {"x-id": "fits"}))
        await got.wait_ids(["fits"])
        assert got.ids() == ["fits"]


async def test_use_after_close_is_broker_closed(nats_server: EmbeddedNats) -> None:
    broker = NatsBroker(nats_server.url)
    with pytest.raises(BrokerClosed):
        await broker.publish(Message("err.x", b""))
    await broker.connect()
    await broker.close()
    await broker.close()
    with pytest.raises(BrokerClosed):
        await broker.publish(Message("err.x", b""))
    with pytest.raises(BrokerClosed):
        await broker.subscribe("err.x", Recorder())


async def test_durables_need_a_literal_first_token(nats_server: EmbeddedNats) -> None:
    async with NatsBroker(nats_server.url) as broker:
        with pytest.raises(ConfigError, match="literal first token"):
            await broker.subscribe("*.orders", Recorder(), durable="errwild")


async def test_a_durable_name_keeps_its_topic(nats_server: EmbeddedNats) -> None:
    async with NatsBroker(nats_server.url) as broker:
        sub = await broker.subscribe("errkeep.a", Recorder(), durable="errkeep")
        await sub.stop()
        with pytest.raises(ConfigError, match="already subscribes"):
            await broker.subscribe("errkeep.b", Recorder(), durable="errkeep")


@pytest.mark.parametrize(
    ("auth", "good", "bad"),
    [
        (
            "authorization { user: alice, password: s3cret }",
            {"user": "alice", "password": "s3cret"},
            {"user": "alice", "password": "wrong"},
        ),
        ("authorization { token: t0ken }", {"token": "t0ken"}, {"token": "nope"}),
    ],
)
async def test_credentials(auth: str, good: dict[str, str], bad: dict[str, str]) -> None:
    async with EmbeddedNats(extra_config=auth + "\n") as server:
        async with NatsBroker(server.url, **good) as broker:
            got = Recorder()
            await broker.subscribe("auth.x", got)
            await settle(broker, broker)
            await broker.publish(Message("auth.x", b"hi", {"x-id": "1"}))
            await got.wait_ids(["1"])
        userinfo = ":".join(good.values())
        async with NatsBroker(server.url.replace("nats://", f"nats://{userinfo}@")):
            pass
        broker = NatsBroker(server.url, connect_timeout=1.0, **bad)
        with pytest.raises(ConnectionLost, match="credentials"):
            await broker.connect()


async def test_publish_fails_clearly_when_the_outage_outlasts_the_bound(
    own_nats: EmbeddedNats,
) -> None:
    async with NatsBroker(own_nats.url, publish_timeout=0.5, max_reconnect_buffer=4096) as b:
        await b.publish(Message("err.down", b"x"))  # known as a plain (core NATS) topic
        await anyio.to_thread.run_sync(own_nats.stop_node, 0)
        await wait_until(lambda: b._down_since is not None, what="the broker to see the outage")
        # Within the bound, publishes are buffered; past the buffer they fail clearly.

        async def fill_the_buffer() -> None:
            for _ in range(100):
                await b.publish(Message("err.down", bytes(100)))

        with pytest.raises(ConnectionLost, match="buffer"), anyio.fail_after(10):
            await fill_the_buffer()
        await anyio.sleep(0.6)  # the outage outlasts publish_timeout (0.5 s): time is the point
        with pytest.raises(ConnectionLost, match="unreachable for more than"):
            await b.publish(Message("err.down", b"x"))
        await anyio.to_thread.run_sync(own_nats.start_node, 0)
        with anyio.fail_after(10):  # back: publishing works again
            while True:
                try:
                    await b.publish(Message("err.down", b"x"))
                    break
                except ConnectionLost:
                    await anyio.sleep(0.05)


async def test_nkey_seed_file_authenticates(tmp_path: Path) -> None:
    import nacl.signing  # installed with nkeys (part of the base install)
    import nkeys

    seed = nkeys.encode_seed(bytes(nacl.signing.SigningKey.generate()), nkeys.PREFIX_BYTE_USER)
    public = nkeys.from_seed(bytearray(seed)).public_key.decode()
    seed_file = tmp_path / "user.nk"
    seed_file.write_bytes(seed)
    auth = f"authorization {{ users: [ {{ nkey: {public} }} ] }}\n"
    async with EmbeddedNats(extra_config=auth) as server:
        async with NatsBroker(server.url, nkey=str(seed_file)) as broker:
            got = Recorder()
            await broker.subscribe("nkey.x", got)
            await settle(broker, broker)
            await broker.publish(Message("nkey.x", b"hi", {"x-id": "1"}))
            await got.wait_ids(["1"])
        with pytest.raises(ConnectionLost):
            await NatsBroker(server.url, connect_timeout=1.0).connect()


class _SilentThenAnswering:
    """A client whose JetStream API is silent ``silent`` times (a cluster electing its meta
    leader), then answers."""

    def __init__(self, silent: int, *, connected: bool) -> None:
        self.silent, self.is_connected, self.asked = silent, connected, 0

    async def request(self, subject: str, body: bytes, timeout: float) -> object:
        from types import SimpleNamespace

        from nats.errors import TimeoutError as NatsTimeout

        self.asked += 1
        if self.asked <= self.silent:
            raise NatsTimeout
        return SimpleNamespace(data=b'{"streams": ["s"]}')


async def test_a_silent_jetstream_api_is_asked_again_while_connected() -> None:
    from eventkit.brokers.nats._streams import _API_ATTEMPTS, stream_for_subject

    electing = _SilentThenAnswering(_API_ATTEMPTS - 1, connected=True)
    assert await stream_for_subject(electing, "a.b")  # type: ignore[arg-type]
    assert electing.asked == _API_ATTEMPTS

    never = _SilentThenAnswering(_API_ATTEMPTS, connected=True)
    with pytest.raises(ConnectionLost, match="tries"):
        await stream_for_subject(never, "a.b")  # type: ignore[arg-type]

    down = _SilentThenAnswering(1, connected=False)  # an outage: the first timeout answers
    with pytest.raises(ConnectionLost, match="within 5s"):
        await stream_for_subject(down, "a.b")  # type: ignore[arg-type]
    assert down.asked == 1
