"""Auth without a broker: keys, tokens, scopes, the verification cache, and secrets kept out
of sight; and in one process on memory://, what a service does with scopes and policies."""

from __future__ import annotations

import functools
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import jwt
import pytest

from eventkit import (
    Auth,
    BadRequest,
    Client,
    ConfigError,
    Context,
    Event,
    Forbidden,
    Service,
    Settings,
    Unauthorized,
)
from eventkit.auth import generate_key, load_key
from eventkit.testing import run
from eventkit.wire import DEAD_LETTER_REASON, SECRET, Message, redact
from tests.auth.node import SCOPE, build

KEY = "eventkit-test-shared-secret-of-48-bytes-or-more!!"


def test_a_minted_token_verifies_with_its_subject_and_scopes() -> None:
    auth = Auth(KEY)
    identity = auth.verify(auth.mint("alice", ["b", "a"], ttl=60))
    assert identity.subject == "alice"
    assert identity.scopes == {"a", "b"}
    assert identity.has("a") and not identity.has("a", "c")
    assert identity.expires > time.time()


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ConfigError, match="at least 32"):
        Auth("short")


def test_expired_wrong_signature_and_malformed_tokens_are_unauthorized() -> None:
    auth = Auth(KEY)
    now = int(time.time())
    expired = jwt.encode({"sub": "a", "exp": now - 10}, KEY, algorithm="HS256")
    no_exp = jwt.encode({"sub": "a"}, KEY, algorithm="HS256")
    other = Auth("x" * 40).mint("a", ttl=60)
    for token, why in [
        (expired, "expired"),
        (no_exp, "'exp'"),
        (other, "signature"),
        ("garbage", "not valid"),
    ]:
        with pytest.raises(Unauthorized, match=why) as raised:
            auth.verify(token, service="svc")
        assert raised.value.code == 401 and raised.value.id == "svc"


def test_an_eddsa_key_verifies_with_the_public_half_only() -> None:
    private, public = generate_key("EdDSA")
    assert public is not None
    signer = Auth(private)
    verifier = Auth(public)
    assert verifier.algorithm == "EdDSA"
    token = signer.mint("svc-a", ["x"], ttl=60)
    assert verifier.verify(token).subject == "svc-a"
    with pytest.raises(ConfigError, match="public key"):
        verifier.mint("svc-b", ttl=60)


def test_an_hs256_token_made_with_a_public_key_is_refused() -> None:
    """The algorithm follows the key: a public key is never used as an HMAC secret."""
    _private, public = generate_key("EdDSA")
    assert public is not None
    verifier = Auth(public)
    forged = jwt.encode(
        {"sub": "eve", "exp": int(time.time()) + 60},
        b"x" * 40,  # any secret: PyJWT refuses a PEM as an HMAC key, the verifier the alg
        algorithm="HS256",
    )
    with pytest.raises(Unauthorized, match="EdDSA"):
        verifier.verify(forged)


def test_keys_load_from_a_file(tmp_path: Path) -> None:
    secret, _ = generate_key()
    path = tmp_path / "key"
    path.write_text(secret + "\n")
    auth = Auth(key_file=path)
    assert auth.verify(Auth(secret).mint("a", ttl=60)).subject == "a"
    with pytest.raises(ConfigError, match="cannot read") as raised:
        Auth(key_file=tmp_path / "missing")
    assert secret not in str(raised.value)


def test_a_verified_token_is_kept_until_it_expires() -> None:
    auth = Auth(KEY, cache_size=2)
    token = auth.mint("a", ttl=60)
    first = auth.verify(token)
    assert auth.verify(token) is first  # from the cache: not decoded again
    for subject in ("b", "c", "d"):
        auth.verify(auth.mint(subject, ttl=60))
    assert len(auth._verified) <= 2  # bounded
    short = auth.mint("e", ttl=1)
    auth.verify(short)
    time.sleep(1.1)
    with pytest.raises(Unauthorized, match="expired"):
        auth.verify(short)


def test_guards_follow_scopes_and_the_default_policy() -> None:
    strict, open_ = Auth(KEY), Auth(KEY, default="open")
    token = strict.mint("a", ["orders:read"], ttl=60)
    with pytest.raises(Unauthorized, match="needs a token"):
        strict.guard(None, service="s", name="E")(None)
    assert strict.guard(None, service="s", name="E")(token) is not None
    assert open_.guard(None, service="s", name="E")(None) is None
    with pytest.raises(Unauthorized):  # a bad token is refused even where the door is open
        open_.guard(None, service="s", name="E")("garbage")
    with pytest.raises(Forbidden, match="orders:write"):
        open_.guard(["orders:write"], service="s", name="E")(token)
    assert strict.guard([], service="s", name="E")(token) is not None


def test_tokens_and_keys_never_show_in_settings_or_text() -> None:
    token = Auth(KEY).mint("a", ttl=60)
    shown = repr(Settings(token=token, auth_key=KEY))
    assert token not in shown and KEY not in shown
    assert redact(f"sent {token} along") == f"sent {SECRET} along"
    assert KEY not in repr(Auth(KEY)) and KEY not in repr(load_key(KEY))


def test_the_base_install_imports_without_pyjwt_and_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['jwt'] = None\n"
        "import eventkit\n"
        "from eventkit import Service, Client, Settings\n"
        "Client('memory://', token='t')\n"
        "try:\n"
        "    eventkit.Auth('k' * 40)\n"
        "except eventkit.DriverMissing as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'eventkit-micro[auth]'" in out.stdout


def test_scopes_without_a_key_stop_the_start() -> None:
    svc = Service("s")

    @svc.endpoint("E.F", scopes=["x"])
    async def f() -> None: ...

    with pytest.raises(ConfigError, match="EVENTKIT_AUTH_KEY"):
        anyio.run(functools.partial(svc.start, broker="memory://"))


