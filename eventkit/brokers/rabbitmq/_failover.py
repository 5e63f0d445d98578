"""Several RabbitMQ hosts in one URL, and a robust connection that fails over between them.

``amqp://user:pass@h1:5672,h2:5672,h3:5672/vhost`` names the nodes of one cluster; every host
takes the URL's credentials, vhost and query. aio-pika's robust connection reconnects to one
URL only, so :func:`failover_connection` makes a subclass that tries each host in turn on
every (re)connect attempt, starting with the one that served last: when a node dies, the
connection, channels, queues and consumers are restored on another.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from aio_pika import RobustConnection
from aio_pika.exceptions import CONNECTION_EXCEPTIONS
from yarl import URL

from ...wire import ConfigError, redact

__all__ = ["failover_connection", "split_hosts"]

# The robust connection's own connect step (private to aio-pika, name-mangled): the one place
# that opens a transport, on first connect and on every reconnect.
_CONNECT_TRANSPORT = "_RobustConnection__connect_transport"


def split_hosts(url: str) -> list[str]:
    """One URL per host of ``url``'s comma-separated host list (itself when it has one)."""
    parts = urlsplit(url)
    userinfo, at, hosts = parts.netloc.rpartition("@")
    names = hosts.split(",")
    if any(not name.strip() for name in names):
        raise ConfigError(f"an empty host in {redact(url)!r}: write host:port,host:port")
    return [
        urlunsplit((parts.scheme, userinfo + at + name.strip(), parts.path, parts.query, ""))
        for name in names
    ]


def failover_connection(urls: list[str]) -> type[RobustConnection]:
    """A robust connection class that connects to the first of ``urls`` that answers."""
    if not hasattr(RobustConnection, _CONNECT_TRANSPORT):
        raise ConfigError(
            "this aio-pika version has no RobustConnection connect step eventkit can wrap: "
            "give one host, or install the aio-pika version eventkit is tested with"
        )
    targets = tuple(URL(url) for url in urls)

    class FailoverConnection(RobustConnection):
        """A robust connection over several hosts (see the module's docstring)."""

        _serving = 0

        async def _RobustConnection__connect_transport(self) -> None:
            connect = getattr(super(), _CONNECT_TRANSPORT)
            failure: BaseException | None = None
            for step in range(len(targets)):
                index = (self._serving + step) % len(targets)
                # The first URL carries the query aio-pika built from the options.
                self.url = targets[index].with_query(self.url.query)
                try:
                    await connect()
                except CONNECTION_EXCEPTIONS as exc:
                    failure = exc
                    continue
                self._serving = index
                return
            assert failure is not None
            raise failure

    return FailoverConnection
