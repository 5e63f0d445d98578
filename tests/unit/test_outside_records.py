"""Services eventkit did not start, folded into the registry view (pure: no loop, no I/O)."""

from __future__ import annotations

from eventkit.brokers.base import EndpointDescription, ServiceDescription
from eventkit.discovery import RegistryView, node_record
from eventkit.discovery._outside import outside_record


def found(version: str = "1.2.0") -> ServiceDescription:
    return ServiceDescription(
        name="py-adder",
        node_id="NUID123",
        version=version,
        metadata={"lang": "py"},
        endpoints=[EndpointDescription("add", "math.add", "q", {"unit": "int"})],
        kind="nats-micro",
    )


def test_an_outside_service_becomes_a_record_of_its_kind() -> None:
    record = outside_record(found(), ttl=30.0)
    assert (record.id, record.service, record.version, record.kind) == (
        "NUID123",
        "py-adder",
        "1.2.0",
        "nats-micro",
    )
    (endpoint,) = record.endpoints
    assert (endpoint.name, endpoint.subject, endpoint.metadata) == (
        "add",
        "math.add",
        {"unit": "int"},
    )
    assert record.metadata == {"lang": "py"} and record.started == 0.0


def test_finding_it_again_changes_nothing_but_its_expiry() -> None:
    view = RegistryView()
    first = view.apply("announce", outside_record(found(), ttl=30.0), now=100.0)
    assert first is not None and first.kind == "added"
    assert view.apply("announce", outside_record(found(), ttl=30.0), now=120.0) is None
    assert view.expire(140.0) == []  # kept alive by the second find
    (gone,) = view.expire(150.0)
    assert gone.kind == "removed" and gone.reason == "expired"


def test_the_view_lists_kinds_apart() -> None:
    view = RegistryView()
    view.apply("announce", outside_record(found(), ttl=30.0), now=1.0)
    view.apply(
        "announce", node_record(node_id="n1", service="py-adder", version="1.2.0", ttl=30.0), 1.0
    )
    kinds = [(info.name, info.kind, len(info.nodes)) for info in view.services()]
    assert kinds == [("py-adder", "eventkit", 1), ("py-adder", "nats-micro", 1)]