@pytest.mark.anyio
async def test_an_open_service_still_checks_scoped_handlers() -> None:
    auth = Auth(KEY, default="open")
    svc = Service("shop", auth=auth)
    seen: list[str | None] = []

    @svc.endpoint("Shop.List")
    async def listing(ctx: Context) -> str | None:
        return ctx.caller

    @svc.endpoint("Shop.Buy", scopes=["shop:buy"])
    async def buy(ctx: Context) -> str | None:
        return ctx.caller

    @svc.subscribe("shop.events", scopes=["shop:buy"])
    async def on_event(event: Event[dict[str, str]], ctx: Context) -> None:
        seen.append(ctx.caller)

    async with run(svc) as kit:
        assert await kit.call("shop", "Shop.List") == kit.node_id  # no token: the node id
        with pytest.raises(Unauthorized):
            await kit.call("shop", "Shop.Buy")
        await kit.publish("shop.events", {"a": "b"})
        await kit.join()
        assert svc.stats.refused == 1 and seen == []
        async with Client(kit.broker, owns_broker=False, token=auth.mint("bo", ["shop:buy"])) as c:
            assert await c.call("shop", "Shop.Buy") == "bo"
            await c.publish("shop.events", {"a": "b"})
            await kit.join()
        assert seen == ["bo"]


@pytest.mark.anyio
async def test_streams_are_checked_at_the_open_and_records_hold_no_secret() -> None:
    auth = Auth(KEY)
    token = auth.mint("svc-a", ["logs:read"], ttl=60)
    svc = Service("logs", auth=auth, token=token)
    opened: list[str | None] = []

    @svc.endpoint("Logs.Tail", scopes=["logs:read"])
    async def tail(req: dict[str, int], ctx: Context) -> AsyncIterator[int]:
        opened.append(ctx.caller)
        for i in range(req["n"]):
            yield i

    async with run(svc) as kit:
        with pytest.raises(Unauthorized):
            async for _ in kit.stream("logs", "Logs.Tail", {"n": 2}, timeout=5):
                pass
        assert opened == []
        async with Client(kit.broker, owns_broker=False, token=token) as c:
            items = [i async for i in c.stream("logs", "Logs.Tail", {"n": 2}, timeout=5)]
        assert items == [0, 1] and opened == ["svc-a"]
        (described,) = await kit.describe("logs")
        record = described.model_dump_json()
        assert token not in record and KEY not in record
        assert '"scopes":"logs:read"' in record


@pytest.mark.anyio
async def test_the_token_is_checked_before_the_request_is_decoded(tmp_path: Path) -> None:
    auth = Auth(KEY)
    svc = build(tmp_path / "calls.txt", auth)
    async with run(svc) as kit:
        with pytest.raises(Unauthorized):  # not a 400: the body was never read
            await kit.call("guarded", "Orders.Place", {"not": "an order"})
        token = auth.mint("ann", [SCOPE], ttl=60)
        async with Client(kit.broker, owns_broker=False, token=token) as c:
            with pytest.raises(BadRequest):
                await c.call("guarded", "Orders.Place", {"not": "an order"})
    assert not (tmp_path / "calls.txt").exists()


@pytest.mark.anyio
async def test_a_refused_event_on_a_durable_subscription_is_dead_lettered_with_why() -> None:
    auth = Auth(KEY)
    svc = Service("ledger", auth=auth)
    handled: list[str] = []

    @svc.subscribe("ledger.entries", durable="ledger", scopes=["ledger:write"])
    async def entry(event: Event[dict[str, str]]) -> None:
        handled.append(event.id)

    async with run(svc) as kit:
        letters: list[Message] = []

        async def keep(message: Message) -> None:
            letters.append(message)

        await kit.broker.subscribe("eventkit.deadletter.ledger", keep)
        token = auth.mint("reader", ["ledger:read"], ttl=60)
        async with Client(kit.broker, owns_broker=False, token=token) as c:
            await c.publish("ledger.entries", {"a": "b"})
        await kit.join()
        assert handled == [] and svc.stats.refused == 1
    (letter,) = letters  # at once: no retries, since retrying cannot make a token valid
    reason = letter.headers[DEAD_LETTER_REASON]
    assert reason.startswith("refused: 403 Forbidden") and "ledger:write" in reason
    assert token not in reason


@pytest.mark.parametrize("kind", ["RS256", "ES256"])
def test_rsa_and_p256_keys_sign_and_verify(kind: str) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    private = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if kind == "RS256"
        else ec.generate_private_key(ec.SECP256R1())
    )
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    verifier = Auth(public_pem)
    assert verifier.algorithm == kind
    identity = verifier.verify(Auth(private_pem).mint("svc", ["s"], ttl=60))
    assert identity.subject == "svc" and identity.scopes == {"s"}
    with pytest.raises(Unauthorized):
        verifier.verify(Auth(KEY).mint("svc", ["s"], ttl=60))


@pytest.mark.anyio
async def test_the_test_kit_sends_the_token_it_is_given() -> None:
    auth = Auth(KEY)
    svc = Service("orders", auth=auth)

    @svc.endpoint("Orders.Place", scopes=["orders:write"])
    async def place(ctx: Context) -> str | None:
        return ctx.caller

    async with run(svc, token=auth.mint("tester", ["orders:write"])) as kit:
        assert await kit.call("orders", "Orders.Place") == "tester"
    async with run(svc, token=auth.mint("reader", ["orders:read"])) as kit:
        with pytest.raises(Forbidden):
            await kit.call("orders", "Orders.Place")
