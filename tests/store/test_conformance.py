"""The store's promises, checked on every backend (see conftest.py for the targets)."""

from __future__ import annotations

import anyio
import pytest
from pydantic import BaseModel

from eventkit import ConfigError, RevisionConflict
from eventkit.store import Change, Entry, InvalidValue

from .conftest import StoreTarget

pytestmark = pytest.mark.anyio


class Cart(BaseModel):
    user: str
    items: list[str] = []


async def test_put_get_delete_typed(target: StoreTarget) -> None:
    async with target.store() as store:
        carts = store(target.bucket_name(), Cart)
        assert await carts.get("c1") is None
        revision = await carts.put("c1", Cart(user="ada", items=["mug"]))
        entry = await carts.get("c1")
        assert entry == Entry(carts.name, "c1", Cart(user="ada", items=["mug"]), revision)
        assert isinstance(entry.value, Cart)
        second = await carts.put("c1", Cart(user="ada", items=["mug", "tea"]))
        assert second > revision
        assert (await carts.get("c1")) == Entry(
            carts.name, "c1", Cart(user="ada", items=["mug", "tea"]), second
        )
        await carts.delete("c1")
        assert await carts.get("c1") is None
        await carts.delete("never-there")  # deleting an absent key is no error


async def test_values_survive_between_stores(target: StoreTarget) -> None:
    name = target.bucket_name()
    async with target.store() as writer:
        await writer(name, Cart).put("c1", Cart(user="bo"))
    async with target.store() as reader:
        entry = await reader(name, Cart).get("c1")
        assert entry is not None and entry.value == Cart(user="bo")


async def test_untyped_and_bytes_buckets(target: StoreTarget) -> None:
    async with target.store() as store:
        name = target.bucket_name()
        anything = store(name)
        await anything.put("n", {"count": 3, "tags": ["a"]})
        assert (await anything.get("n")).value == {"count": 3, "tags": ["a"]}  # type: ignore[union-attr]
        raw = store(name, bytes)
        await raw.put("b", b"\x00\xffnot json")
        assert (await raw.get("b")).value == b"\x00\xffnot json"  # type: ignore[union-attr]
        with pytest.raises(InvalidValue, match="not a valid Cart"):
            await store(name, Cart).get("b")


async def test_keys_by_prefix(target: StoreTarget) -> None:
    async with target.store() as store:
        bucket = store(target.bucket_name())
        for key in ("a.b", "a.bc", "a.b.c", "ab", "a_b", "z"):
            await bucket.put(key, 1)
        await bucket.put("gone", 1)
        await bucket.delete("gone")
        assert await bucket.keys() == ["a.b", "a.b.c", "a.bc", "a_b", "ab", "z"]
        assert await bucket.keys("a.b") == ["a.b", "a.b.c", "a.bc"]
        assert await bucket.keys("a.b.") == ["a.b.c"]
        assert await bucket.keys("a_") == ["a_b"]  # '_' is a key character, not a wildcard
        assert await bucket.keys("nothing") == []


async def test_compare_and_set(target: StoreTarget) -> None:
    async with target.store() as store:
        carts = store(target.bucket_name(), Cart)
        first = await carts.create("c1", Cart(user="ada"))
        with pytest.raises(RevisionConflict):
            await carts.create("c1", Cart(user="bo"))
        second = await carts.put("c1", Cart(user="ada", items=["x"]), revision=first)
        with pytest.raises(RevisionConflict):
            await carts.put("c1", Cart(user="eve"), revision=first)  # stale
        with pytest.raises(RevisionConflict):
            await carts.delete("c1", revision=first)
        assert (await carts.get("c1")).value == Cart(user="ada", items=["x"])  # type: ignore[union-attr]
        await carts.delete("c1", revision=second)
        third = await carts.create("c1", Cart(user="cy"))  # absent again: create works
        assert third > second
        with pytest.raises(RevisionConflict):
            await carts.put("c2", Cart(user="x"), revision=third)  # c2 is absent, not at third


