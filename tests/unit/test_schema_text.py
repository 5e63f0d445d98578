"""describe's rendering of JSON Schema: fields and types as go-micro lists them, from the schema
pydantic publishes for a model (the same schema a node puts in its registry record)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field, TypeAdapter

from eventkit.cli.schema_text import message_lines, type_name


class Colour(StrEnum):
    red = "red"
    blue = "blue"


class Address(BaseModel):
    city: str
    zip: str | None = None


class Line(BaseModel):
    sku: str
    quantity: int = 1


class Node(BaseModel):
    name: str
    children: list[Node] = Field(default_factory=list)


class Order(BaseModel):
    id: str = Field(min_length=1)
    total: float
    paid: bool
    placed: datetime
    colour: Colour
    mode: Literal["fast", "slow"] = "fast"
    tags: list[str] = []
    counts: dict[str, int]
    note: str | None = None
    address: Address
    lines: list[Line]
    extra: Any = None
    comment: str = Field(default_factory=str)


def test_a_model_is_listed_field_by_field_with_nested_models_expanded() -> None:
    assert message_lines(Order.model_json_schema()) == [
        "Order {",
        "    id string",
        "    total number",
        "    paid boolean",
        "    placed string(date-time)",
        "    colour Colour",
        '    mode "fast" | "slow" = "fast"',
        "    tags []string = []",
        "    counts map[string]integer",
        "    note string | null = null",
        "    address Address {",
        "        city string",
        "        zip string | null = null",
        "    }",
        "    lines []Line {",
        "        sku string",
        "        quantity integer = 1",
        "    }",
        "    extra any = null",
        "    comment string optional",
        "}",
    ]


def test_a_recursive_model_ends_in_its_name() -> None:
    assert message_lines(Node.model_json_schema()) == [
        "Node {",
        "    name string",
        "    children []Node optional",
        "}",
    ]


def test_schemas_that_are_not_objects_are_one_type() -> None:
    assert message_lines({}) == ["any JSON"]
    assert message_lines(TypeAdapter(list[int]).json_schema()) == ["[]integer"]
    assert message_lines(TypeAdapter(str).json_schema()) == ["string"]
    assert type_name(TypeAdapter(Colour).json_schema(), {}) == '"red" | "blue"'
