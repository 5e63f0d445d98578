"""Handler signatures, read once at definition into a fast decode-and-call path.

A handler is an ``async def`` whose parameters are chosen by annotation:

- ``Event[T]``: the CloudEvent, its data validated as ``T``;
- ``Context``: the delivery context;
- any other annotation (a pydantic model, ``dict``, ``int``, ``bytes``...): the data alone;
- no annotation: the data as plain JSON.

At most one data or event parameter. Everything that can be decided from the signature is
decided here, when the handler is defined, so a bad signature fails at once and the
per-message path only validates the body and calls.

An endpoint may stream (``streams=True``): an ``async def`` with ``yield`` (an async
generator, annotated ``-> AsyncIterator[Item]``) sends items to the caller, and a data
parameter annotated ``AsyncIterator[Item]`` takes the caller's items.
"""

from __future__ import annotations

import collections.abc
import inspect
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, get_args, get_origin

from ..rpc import Context
from ..wire import ConfigError, DataCodec, Decoder, Event, Message

__all__ = ["HandlerSignature", "inspect_handler"]

_EMPTY = inspect.Parameter.empty


@dataclass(frozen=True)
class HandlerSignature:
    """What a handler wants: its data type, whether it wants the Event and/or the Context."""

    func: Callable[..., Awaitable[Any]]
    name: str
    codec: DataCodec | None
    wants_event: bool
    data_param: str | None
    context_param: str | None
    returns: Any
    positional: tuple[str, ...]
    by_keyword: bool = False
    """The chosen parameters are not the first ones (a defaulted one sits between them), so
    they must be passed by name: see :meth:`caller`."""
    streams_in: bool = False
    """The data parameter is an ``AsyncIterator[T]`` of the caller's items (``codec`` reads
    one item)."""
    streams_out: bool = False
    """The handler is an async generator: it yields items (``returns`` is the item type)."""

    def caller(self) -> Callable[..., Any]:
        """``func`` taking the arguments of :meth:`build_args` positionally."""
        func, names = self.func, self.positional
        if not self.by_keyword:
            return func
        if self.streams_out:

            def generator_by_name(*args: Any) -> Any:
                return func(**dict(zip(names, args, strict=True)))

            return generator_by_name

        async def by_name(*args: Any) -> Any:
            return await func(**dict(zip(names, args, strict=True)))

        return by_name

    def build_args(self, message: Message, ctx: Context | None) -> list[Any]:
        """Decode ``message`` into the handler's positional arguments (raises InvalidEvent)."""
        return self.arrange(self.decode(message) if self.data_param is not None else None, ctx)

    def arrange(self, data: Any, ctx: Context | None) -> list[Any]:
        """The handler's positional arguments, from the decoded data and the context."""
        if self.data_only:
            return [data]
        return [data if name == self.data_param else ctx for name in self.positional]

    @cached_property
    def data_only(self) -> bool:
        """The handler takes the data (or Event) alone: the common shape, built directly."""
        return len(self.positional) == 1 and self.data_param is not None

    @cached_property
    def decode(self) -> Decoder:
        """The data (or the Event, for ``Event[T]`` handlers) of a CloudEvent message."""
        assert self.codec is not None
        return Decoder(self.codec, event=self.wants_event)


def _is_context(annotation: Any) -> bool:
    """``Context``, a subclass, or ``Context | None``."""
    if isinstance(annotation, type):
        return issubclass(annotation, Context)
    args = get_args(annotation)
    return (
        bool(args)
        and any(isinstance(a, type) and issubclass(a, Context) for a in args)
        and all(a is type(None) or (isinstance(a, type) and issubclass(a, Context)) for a in args)
    )


_ASYNC_ITERATORS = (
    collections.abc.AsyncIterator,
    collections.abc.AsyncIterable,
    collections.abc.AsyncGenerator,
)


def _items_of(annotation: Any) -> tuple[bool, Any]:
    """(True, the item type) for ``AsyncIterator[T]`` (or AsyncIterable, AsyncGenerator)."""
    if annotation in _ASYNC_ITERATORS:
        return True, Any
    if get_origin(annotation) in _ASYNC_ITERATORS:
        args = get_args(annotation)
        return True, args[0] if args else Any
    return False, None


