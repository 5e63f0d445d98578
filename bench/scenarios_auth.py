"""What checking tokens costs: sequential RPC with auth off and on, on memory:// and NATS.

The baseline ("raw" in the table's ratio column) is eventkit itself without auth; the other
row is the same echo endpoint behind a scope, called with a token that grants it (HS256; a
token verified once is kept until it expires, so a run measures the hot path: a header read,
a dictionary lookup, a clock read and a scope check per call). The ratio is auth on / off.
"""

from __future__ import annotations

from eventkit import Auth

from . import eventkit_impl as ek
from .runner import Impl, Scenario
from .scenarios_memory import MemoryTarget
from .scenarios_nats import NatsTarget

KEY = "bench-shared-secret-of-at-least-thirty-two-bytes"


def scenarios() -> list[Scenario]:
    out = []
    for broker, target in (("memory", MemoryTarget()), ("nats", NatsTarget())):
        out.append(
            Scenario(
                broker,
                "rpc-auth",
                "sequential RPC, auth off vs on",
                5_000,
                "calls/s",
                [
                    Impl(
                        "raw",
                        "eventkit, no auth",
                        lambda e, t=target: ek.rpc(t, e, callers=1),
                    ),
                    Impl(
                        "eventkit",
                        "eventkit + auth",
                        lambda e, t=target: ek.rpc(t, e, callers=1, auth=Auth(KEY)),
                    ),
                ],
                note="ratio = calls/s with a scope checked on every call / without auth",
            )
        )
    return out
