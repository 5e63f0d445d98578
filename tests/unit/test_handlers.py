"""Handler signatures: what is accepted, what is a clear error at definition."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from typing import Any

import pytest
from pydantic import BaseModel

from eventkit import ConfigError, Context, Event, Router, Service, Subscriber, subscribe
from eventkit.service import inspect_handler


class Model(BaseModel):
    x: int


async def event_and_ctx(event: Event[Model], ctx: Context) -> None: ...
async def model_only(m: Model) -> None: ...
async def untyped(data) -> None: ...  # type: ignore[no-untyped-def]
async def nothing() -> None: ...
async def ctx_first(ctx: Context, data: dict[str, int]) -> None: ...
async def two_data(a: Model, b: Model) -> None: ...
def not_async(m: Model) -> None: ...
async def bare_event(event: Event) -> None: ...  # type: ignore[type-arg]


def test_accepted_signatures() -> None:
    sig = inspect_handler(event_and_ctx)
    assert sig.wants_event and sig.context_param == "ctx" and sig.codec is not None
    assert sig.codec.type is Model
    assert inspect_handler(model_only).codec.type is Model  # type: ignore[union-attr]
    assert inspect_handler(untyped).codec.type is Any  # type: ignore[union-attr]
    assert inspect_handler(nothing).data_param is None
    assert inspect_handler(ctx_first).positional == ("ctx", "data")
    assert inspect_handler(bare_event).codec.type is Any  # type: ignore[union-attr]


def test_two_data_parameters_is_an_error() -> None:
    with pytest.raises(ConfigError, match="both want the data"):
        inspect_handler(two_data)


def test_sync_handler_is_an_error() -> None:
    with pytest.raises(ConfigError, match="async def"):
        Subscriber("a.b", not_async)


def test_bad_topic_fails_at_decoration() -> None:
    svc = Service("s")
    with pytest.raises(ConfigError):
        svc.subscribe("a..b")(model_only)
    with pytest.raises(ConfigError):
        subscribe("a.>.b")


def test_bad_names_fail_at_definition() -> None:
    with pytest.raises(ConfigError):
        Service("has.dot")
    with pytest.raises(ConfigError):
        Subscriber("a.b", model_only, queue="a.b")
    with pytest.raises(ConfigError):
        Subscriber("a.b", model_only, concurrency=0)


class Handlers:
    def __init__(self) -> None:
        self.seen: list[Model] = []

    @subscribe("shop.orders.placed", queue="q")
    async def on_order(self, m: Model) -> None:
        self.seen.append(m)


def test_a_class_with_marked_methods_is_included() -> None:
    svc = Service("s")
    handlers = Handlers()
    svc.include(handlers)
    (sub,) = svc.subscribers
    assert sub.topic == "shop.orders.placed" and sub.queue == "q"
    assert sub.handler == handlers.on_order


def test_router_prefix_and_include() -> None:
    router = Router(prefix="shop")

    @router.subscribe("orders.*")
    async def h(m: Model) -> None: ...

    svc = Service("s")
    svc.include(router)
    assert [s.topic for s in svc.subscribers] == ["shop.orders.*"]


def test_include_of_something_without_handlers_is_an_error() -> None:
    with pytest.raises(ConfigError, match="no handlers"):
        Service("s").include(object())


@pytest.mark.parametrize(
    ("optional", "others", "extensions"),
    [
        ({}, {}, {}),
        ({}, {}, {"tenant": "acme"}),
        ({"ce-time": "2024-01-01T00:00:00Z", "content-type": "application/json"}, {}, {}),
        (
            {"ce-subject": "o-1", "ce-dataschema": "urn:s", "content-type": "application/json"},
            {"eventkit-md-user": "u1"},
            {"tenant": "acme", "region": "eu"},
        ),
        ({"ce-time": "2024-01-01T00:00:00Z"}, {"eventkit-md-user": "u1"}, {}),
    ],
)
def test_binary_events_keep_their_extensions_and_only_those(
    optional: dict[str, str], others: dict[str, str], extensions: dict[str, str]
) -> None:
    from eventkit.wire import Message

    headers = {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "t"}
    headers |= optional | others | {f"ce-{k}": v for k, v in extensions.items()}
    event = inspect_handler(event_and_ctx).decode(Message("a.b", b'{"x": 1}', headers))
    assert event.extensions == extensions
    assert event.data == Model(x=1)
    assert event.subject == optional.get("ce-subject")
    assert event.dataschema == optional.get("ce-dataschema")


class Line(BaseModel):
    text: str


async def tail(req: Model, ctx: Context) -> AsyncIterator[Line]:
    yield Line(text=str(req.x))


async def upload(parts: AsyncIterator[Line]) -> int:
    return len([p async for p in parts])


async def chat(lines: AsyncIterable[Line], ctx: Context) -> AsyncGenerator[Line, None]:
    async for line in lines:
        yield line


async def untyped_generator(req: Model):  # type: ignore[no-untyped-def]
    yield req


async def generator_returning_model(req: Model) -> Line:  # type: ignore[misc]
    yield Line(text="x")


async def iterator_without_yield(req: Model) -> AsyncIterator[Line]:
    raise NotImplementedError  # annotated to stream, but a coroutine


def test_streaming_endpoints_are_read_at_definition() -> None:
    server = Service("s")
    server.endpoint("Logs.Tail")(tail)
    server.endpoint("Files.Upload", window=16)(upload)
    server.endpoint("Chat.Talk")(chat)
    server.endpoint("Any.Gen")(untyped_generator)
    server.endpoint("Plain.Hello")(model_only)
    kinds = {e.name: e.kind for e in server.endpoints}
    assert kinds == {
        "Logs.Tail": "server",
        "Files.Upload": "client",
        "Chat.Talk": "bidi",
        "Any.Gen": "server",
        "Plain.Hello": None,
    }
    by_name = {e.name: e for e in server.endpoints}
    assert by_name["Logs.Tail"].signature.returns is Line
    assert by_name["Files.Upload"].signature.codec.type is Line  # type: ignore[union-attr]
    assert by_name["Files.Upload"].window == 16
    assert by_name["Chat.Talk"].signature.returns is Line
    assert by_name["Any.Gen"].signature.returns is Any


def test_streaming_signatures_that_cannot_work_are_errors() -> None:
    with pytest.raises(ConfigError, match="only an endpoint streams"):
        Subscriber("a.b", tail)
    with pytest.raises(ConfigError, match="only an endpoint takes a stream"):
        Subscriber("a.b", upload)
    with pytest.raises(ConfigError, match="AsyncIterator\\[Item\\]"):
        Service("s").endpoint("X.Y")(generator_returning_model)
    with pytest.raises(ConfigError, match="does not yield"):
        Service("s").endpoint("X.Y")(iterator_without_yield)
    with pytest.raises(ConfigError, match="window"):
        Service("s").endpoint("X.Y", window=0)(tail)


def test_a_class_registers_its_generator_methods_as_streams() -> None:
    class Logs:
        async def tail(self, req: Model) -> AsyncIterator[Line]:
            yield Line(text="x")

        async def count(self, req: Model) -> int:
            return req.x

    server = Service("s")
    server.register(Logs())
    assert {e.name: e.kind for e in server.endpoints} == {"Logs.tail": "server", "Logs.count": None}
