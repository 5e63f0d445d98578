"""The registry's pure half: wire records and the view, folded without an event loop."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from eventkit.discovery import (
    EndpointInfo,
    NodeInfo,
    RegistryChange,
    RegistryView,
    SubscriptionInfo,
)


def node(
    id: str,
    service: str = "greeter",
    *,
    version: str = "1.0.0",
    ttl: float = 30.0,
    started: float = 1000.0,
    **extra: Any,
) -> NodeInfo:
    return NodeInfo(
        id=id,
        service=service,
        version=version,
        address="host/1",
        ttl=ttl,
        started=started,
        **extra,
    )


def test_announce_adds_then_updates_only_on_change() -> None:
    view = RegistryView()
    first = view.apply("announce", node("g-1"), now=0.0)
    assert first == RegistryChange(kind="added", node=node("g-1"), reason="announce")
    assert view.apply("announce", node("g-1"), now=1.0) is None  # a heartbeat: no change
    changed = node("g-1", metadata={"zone": "b"})
    second = view.apply("announce", changed, now=2.0)
    assert second is not None
    assert (second.kind, second.node, second.reason) == ("updated", changed, "announce")
    assert view.get("g-1") == changed
    assert view.get("nope") is None


def test_unchanged_announce_refreshes_last_seen() -> None:
    view = RegistryView()
    view.apply("announce", node("g-1", ttl=10.0), now=0.0)
    view.apply("announce", node("g-1", ttl=10.0), now=8.0)
    assert view.expire(now=15.0) == []  # 8 + 10 > 15: the heartbeat counted
    (gone,) = view.expire(now=18.0)
    assert (gone.kind, gone.node.id, gone.reason) == ("removed", "g-1", "expired")
    assert view.nodes("greeter") == []


def test_expire_drops_only_silent_nodes_in_id_order() -> None:
    view = RegistryView()
    view.apply("announce", node("b", ttl=5.0), now=0.0)
    view.apply("announce", node("a", ttl=5.0), now=0.0)
    view.apply("announce", node("c", ttl=50.0), now=0.0)
    assert view.expire(now=4.9) == []
    removed = view.expire(now=5.0)
    assert [c.node.id for c in removed] == ["a", "b"]
    assert {c.reason for c in removed} == {"expired"}
    assert [n.id for n in view.all()] == ["c"]
    assert len(view) == 1


def test_leave_removes_at_once_and_unknown_leave_is_no_change() -> None:
    view = RegistryView()
    view.apply("announce", node("g-1"), now=0.0)
    change = view.apply("leave", node("g-1"), now=1.0)
    assert change is not None
    assert (change.kind, change.node.id, change.reason) == ("removed", "g-1", "leave")
    assert view.apply("leave", node("g-1"), now=1.0) is None
    assert view.nodes("greeter") == []


def test_late_announce_after_leave_is_ignored_but_a_restart_is_not() -> None:
    view = RegistryView()
    view.apply("announce", node("g-1", ttl=10.0), now=0.0)
    view.apply("leave", node("g-1", ttl=10.0), now=1.0)
    assert view.apply("announce", node("g-1", ttl=10.0), now=1.5) is None  # was in flight
    assert view.get("g-1") is None
    restarted = view.apply("announce", node("g-1", ttl=10.0, started=2000.0), now=2.0)
    assert restarted is not None and restarted.kind == "added"


def test_tombstone_ends_with_the_ttl() -> None:
    view = RegistryView()
    view.apply("leave", node("g-1", ttl=10.0), now=0.0)
    view.expire(now=10.0)
    change = view.apply("announce", node("g-1", ttl=10.0), now=10.5)
    assert change is not None and change.kind == "added"


def test_unknown_kind_is_an_error() -> None:
    with pytest.raises(ValueError, match="announce"):
        RegistryView().apply("query", node("g-1"), now=0.0)


def test_nodes_filters_by_service_version_and_metadata_subset() -> None:
    view = RegistryView()
    view.apply("announce", node("g-2", version="1.0.0", metadata={"zone": "a"}), now=0)
    view.apply("announce", node("g-1", version="2.0.0", metadata={"zone": "a", "t": "x"}), now=0)
    view.apply("announce", node("g-3", version="2.0.0", metadata={"zone": "b"}), now=0)
    view.apply("announce", node("o-1", "orders"), now=0)
    assert [n.id for n in view.nodes("greeter")] == ["g-1", "g-2", "g-3"]
    assert [n.id for n in view.nodes("greeter", version="2.0.0")] == ["g-1", "g-3"]
    assert [n.id for n in view.nodes("greeter", metadata={"zone": "a"})] == ["g-1", "g-2"]
    only = view.nodes("greeter", version="2.0.0", metadata={"zone": "a", "t": "x"})
    assert [n.id for n in only] == ["g-1"]
    assert view.nodes("greeter", metadata={"zone": "c"}) == []
    assert view.nodes("missing") == []
    assert view.known_services() == ["greeter", "orders"]


def test_services_group_by_name_and_version() -> None:
    hello_old = EndpointInfo(name="Greeter.Hello", request={"type": "object"}, response={})
    hello_new = EndpointInfo(name="Greeter.Hello", request={"title": "new"}, response={})
    bye = EndpointInfo(name="Greeter.Bye", request={}, response={})
    view = RegistryView()
    view.apply(
        "announce",
        node("g-1", version="1.10.0", metadata={"team": "core", "zone": "a"},
             endpoints=[hello_old], started=1.0),
        now=0,
    )  # fmt: skip
    view.apply(
        "announce",
        node("g-2", version="1.10.0", metadata={"team": "core", "zone": "b"},
             endpoints=[hello_new, bye], started=2.0),
        now=0,
    )  # fmt: skip
    view.apply("announce", node("g-3", version="1.9.0"), now=0)
    view.apply("announce", node("a-1", "audit"), now=0)
    services = view.services()
    assert [(s.name, s.version) for s in services] == [
        ("audit", "1.0.0"),
        ("greeter", "1.9.0"),
        ("greeter", "1.10.0"),  # numeric order, not text order
    ]
    current = services[2]
    assert current.metadata == {"team": "core"}  # what every node shares
    assert [e.name for e in current.endpoints] == ["Greeter.Bye", "Greeter.Hello"]
    assert current.endpoints[1] == hello_new  # as the most recently started node has it
    assert [n.id for n in current.nodes] == ["g-1", "g-2"]
    assert [s.version for s in view.describe("greeter")] == ["1.9.0", "1.10.0"]
    assert view.describe("unknown") == []


def test_wire_records_validate_and_ignore_unknown_fields() -> None:
    raw = {
        "id": "g-1",
        "service": "greeter",
        "version": "1.0.0",
        "address": "h/1",
        "ttl": 30,
        "started": 1.5,
        "subscriptions": [{"topic": "shop.>", "queue": "greeter"}],
        "from_a_newer_version": True,
    }
    parsed = NodeInfo.model_validate(raw)
    assert parsed.subscriptions == [SubscriptionInfo(topic="shop.>", queue="greeter")]
    assert parsed.endpoints == [] and parsed.metadata == {}
    assert NodeInfo.model_validate_json(parsed.model_dump_json()) == parsed
    with pytest.raises(ValidationError):
        NodeInfo.model_validate({**raw, "ttl": 0})
    with pytest.raises(ValidationError):
        NodeInfo.model_validate({**raw, "id": ""})
    with pytest.raises(ValidationError):
        NodeInfo.model_validate({k: v for k, v in raw.items() if k != "service"})
