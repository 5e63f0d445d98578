"""``http://``: the peer-to-peer HTTP adapter (aiohttp): no broker server.

Each node serves HTTP, learns the others by gossip from seeds, and POSTs events to the nodes
whose subscriptions match, in the CloudEvents HTTP binding. Importing this package imports
aiohttp; :func:`eventkit.brokers.from_url` does so only when an ``http://`` URL is first used.
"""

from ._broker import HttpBroker, HttpSubscription
from ._config import HttpSettings

__all__ = ["HttpBroker", "HttpSettings", "HttpSubscription"]
