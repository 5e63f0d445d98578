"""docker-compose.yml (and its RabbitMQ layer) parse, and name real modules, settings and files.

Docker is not needed: the files are read with PyYAML, each service's command is imported the
way `eventkit run` would, and every environment variable must be a setting eventkit reads
(an ``EVENTKIT_*`` field of Settings) or an example's documented setting.
"""

from __future__ import annotations

import importlib
from dataclasses import fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from eventkit import Service, Settings
from tests.cli.util import ROOT

SETTINGS = {f"EVENTKIT_{f.name.upper()}" for f in fields(Settings)}
BROKER_ENV = {"RABBITMQ_DEFAULT_USER", "RABBITMQ_DEFAULT_PASS"}  # the RabbitMQ image's own


def _load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((ROOT / name).read_text())
    assert isinstance(data, dict) and isinstance(data.get("services"), dict)
    return data


def _merged() -> dict[str, Any]:
    """docker-compose.yml with docker-compose.rabbitmq.yml layered on, as compose merges."""
    base = _load("docker-compose.yml")["services"]
    layer = _load("docker-compose.rabbitmq.yml")["services"]
    merged = {}
    for name, service in base.items():
        extra = layer.get(name, {})
        combined = {**service, **{k: v for k, v in extra.items() if k != "environment"}}
        combined["environment"] = {**service.get("environment", {}), **extra.get("environment", {})}
        merged[name] = combined
    assert set(layer) <= set(base), "the RabbitMQ layer names a service the base does not"
    return merged


def _documented(key: str, module: str) -> bool:
    """An example setting: read by the module's package and named in its README."""
    package = Path(importlib.import_module(module).__file__ or "").parent
    source = "".join(p.read_text() for p in [package.parent / "http.py", *package.glob("*.py")])
    return key in source and key in (package / "README.md").read_text()


def _check(services: dict[str, Any], broker_scheme: str) -> None:
    shop = {n: s for n, s in services.items() if "build" in s}
    assert {"frontend", "catalog", "cart", "checkout", "payment", "shipping", "email"} == set(shop)
    for name, service in shop.items():
        command = service["command"]
        assert command[:2] == ["eventkit", "run"], name
        module, attr = command[2].split(":")
        assert isinstance(getattr(importlib.import_module(module), attr), Service), name
        env = service["environment"]
        for key in env:
            assert key in SETTINGS or _documented(key, module), f"{name}: unknown setting {key}"
        settings = Settings.load(environ={k: str(v) for k, v in env.items()})
        url = urlsplit(settings.broker)
        assert url.scheme == broker_scheme and url.hostname in services, name
        assert url.hostname in service["depends_on"], name
    for name, service in services.items():
        for key in service.get("environment", {}) if name not in shop else ():
            assert key in BROKER_ENV, f"{name}: {key}"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).is_file(), f"{name} mounts {source}, which is missing"


def _check_health(services: dict[str, Any]) -> None:
    """Every container has a health check; a shop service's reads its own probe port, and
    waits for its broker to be healthy."""
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        if "build" not in service:
            continue
        port = Settings.load(environ={k: str(v) for k, v in service["environment"].items()})
        assert port.metrics_port is not None, name
        test = service["healthcheck"]["test"]
        assert test == [
            "CMD",
            "eventkit",
            "health",
            "--url",
            f"http://127.0.0.1:{port.metrics_port}",
        ]
        conditions = service["depends_on"]
        assert all(c == {"condition": "service_healthy"} for c in conditions.values()), name


def test_every_container_has_a_healthcheck() -> None:
    _check_health(_load("docker-compose.yml")["services"])
    _check_health(_merged())


def test_the_compose_file_runs_the_shop_on_nats() -> None:
    data = _load("docker-compose.yml")
    assert {"nats", "rabbitmq"} <= set(data["services"])
    _check(data["services"], "nats")


def test_the_rabbitmq_layer_moves_every_shop_service_to_rabbitmq() -> None:
    _check(_merged(), "amqp")


def test_the_dockerfile_installs_what_the_services_import() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert 'pip install ".[rabbitmq,examples,otel]"' in text
    assert "COPY examples ./examples" in text
