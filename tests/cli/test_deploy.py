"""``eventkit new service --kubernetes --health --tracing``: manifests Kubernetes accepts.

The generated objects are validated against the published Kubernetes JSON schemas (the ones
kubernetes-validate ships, strict: an unknown field fails), for the newest and an older
Kubernetes; the probes, grace period, Secret and resources are what deployment needs.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from eventkit import Settings
from tests.cli.util import env_for, eventkit, namespace

VERSIONS = (kubernetes_validate.latest_version(), "1.28.0")
SETTINGS = {f"EVENTKIT_{f.name.upper()}" for f in fields(Settings)}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("deploy")
    made = eventkit(
        "new", "service", "order-book", "--dir", str(where), "--kubernetes", "--tracing",
        env=env_for(namespace()),
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    return where / "order-book"


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_validates_against_the_kubernetes_schemas(
    project: Path, version: str
) -> None:
    docs = [doc for file in sorted((project / "k8s").glob("*.yaml")) for doc in documents(file)]
    assert sorted(doc["kind"] for doc in docs) == ["Deployment", "Secret", "Service"]
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)


def test_the_deployment_probes_drains_and_reads_the_broker_from_a_secret(project: Path) -> None:
    deployment, service = documents(project / "k8s" / "deployment.yaml")
    (secret,) = documents(project / "k8s" / "secret.yaml")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert container["livenessProbe"]["httpGet"] == {"port": "metrics", "path": "/healthz"}
    assert container["readinessProbe"]["httpGet"] == {"port": "metrics", "path": "/readyz"}
    (port,) = container["ports"]
    assert port["name"] == "metrics" and env["EVENTKIT_METRICS_PORT"]["value"] == str(
        port["containerPort"]
    )
    assert pod["terminationGracePeriodSeconds"] > float(env["EVENTKIT_DRAIN_TIMEOUT"]["value"])
    ref = env["EVENTKIT_BROKER"]["valueFrom"]["secretKeyRef"]
    assert ref["name"] == secret["metadata"]["name"] and ref["key"] in secret["stringData"]
    assert "value" not in env["EVENTKIT_BROKER"]
    assert container["resources"]["requests"].keys() == {"cpu", "memory"}
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert env["EVENTKIT_TRACING"]["value"] == "1"
    assert container["command"][:3] == ["opentelemetry-instrument", "eventkit", "run"]
    names = {name for name in env if name.startswith("EVENTKIT_")}
    assert names <= SETTINGS, names - SETTINGS


def test_compose_and_dockerfile_check_health_and_export_traces(project: Path) -> None:
    compose = yaml.safe_load((project / "compose.yaml").read_text())
    service = compose["services"]["order-book"]
    assert service["healthcheck"]["test"] == [
        "CMD", "eventkit", "health", "--url", "http://127.0.0.1:9464",
    ]  # fmt: skip
    assert {k for k in service["environment"] if k.startswith("EVENTKIT_")} <= SETTINGS
    assert service["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4317"
    assert "jaeger" in compose["services"] and "jaeger" in service["depends_on"]
    dockerfile = (project / "Dockerfile").read_text()
    assert "HEALTHCHECK" in dockerfile and "EXPOSE 9464" in dockerfile
    pyproject = (project / "pyproject.toml").read_text()
    assert "otel" in pyproject and "opentelemetry-distro" in pyproject


def test_without_options_the_project_is_unchanged(tmp_path: Path) -> None:
    made = eventkit("new", "service", "plain", "--dir", str(tmp_path), env=env_for(namespace()))
    assert made.returncode == 0, made.stderr
    assert not (tmp_path / "plain" / "k8s").exists()
    assert "HEALTHCHECK" not in (tmp_path / "plain" / "Dockerfile").read_text()
