"""URL and option parsing, header escaping and the stream subject algebra: pure, no server."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventkit.brokers import from_url
from eventkit.brokers.nats import NatsBroker
from eventkit.brokers.nats._config import parse_settings
from eventkit.brokers.nats._headers import ESCAPED, from_nats, to_nats
from eventkit.brokers.nats._streams import (
    common_cover,
    covers,
    merge_subjects,
    overlaps,
    stream_name,
)
from eventkit.wire import ConfigError


def test_from_url_makes_a_nats_broker() -> None:
    broker = from_url("nats://127.0.0.1:4222", drain_timeout=2.0)
    assert isinstance(broker, NatsBroker)
    assert broker.url == "nats://127.0.0.1:4222"


def test_several_servers_and_credentials_apply_to_each() -> None:
    s = parse_settings("nats://alice:s%40cret@a:4222,b:4223")
    assert s.servers == ["nats://alice:s%40cret@a:4222", "nats://alice:s%40cret@b:4223"]
    assert s.display == "nats://a:4222,b:4223"  # no secrets in messages and logs


def test_token_in_url_and_settings_override() -> None:
    assert parse_settings("nats://tok@h:4222").servers == ["nats://tok@h:4222"]
    assert parse_settings("nats://h:4222", token="t2").servers == ["nats://t2@h:4222"]
    s = parse_settings("nats://h:4222", user="u", password="p")
    assert s.servers == ["nats://u:p@h:4222"]


def test_file_settings_in_query_and_keywords(tmp_path: Path) -> None:
    creds, seed = tmp_path / "app.creds", tmp_path / "seed.nk"
    creds.write_text("creds")
    seed.write_text("seed")
    s = parse_settings(f"tls://h:4222?creds={creds}", nkey=str(seed))
    assert (s.creds, s.nkey, s.tls) == (str(creds), str(seed), True)
    kwargs = s.connect_kwargs()
    assert kwargs["user_credentials"] == str(creds)
    assert kwargs["nkeys_seed"] == str(seed)
    assert "tls" not in kwargs  # tls:// without files: nats-py's default context


def test_options_pass_through_to_nats_py() -> None:
    kwargs = parse_settings("nats://h:4222", options={"ping_interval": 5}).connect_kwargs()
    assert kwargs["ping_interval"] == 5
    with pytest.raises(ConfigError, match="owns"):
        parse_settings("nats://h:4222", options={"error_cb": print})


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("nats://", "names no server"),
        ("nats://a:4222,,b:4222", "names no server"),
        ("nats://h:port", "not a number"),
        ("nats://h:99999", "not a number"),
        ("nats://h:4222/path", "path"),
        ("nats://h:4222?colour=red", "unknown NATS URL parameter"),
        ("amqp://h:5672", "nats://"),
    ],
)
def test_bad_urls_are_config_errors(url: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        NatsBroker(url)


def test_bad_options_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown NatsBroker option"):
        NatsBroker("nats://h:4222", drain_timout=1)
    with pytest.raises(ConfigError, match="drain_timeout"):
        NatsBroker("nats://h:4222", drain_timeout=0)
    with pytest.raises(ConfigError, match="replicas"):
        NatsBroker("nats://h:4222", replicas=7)
    with pytest.raises(ConfigError, match="tls_ca file"):
        NatsBroker("nats://h:4222", tls_ca="/nonexistent/ca.pem")
    with pytest.raises(ConfigError, match="creds file"):
        NatsBroker("nats://h:4222?creds=/nonexistent/app.creds")


def test_headers_pass_unchanged_without_a_copy() -> None:
    headers = {"ce-id": "1", "ce-type": "shop.order.placed", "content-type": "application/json"}
    assert to_nats(headers) is headers
    assert to_nats({}) is None
    assert from_nats({**headers, "Nats-Msg-Id": "1"}) == headers


def test_values_nats_would_alter_are_escaped_and_restored() -> None:
    headers = {"x-spaces": " a  b ", "x-lines": "one\r\ntwo", "x-plain": "ok"}
    wire = to_nats(headers)
    assert wire is not None
    assert wire[ESCAPED] == "x-spaces,x-lines"
    assert all(v == v.strip() and "\n" not in v for v in wire.values())
    assert from_nats(wire) == headers
    assert from_nats({"CE-ID": "x"}) == {"ce-id": "x"}


@pytest.mark.parametrize(
    ("general", "specific", "expected"),
    [
        ("a.>", "a.b", True),
        ("a.>", "a.b.>", True),
        ("a.>", "a", False),
        ("a.*", "a.b", True),
        ("a.*", "a.>", False),
        ("a.b", "a.*", False),
        ("a.*.c", "a.b.c", True),
        (">", "x.y", True),
        ("a.b", "a.b", True),
        ("a.b", "a.b.c", False),
    ],
)
def test_covers(general: str, specific: str, expected: bool) -> None:
    assert covers(general, specific) is expected


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("a.b.*", "a.*.c", True),
        ("a.b", "a.c", False),
        ("a.>", "a.b.c", True),
        ("a.*", "a.b.c", False),
        ("a.b", "a.b.c", False),
        ("*.x", "a.*", True),
        ("a", "a.>", False),
    ],
)
def test_overlaps(a: str, b: str, expected: bool) -> None:
    assert overlaps(a, b) is expected
    assert overlaps(b, a) is expected


def test_merging_keeps_subjects_pairwise_disjoint() -> None:
    assert common_cover("a.b.*", "a.*.c") == "a.*.*"
    assert common_cover("a.b", "a.b.c") == "a.>"
    assert merge_subjects(["a.b"], "a.c") == ["a.b", "a.c"]
    assert merge_subjects(["a.b", "a.c"], "a.*") == ["a.*"]
    assert merge_subjects(["a.>"], "a.b") == ["a.>"]
    assert merge_subjects(["a.b.*", "a.x"], "a.*.c") == ["a.x", "a.*.*"]
    subjects = merge_subjects(["s.1", "s.2.x", "s.3.>"], "s.*.x")
    assert all(not overlaps(x, y) for i, x in enumerate(subjects) for y in subjects[i + 1 :]), (
        subjects
    )


def test_stream_names_are_valid_and_distinct() -> None:
    assert stream_name("shop") == "eventkit-shop"
    odd = stream_name("a:b")
    assert odd.startswith("eventkit-a_b-") and odd != stream_name("a_b")


@pytest.mark.parametrize(
    ("url", "options", "mode"),
    [
        ("nats://h:4222", {}, "structured"),
        ("nats://h:4222?content_mode=structured", {}, "structured"),
        ("nats://h:4222?content_mode=binary", {}, "binary"),
        ("nats://h:4222", {"content_mode": "binary"}, "binary"),
        ("nats://h:4222", {"content_mode": "structured"}, "structured"),
        ("nats://h:4222?content_mode=binary", {"content_mode": "structured"}, "structured"),
        ("tls://u:p@a:4222,b:4222?content_mode=binary&name=app", {}, "binary"),
    ],
)
def test_content_mode_from_the_url_or_a_keyword(
    url: str, options: dict[str, str], mode: str
) -> None:
    assert parse_settings(url, **options).content_mode == mode
    broker = NatsBroker(url, **options)  # capabilities are known before connecting
    assert broker.capabilities.structured_events is (mode == "structured")
    assert from_url(url, **options).capabilities.structured_events is (mode == "structured")


@pytest.mark.parametrize("bad", ["", "Binary", "json", "structured,binary"])
def test_an_unknown_content_mode_is_a_config_error_naming_the_modes(bad: str) -> None:
    with pytest.raises(ConfigError, match=r"content_mode must be one of structured, binary"):
        NatsBroker(f"nats://h:4222?content_mode={bad}")
    with pytest.raises(ConfigError, match=r"structured, binary, got " + repr(bad)):
        NatsBroker("nats://h:4222", content_mode=bad)


def test_only_nats_publishes_structured_by_default() -> None:
    for url in ("memory://content-mode", "amqp://guest:guest@127.0.0.1:5672/", "http://h:8080"):
        assert from_url(url).capabilities.structured_events is False, url