def inspect_handler(
    func: Callable[..., Any], *, what: str = "handler", streams: bool = False
) -> HandlerSignature:
    """Read ``func``'s signature; raise ConfigError saying how to fix an unsupported one.

    ``streams``: the handler may stream (an endpoint), see the module's docs."""
    name = getattr(func, "__qualname__", None) or repr(func)
    target: Any = func if inspect.isroutine(func) else getattr(func, "__call__", func)  # noqa: B004
    streams_out = inspect.isasyncgenfunction(target)
    if streams_out and not streams:
        raise ConfigError(
            f"{what} {name} is an async generator (it yields): only an endpoint streams items"
        )
    if not streams_out and not inspect.iscoroutinefunction(target):
        raise ConfigError(f"{what} {name} must be an 'async def' function")
    try:
        hints = typing.get_type_hints(target)
    except Exception as exc:
        raise ConfigError(f"{what} {name}: cannot resolve its type annotations: {exc}") from exc
    signature = inspect.signature(func)
    data_param: str | None = None
    context_param: str | None = None
    wants_event = False
    streams_in = False
    data_type: Any = None
    positional: list[str] = []
    params = list(signature.parameters.values())
    if params and params[0].name in ("self", "cls") and "." in name:
        params = params[1:]  # an undecorated method marked in its class body
    for param in params:
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if param.kind is param.KEYWORD_ONLY:
            if param.default is _EMPTY:
                raise ConfigError(
                    f"{what} {name}: keyword-only parameter {param.name!r} has no default"
                )
            continue
        annotation = hints.get(param.name, _EMPTY)
        if _is_context(annotation):
            if context_param is not None:
                raise ConfigError(f"{what} {name}: only one Context parameter is allowed")
            context_param = param.name
            positional.append(param.name)
            continue
        if data_param is not None:
            if param.default is not _EMPTY:
                continue
            raise ConfigError(
                f"{what} {name}: parameters {data_param!r} and {param.name!r} both want the "
                "data; a handler takes one data (or Event[T]) parameter and optionally a Context"
            )
        data_param = param.name
        positional.append(param.name)
        takes_items, item_type = _items_of(annotation)
        if annotation is _EMPTY:
            data_type = Any
        elif takes_items:
            if not streams:
                raise ConfigError(
                    f"{what} {name}: parameter {param.name!r} is an async iterator; a "
                    f"{what} takes one message at a time (only an endpoint takes a stream)"
                )
            streams_in, data_type = True, item_type
        elif annotation is Event or get_origin(annotation) is Event:
            wants_event = True
            args = get_args(annotation)
            data_type = args[0] if args else Any
        else:
            data_type = annotation
    codec = None
    if data_param is not None:
        try:
            codec = DataCodec(data_type)
        except Exception as exc:
            type_name = getattr(data_type, "__name__", None) or repr(data_type)
            raise ConfigError(
                f"{what} {name}: pydantic cannot validate {type_name}: {exc}"
            ) from exc
    returns = hints.get("return", Any)
    yields, item = _items_of(returns)
    if streams_out:
        if returns is not Any and not yields:
            raise ConfigError(
                f"{what} {name} yields items: annotate it '-> AsyncIterator[Item]' "
                f"(not {returns!r})"
            )
        returns = item if yields else Any
    elif yields and streams:
        raise ConfigError(
            f"{what} {name} is annotated to return an async iterator but does not yield: "
            "write it as an async generator ('yield' each item)"
        )
    leading = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    by_keyword = tuple(leading[: len(positional)]) != tuple(positional)
    if by_keyword and any(p.kind is p.POSITIONAL_ONLY and p.name in positional for p in params):
        raise ConfigError(
            f"{what} {name}: a positional-only parameter follows a skipped one; put the data "
            "and Context parameters first"
        )
    return HandlerSignature(
        func=func,
        name=name,
        codec=codec,
        wants_event=wants_event,
        data_param=data_param,
        context_param=context_param,
        returns=returns,
        positional=tuple(positional),
        by_keyword=by_keyword,
        streams_in=streams_in,
        streams_out=streams_out,
    )
