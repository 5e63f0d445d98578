"""JetStream stream layout for durable subscriptions: which stream holds which topics.

JetStream forbids two streams (and two subjects of one stream) that overlap, and a stream over
all of ``>`` would store every RPC, registry and fan-out message. So eventkit keeps **one
stream per first topic token**, named ``eventkit-{token}``, whose subjects are exactly the
union of the durable patterns under that token (``shop.orders.*`` and ``shop.payments.>`` make
stream ``eventkit-shop`` over those two subjects, and nothing else under ``shop`` is stored).

- Streams of different first tokens never overlap, so adding one never conflicts.
- Inside one stream, a new pattern that covers old subjects replaces them; one that partly
  overlaps them is merged into their least common cover (``a.b.*`` + ``a.*.c`` -> ``a.*.*``).
- A durable pattern already covered by any stream (eventkit's or not) reuses that stream.
- Interest retention: a message stays until every durable whose filter matches has acked it,
  and a message nobody durable wants is not kept. The ``eventkit`` token (dead letters) keeps
  messages by limits instead, so dead letters stay for inspection.

Creation is idempotent and safe when many nodes start at once: a create with the same config
succeeds, a create that lost a race fails and is retried from a fresh listing, and every
update is verified after a short pause (JetStream has no compare-and-set on stream configs).
The subject algebra here is pure; :func:`ensure_stream` is the only I/O.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from typing import Any

import anyio
from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from ...wire import BrokerError, ConfigError, ConnectionLost, UnsupportedFeature
from ._errors import DRIVER_ERRORS, translate

__all__ = [
    "StreamHeads",
    "common_cover",
    "covers",
    "ensure_stream",
    "list_streams",
    "merge_subjects",
    "overlaps",
    "stream_for_subject",
    "stream_name",
]

# Its own generator: the process-wide one is the application's (seeded in its tests, say).
_rng = random.Random()

STREAM_PREFIX = "eventkit-"
DEAD_LETTER_TOKEN = "eventkit"
_API = "$JS.API"
_RETRYABLE = {10058, 10065, 10008, 10039}  # name in use, overlap, JS unavailable, not ready
_DEAD_LETTER_MAX_AGE_NS = 7 * 24 * 3600 * 10**9
_DEAD_LETTER_MAX_BYTES = 256 * 1024 * 1024


def covers(general: str, specific: str) -> bool:
    """Whether every subject matched by ``specific`` is matched by ``general``."""
    g, s = general.split("."), specific.split(".")
    for i, tok in enumerate(g):
        if tok == ">":
            return i < len(s)
        if i >= len(s) or s[i] == ">":
            return False
        if tok != "*" and (s[i] == "*" or s[i] != tok):
            return False
    return len(g) == len(s)


def overlaps(a: str, b: str) -> bool:
    """Whether some concrete subject is matched by both patterns."""
    x, y = a.split("."), b.split(".")
    for i in range(max(len(x), len(y))):
        tx = x[i] if i < len(x) else None
        ty = y[i] if i < len(y) else None
        if tx == ">":
            return ty is not None
        if ty == ">":
            return tx is not None
        if tx is None or ty is None:
            return False
        if tx != "*" and ty != "*" and tx != ty:
            return False
    return True


def common_cover(a: str, b: str) -> str:
    """The narrowest pattern that covers both (same first token expected)."""
    x, y = a.split("."), b.split(".")
    out: list[str] = []
    for i in range(max(len(x), len(y))):
        tx = x[i] if i < len(x) else None
        ty = y[i] if i < len(y) else None
        if tx is None or ty is None:  # one ended: the other's extra tokens need a '>'
            out[-1] = ">"
            break
        if ">" in (tx, ty):
            out.append(">")
            break
        out.append(tx if tx == ty else "*")
    return ".".join(out)


def merge_subjects(subjects: list[str], pattern: str) -> list[str]:
    """The subjects of a stream after adding ``pattern``: pairwise non-overlapping."""
    if any(covers(s, pattern) for s in subjects):
        return list(subjects)
    merged = pattern
    rest = list(subjects)
    changed = True
    while changed:
        changed = False
        for s in rest:
            if covers(merged, s):
                rest.remove(s)
                changed = True
                break
            if overlaps(merged, s):
                merged = common_cover(merged, s)
                rest.remove(s)
                changed = True
                break
    return [*rest, merged]


def stream_name(token: str) -> str:
    """``eventkit-{token}``, with a hash when the token has characters streams may not use."""
    clean = re.sub(r"[^A-Za-z0-9_-]", "_", token)
    if clean != token:
        clean += "-" + hashlib.sha1(token.encode()).hexdigest()[:8]
    return STREAM_PREFIX + clean


_API_ATTEMPTS = 4
"""Tries of a JetStream API request that gets no answer in 5 s: a cluster answers none while
it elects its meta leader (at start, after a node's loss), which takes seconds, not minutes.
Only a connected client tries again: with the link down, the first timeout is the answer.
Every request eventkit makes is safe to repeat (a create with the same config is a no-op)."""


async def _api(nc: Client, subject: str, payload: dict[str, Any] | None = None) -> Any:
    body = json.dumps(payload or {}).encode()
    for _ in range(_API_ATTEMPTS):
        try:
            msg = await nc.request(f"{_API}.{subject}", body, timeout=5.0)
            break
        except NoRespondersError as exc:
            raise UnsupportedFeature(
                "this NATS server has no JetStream, which durable= needs: start it with "
                "`nats-server -js` (or `eventkit up`)"
            ) from exc
        except NatsTimeout as exc:
            if not nc.is_connected:
                raise ConnectionLost(
                    f"the JetStream API did not answer within 5s ({subject})"
                ) from exc
        except DRIVER_ERRORS as exc:
            raise translate(exc, f"calling the JetStream API ({subject})", "the server") from exc
    else:
        raise ConnectionLost(
            f"the JetStream API did not answer within {_API_ATTEMPTS} tries of 5s ({subject})"
        )
    return json.loads(msg.data)


async def stream_for_subject(nc: Client, subject: str) -> bool:
    """Whether any stream stores ``subject`` (one JetStream API call)."""
    try:
        resp = await _api(nc, "STREAM.NAMES", {"subject": subject})
    except UnsupportedFeature:
        return False
    return bool(resp.get("streams"))


async def list_streams(nc: Client) -> dict[str, dict[str, Any]]:
    """Every stream's config, by name (all pages)."""
    found: dict[str, dict[str, Any]] = {}
    offset = 0
    while True:
        resp = await _api(nc, "STREAM.LIST", {"offset": offset})
        if "error" in resp:
            raise BrokerError(f"JetStream could not list streams: {resp['error']}")
        streams = resp.get("streams") or []
        for info in streams:
            found[info["config"]["name"]] = info["config"]
        offset += len(streams)
        if not streams or offset >= int(resp.get("total", 0)):
            return found


def _new_config(name: str, token: str, subjects: list[str], replicas: int) -> dict[str, Any]:
    config: dict[str, Any] = {
        "name": name,
        "subjects": subjects,
        "retention": "interest",
        "storage": "file",
        "num_replicas": replicas,
        "duplicate_window": 120 * 10**9,
        "discard": "old",
        "max_msgs": -1,
        "max_bytes": -1,
        "max_age": 0,
        "max_consumers": -1,
    }
    if token == DEAD_LETTER_TOKEN:
        config.update(
            retention="limits", max_age=_DEAD_LETTER_MAX_AGE_NS, max_bytes=_DEAD_LETTER_MAX_BYTES
        )
    return config


async def ensure_stream(nc: Client, pattern: str, *, replicas: int = 1) -> str:
    """Make sure a stream captures ``pattern`` and return its name (see the module doc)."""
    token = pattern.split(".", 1)[0]
    if token in ("*", ">"):
        raise ConfigError(
            f"durable subscriptions need a literal first token, got {pattern!r}: JetStream "
            "stores them per first token (e.g. 'shop.>' rather than '*.orders')"
        )
    name = stream_name(token)
    for attempt in range(12):
        streams = await list_streams(nc)
        for sname, config in streams.items():
            if any(covers(s, pattern) for s in config.get("subjects") or []):
                return sname
        foreign = [
            n
            for n, c in streams.items()
            if n != name and any(overlaps(s, pattern) for s in c.get("subjects") or [])
        ]
        if foreign:
            raise ConfigError(
                f"durable pattern {pattern!r} overlaps JetStream stream(s) {', '.join(foreign)} "
                "without being covered by one; subscribe to a narrower or a covering pattern"
            )
        if name in streams:
            config = dict(streams[name])
            config["subjects"] = merge_subjects(list(config.get("subjects") or []), pattern)
            resp = await _api(nc, f"STREAM.UPDATE.{name}", config)
            verify = True
        else:
            config = _new_config(name, token, [pattern], replicas)
            resp = await _api(nc, f"STREAM.CREATE.{name}", config)
            verify = False
        error = resp.get("error")
        if error is None and not verify:
            return name
        if error is not None and error.get("err_code") not in _RETRYABLE:
            raise BrokerError(
                f"JetStream refused stream {name!r} for {pattern!r}: {error.get('description')}"
            )
        # Lost a race, or updated: wait a little, then re-read and check (another node may
        # have written the stream's subjects from an older listing at the same moment).
        await anyio.sleep(0.02 + _rng.random() * 0.05 * (attempt + 1))
    raise BrokerError(f"could not settle a JetStream stream for {pattern!r}; retry later")


class StreamHeads:
    """The first two tokens of the streams' subjects, to tell at once that no stream can
    store a topic: most publishes (and every RPC reply, each on a topic of its own) go to
    topics no stream is near, and need no pattern matching."""

    __slots__ = ("_heads", "_loose", "_wild")

    def __init__(self, subjects: list[str]) -> None:
        self._heads: set[str] = set()  # "a.b" of subjects whose first two tokens are literal
        self._loose: set[str] = set()  # first tokens of subjects with a wildcard second token
        self._wild = False  # a subject whose first token is a wildcard: near everything
        for subject in subjects:
            first, _, rest = subject.partition(".")
            second = rest.partition(".")[0]
            if first in ("*", ">"):
                self._wild = True
            elif second in ("*", ">", ""):
                self._loose.add(first)
            else:
                self._heads.add(f"{first}.{second}")

    def near(self, topic: str) -> bool:
        """False when no subject can match ``topic``; True means: match the patterns."""
        if self._wild:
            return True
        first, _, rest = topic.partition(".")
        return first in self._loose or f"{first}.{rest.partition('.')[0]}" in self._heads
