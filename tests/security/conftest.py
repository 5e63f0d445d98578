"""Servers with credentials for the security tests: a nats-server with an authorization
block, and a RabbitMQ user (and vhost) made for one test with rabbitmqctl and removed after."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from eventkit.brokers.nats import EmbeddedNats
from tests.servers import IN_CI, require_server


@dataclass(frozen=True)
class AmqpUser:
    name: str
    password: str
    vhost: str

    @property
    def url(self) -> str:
        return f"amqp://{self.name}:{self.password}@127.0.0.1:5672/{self.vhost}"


def rabbitmqctl(*args: str) -> str:
    """Run rabbitmqctl against the shared node (it only adds and removes this test's user)."""
    tool = shutil.which("rabbitmqctl")
    if tool is None:
        if IN_CI:
            pytest.fail("rabbitmqctl is not installed (CI is set: a missing tool is a failure)")
        pytest.skip("rabbitmqctl is not installed")
    done = subprocess.run([tool, *args], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise AssertionError(f"rabbitmqctl {' '.join(args)} failed: {done.stderr}")
    return done.stdout


@pytest.fixture
def amqp_user() -> Iterator[AmqpUser]:
    """A RabbitMQ user with all rights on a vhost of its own (both removed after the test)."""
    require_server("127.0.0.1", 5672, "RabbitMQ")
    tag = uuid.uuid4().hex[:10]
    user = AmqpUser(f"ek-sec-{tag}", f"amqp-SECRET-{tag}", f"ek-sec-{tag}")
    rabbitmqctl("add_vhost", user.vhost)
    try:
        rabbitmqctl("add_user", user.name, user.password)
        rabbitmqctl("set_permissions", "-p", user.vhost, user.name, ".*", ".*", ".*")
        yield user
    finally:
        subprocess.run(["rabbitmqctl", "delete_user", user.name], capture_output=True)
        subprocess.run(["rabbitmqctl", "delete_vhost", user.vhost], capture_output=True)


def nats_with(authorization: str) -> EmbeddedNats:
    """A nats-server (JetStream on) with ``authorization`` appended to its config."""
    return EmbeddedNats(extra_config=authorization)