async def test_concurrent_writers_lose_no_update(target: StoreTarget) -> None:
    """Writers on separate connections add to one counter with compare-and-set."""
    name = target.bucket_name()
    writers, each = 4, 15
    async with target.store() as a, target.store() as b:
        counters = [a(name, int), b(name, int)]

        async def add(index: int) -> None:
            bucket = counters[index % 2]
            for _ in range(each):
                await bucket.update("count", lambda n: (n or 0) + 1)

        async with anyio.create_task_group() as tg:
            for index in range(writers):
                tg.start_soon(add, index)
        entry = await counters[0].get("count")
        assert entry is not None and entry.value == writers * each


async def test_watch_sees_every_change_in_order(target: StoreTarget) -> None:
    name = target.bucket_name()
    async with target.store() as watching, target.store() as writing:
        bucket = writing(name, int)
        await bucket.put("w.before", 0)  # before the watch: not a change it reports
        expected: list[tuple[str, str, int | None, int]] = []
        seen: list[Change[int]] = []
        async with watching(name, int).watch("w.") as changes:

            async def write() -> None:
                for i in range(60):
                    key = f"w.k{i % 4}"
                    revision = await bucket.put(key, i)
                    expected.append(("put", key, i, revision))
                    await bucket.put(f"other.{i}", i)  # outside the prefix
                    if i % 10 == 9:
                        expected.append(("delete", key, None, await bucket.delete(key)))

            async with anyio.create_task_group() as tg:
                tg.start_soon(write)
                with anyio.fail_after(30):
                    async for change in changes:
                        seen.append(change)
                        if len(seen) == 66:
                            break
        assert [(c.op, c.key, c.value, c.revision) for c in seen] == expected
        assert [c.revision for c in seen] == sorted(c.revision for c in seen)


async def test_watch_initial_values_then_changes(target: StoreTarget) -> None:
    async with target.store() as store:
        bucket = store(target.bucket_name(), int)
        first = await bucket.put("i.a", 1)
        await bucket.put("i.b", 2)
        second = await bucket.put("i.a", 3)
        await bucket.put("x", 9)
        await bucket.put("i.gone", 5)
        await bucket.delete("i.gone")
        async with bucket.watch("i.", initial=True) as changes:
            later = await bucket.put("i.c", 4)
            got = []
            with anyio.fail_after(10):
                async for change in changes:
                    got.append((change.op, change.key, change.value))
                    if len(got) == 3:
                        break
        assert first < second < later
        assert got == [("put", "i.b", 2), ("put", "i.a", 3), ("put", "i.c", 4)]


async def test_ttl_expires(target: StoreTarget) -> None:
    async with target.store() as store:
        bucket = store(target.bucket_name(), str)
        await bucket.put("session", "s1", ttl=1)
        await bucket.put("kept", "k")
        revision = await bucket.put("renewed", "r", ttl=1)
        assert (await bucket.get("session")) is not None
        await bucket.put("renewed", "r2", revision=revision)  # no ttl now: kept
        with anyio.fail_after(20):
            while await bucket.get("session") is not None:
                await anyio.sleep(0.2)
        assert await bucket.keys() == ["kept", "renewed"]
        assert await bucket.create("session", "s2") > revision  # expired: absent, so create works


async def test_bad_input_is_a_clear_error(target: StoreTarget) -> None:
    async with target.store() as store:
        carts = store(target.bucket_name(), Cart)
        for key in ("", ".a", "a.", "a..b", "a b", "a*", "a>"):
            with pytest.raises(ConfigError, match="key"):
                await carts.put(key, Cart(user="x"))
        with pytest.raises(InvalidValue, match="nothing was written"):
            await carts.put("c", {"not": "a cart"})  # type: ignore[arg-type]
        with pytest.raises(InvalidValue, match="ttl"):
            await carts.put("c", Cart(user="x"), ttl=0)
        assert await carts.keys() == []
    with pytest.raises(ConfigError, match="bucket name"):
        store("bad name")
