"""logs, the streaming example: in this process on memory://, through the gateway over HTTP
(server-sent events and JSON lines), and from the `eventkit stream` command on NATS."""

from __future__ import annotations

import json
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import anyio
import pytest

from eventkit import NotFound
from eventkit.testing import run as run_on_memory
from examples.gateway.service import svc as gateway
from examples.logs.service import Appended, AppendLine, Line, SearchRequest, TailRequest
from examples.logs.service import svc as logs
from tests.cli.util import (
    EVENTKIT,
    Background,
    env_for,
    eventkit,
    namespace,
    run_service,
    wait_listed,
)
from tests.servers import free_port

pytestmark = pytest.mark.anyio


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LOGS_DIR", str(tmp_path))
    monkeypatch.setenv("LOGS_POLL", "0.05")
    return tmp_path


async def test_append_tail_search_and_follow(folder: Path) -> None:
    async with run_on_memory(logs) as kit:
        async with kit.stream("logs", "Logs.Append", response=Appended) as upload:
            for i in range(5):
                await upload.send(AppendLine(file="app.log", text=f"line {i}"))
            await upload.send(AppendLine(file="db.log", text="slow query"))
            await upload.close_send()
            (done,) = [reply async for reply in upload]
        assert done == Appended(lines=6, files=["app.log", "db.log"])
        tail = kit.stream("logs", "Logs.Tail", TailRequest(file="app.log", lines=2), response=Line)
        assert [(line.number, line.text) async for line in tail] == [(4, "line 3"), (5, "line 4")]
        search = kit.stream("logs", "Logs.Search", SearchRequest(pattern="QUERY"), response=Line)
        assert [(line.file, line.text) async for line in search] == [("db.log", "slow query")]
        with pytest.raises(NotFound, match=r"nope\.log"):
            await anext(kit.stream("logs", "Logs.Tail", TailRequest(file="nope.log")))

        follow = TailRequest(file="app.log", lines=1, follow=True)
        async with kit.stream("logs", "Logs.Tail", follow, response=Line) as followed:
            assert (await anext(followed)).text == "line 4"
            with (folder / "app.log").open("a") as f:
                f.write("written later\n")
            with anyio.fail_after(10):
                assert (await anext(followed)).text == "written later"


async def _lines(response: aiohttp.ClientResponse) -> AsyncIterator[str]:
    async for raw in response.content:
        yield raw.decode().rstrip("\n")


async def test_the_gateway_streams_as_events_and_json_lines(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (folder / "app.log").write_text("".join(f"line {i}\n" for i in range(3)))
    port = free_port()
    monkeypatch.setenv("GATEWAY_HTTP_PORT", str(port))
    base = f"http://127.0.0.1:{port}"
    async with run_on_memory(logs, gateway), aiohttp.ClientSession() as http:
        async with http.get(f"{base}/logs/app.log?lines=2") as response:
            assert response.status == 200
            assert response.headers["content-type"] == "application/x-ndjson"
            lines = [json.loads(line) async for line in _lines(response)]
        assert [line["text"] for line in lines] == ["line 1", "line 2"]

        events = {"accept": "text/event-stream"}
        async with http.get(f"{base}/logs/app.log?lines=1", headers=events) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            body = await response.text()
        assert body == (
            'data: {"file":"app.log","number":3,"text":"line 2"}\n\nevent: end\ndata: {}\n\n'
        )

        async with http.get(f"{base}/logs/nope.log", headers=events) as response:
            body = await response.text()
        assert body.startswith("event: error\ndata: ")
        assert json.loads(body.split("data: ", 1)[1])["code"] == 404

        async with http.post(f"{base}/stream/logs/Logs.Nope", json={}) as response:
            assert response.status == 404
            assert (await response.json())["code"] == 404

        search = {"pattern": "LINE 1"}
        async with http.post(f"{base}/stream/logs/Logs.Search", json=search) as response:
            assert [json.loads(line) async for line in _lines(response)] == [
                {"file": "app.log", "number": 2, "text": "line 1"}
            ]

        url = f"{base}/logs/app.log?lines=1&follow=true"
        async with http.get(url, headers=events) as response:
            with anyio.fail_after(10):
                last = await response.content.readuntil(b"\n\n")
                assert json.loads(last.decode().removeprefix("data: "))["text"] == "line 2"
                with (folder / "app.log").open("a") as f:
                    f.write("new line\n")
                new = await response.content.readuntil(b"\n\n")
            assert json.loads(new.decode().removeprefix("data: "))["text"] == "new line"
        # The client left: the gateway's stream, and the handler that followed the file, end.


def test_the_stream_command_sends_stdin_and_prints_json_lines(nats: None, tmp_path: Path) -> None:
    env = env_for(namespace(), LOGS_DIR=str(tmp_path), LOGS_POLL="0.05")
    service = run_service("examples.logs.service:svc", env)
    try:
        wait_listed({"logs"}, env)
        items = "".join(
            json.dumps({"file": "app.log", "text": f"line {i}"}) + "\n" for i in range(3)
        )
        upload = eventkit("stream", "logs", "Logs.Append", input=items, env=env)
        assert upload.returncode == 0, upload.stderr
        assert json.loads(upload.stdout) == {"lines": 3, "files": ["app.log"]}

        tail = eventkit("stream", "logs", "Logs.Tail", '{"file": "app.log", "lines": 2}', env=env)
        assert tail.returncode == 0, tail.stderr
        assert [json.loads(line)["text"] for line in tail.stdout.splitlines()] == [
            "line 1",
            "line 2",
        ]
        described = eventkit("describe", "logs", env=env)
        assert "Logs.Tail (server stream)" in described.stdout
        assert "Logs.Append (client stream)" in described.stdout

        follow = Background(
            [*EVENTKIT, "stream", "logs", "Logs.Tail", '{"file": "app.log", "follow": true}'],
            env=env,
        )
        try:
            follow.wait_for('"line 2"', timeout=20)
            with (tmp_path / "app.log").open("a") as f:
                f.write("followed\n")
            follow.wait_for('"followed"', timeout=20)
        finally:
            assert follow.stop(signal.SIGINT) == 130, follow.output
        service.wait_for("Logs.Tail: stream to .* cancelled", timeout=20)
    finally:
        assert service.stop() == 0, service.output
