from __future__ import annotations

import pytest

from tests.servers import require_server


@pytest.fixture
def nats() -> None:
    require_server("127.0.0.1", 4222, "NATS")
