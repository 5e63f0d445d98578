"""logs: a service that streams, both ways.

    Logs.Tail    server stream: the last lines of a log file, then (follow) lines as they
                 are written, until the caller stops
    Logs.Search  server stream: the matching lines of every file, yielded as they are found
    Logs.Append  client stream: lines sent one by one, appended to their files; the reply
                 counts them

    eventkit run examples.logs.service:svc
    printf '{"file": "app.log", "text": "hello"}\\n' | eventkit stream logs Logs.Append
    eventkit stream logs Logs.Tail '{"file": "app.log", "lines": 5, "follow": true}'

Settings: LOGS_DIR (default ``$TMPDIR/eventkit-logs``) holds the files; LOGS_POLL (0.2) is
how often a followed file is looked at, in seconds.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from pydantic import BaseModel, Field

from eventkit import Context, NotFound, Service

FileName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}$")]
"""A file in LOGS_DIR: no folders, no dot files."""


class TailRequest(BaseModel):
    file: FileName
    lines: int = Field(default=10, ge=0, le=10_000)
    follow: bool = False


class Line(BaseModel):
    file: str
    number: int
    text: str


class SearchRequest(BaseModel):
    pattern: str = Field(min_length=1)
    ignore_case: bool = True


class AppendLine(BaseModel):
    file: FileName
    text: str


class Appended(BaseModel):
    lines: int
    files: list[str]


svc = Service("logs", version="1.0.0", description="tails, searches and appends log files")


def folder() -> anyio.Path:
    default = os.path.join(tempfile.gettempdir(), "eventkit-logs")
    return anyio.Path(os.environ.get("LOGS_DIR") or default)


@svc.before_start
async def make_folder() -> None:
    await folder().mkdir(parents=True, exist_ok=True)


@svc.endpoint("Logs.Tail")
async def tail(req: TailRequest, ctx: Context) -> AsyncIterator[Line]:
    path = folder() / req.file
    if not await path.is_file():
        raise NotFound(f"no log file {req.file!r}; files: {', '.join(await _files()) or 'none'}")
    data = await path.read_bytes()
    size = data.rfind(b"\n") + 1  # up to the last complete line: follow reads the rest whole
    lines = data[:size].decode(errors="replace").splitlines()
    number = len(lines)
    shown = lines[-req.lines :] if req.lines else []
    for n, text in enumerate(shown, start=number - len(shown) + 1):
        yield Line(file=req.file, number=n, text=text)
    if not req.follow:
        return
    poll = float(os.environ.get("LOGS_POLL", "0.2"))
    while True:  # until the caller stops: its cancel closes this generator
        await anyio.sleep(poll)
        current = (await path.stat()).st_size
        if current < size:  # truncated or replaced: start over
            size = 0
        if current <= size:
            continue
        async with await path.open("rb") as f:
            await f.seek(size)
            chunk = await f.read(current - size)
        end = chunk.rfind(b"\n") + 1
        size += end
        for raw in chunk[:end].split(b"\n")[:-1]:
            number += 1
            yield Line(file=req.file, number=number, text=raw.decode(errors="replace"))


@svc.endpoint("Logs.Search")
async def search(req: SearchRequest) -> AsyncIterator[Line]:
    pattern = req.pattern.lower() if req.ignore_case else req.pattern
    for name in await _files():
        async with await (folder() / name).open("rb") as f:
            number = 0
            async for raw in f:
                number += 1
                text = raw.decode(errors="replace").rstrip("\n")
                if pattern in (text.lower() if req.ignore_case else text):
                    yield Line(file=name, number=number, text=text)


@svc.endpoint("Logs.Append")
async def append(lines: AsyncIterator[AppendLine]) -> Appended:
    count = 0
    files: set[str] = set()
    async for line in lines:
        async with await (folder() / line.file).open("a", encoding="utf-8") as f:
            await f.write(line.text.replace("\n", " ") + "\n")
        count += 1
        files.add(line.file)
    return Appended(lines=count, files=sorted(files))


async def _files() -> list[str]:
    return sorted([p.name async for p in folder().iterdir() if await p.is_file()])


if __name__ == "__main__":
    svc.run()
