"""The public facade: eventkit.__all__ is explicit, sorted, and every name exists."""

from __future__ import annotations

import eventkit


def test_all_is_sorted_and_complete() -> None:
    names = list(eventkit.__all__)
    assert names == sorted(names, key=lambda n: (n.startswith("_"), n)) or names == sorted(names)
    for name in names:
        assert hasattr(eventkit, name), name


def test_no_public_name_left_out() -> None:
    public = {n for n in vars(eventkit) if not n.startswith("_")}
    modules = {n for n, v in vars(eventkit).items() if type(v).__name__ == "module"}
    assert public - modules - set(eventkit.__all__) == set()
