"""RPC tests run on every broker target of the conformance suite (memory, NATS, ...)."""

from __future__ import annotations

from tests.conformance.conftest import target, topic  # noqa: F401  # re-used fixtures
