"""``eventkit new service NAME --health --tracing --kubernetes``: a project ready to deploy.

Applied to a project ``eventkit new`` has just written, so it depends on no template's
wording: the compose file is read and written as YAML, the Dockerfile and pyproject.toml
are amended line by line.

- ``--health``: the service serves ``/healthz``, ``/readyz`` and ``/metrics`` on port 9464
  (``EVENTKIT_METRICS_PORT``); the Dockerfile and compose file get health checks
  (``eventkit health --url``), and the ``otel`` extra is installed for ``/metrics``.
- ``--tracing``: ``EVENTKIT_TRACING=1`` under ``opentelemetry-instrument``, which sets up the
  OpenTelemetry SDK from ``OTEL_*`` variables and exports over OTLP; compose adds Jaeger
  (http://localhost:16686) to look at the traces.
- ``--kubernetes`` (implies ``--health``): ``k8s/`` with a Deployment (liveness and readiness
  probes on those endpoints, resource requests, the broker URL from a Secret, a grace period
  longer than the drain), a Service for metrics, and the Secret.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

__all__ = ["METRICS_PORT", "apply"]

METRICS_PORT = 9464
DRAIN_TIMEOUT = 10
GRACE_PERIOD = 2 * DRAIN_TIMEOUT + 10
"""Seconds Kubernetes waits after SIGTERM: the drain of subscriptions and of the broker
connection (each bounded by the drain timeout), the registry leave, and room to spare."""
HEALTH_CHECK = ["eventkit", "health", "--url", f"http://127.0.0.1:{METRICS_PORT}"]
TRACING_PACKAGES = ("opentelemetry-distro>=0.48b0", "opentelemetry-exporter-otlp>=1.27")
OTLP_ENDPOINT = "http://jaeger:4317"


def apply(
    root: Path,
    *,
    name: str,
    target: str,
    health: bool,
    tracing: bool,
    kubernetes: bool,
) -> list[str]:
    """Amend the project at ``root`` (service ``name``, run as ``target``); returns the
    files it wrote or changed, relative to ``root``."""
    health = health or kubernetes
    if not (health or tracing):
        return []
    command = ["eventkit", "run", target]
    if tracing:
        command = ["opentelemetry-instrument", *command]
    env = _environment(name, health=health, tracing=tracing)
    _pyproject(root / "pyproject.toml", tracing=tracing)
    _dockerfile(root / "Dockerfile", command, env, health=health)
    _compose(root / "compose.yaml", name, command, env, health=health, tracing=tracing)
    changed = ["pyproject.toml", "Dockerfile", "compose.yaml"]
    if kubernetes:
        (root / "k8s").mkdir(exist_ok=True)
        for file, documents in manifests(name, command, env).items():
            (root / "k8s" / file).write_text(yaml.safe_dump_all(documents, sort_keys=False))
            changed.append(f"k8s/{file}")
    return changed


def _environment(name: str, *, health: bool, tracing: bool) -> dict[str, str]:
    env = {"EVENTKIT_LOG_FORMAT": "json", "EVENTKIT_DRAIN_TIMEOUT": str(DRAIN_TIMEOUT)}
    if health:
        env["EVENTKIT_METRICS_PORT"] = str(METRICS_PORT)
    if tracing:
        env.update(
            {
                "EVENTKIT_TRACING": "1",
                "OTEL_SERVICE_NAME": name,
                "OTEL_TRACES_EXPORTER": "otlp",
                "OTEL_METRICS_EXPORTER": "none",  # metrics are scraped from /metrics
                "OTEL_LOGS_EXPORTER": "none",
                "OTEL_EXPORTER_OTLP_ENDPOINT": OTLP_ENDPOINT,
            }
        )
    return env


def _pyproject(path: Path, *, tracing: bool) -> None:
    """Add the ``otel`` extra to the kit's requirement (and the tracing packages)."""
    lines = path.read_text().splitlines(keepends=True)

    def with_otel(match: re.Match[str]) -> str:
        extras = [e.strip() for e in (match.group(2) or "").split(",") if e.strip()]
        if "otel" not in extras:
            extras.append("otel")
        return f'"{match.group(1)}[{",".join(extras)}]'

    found = 0
    for i, line in enumerate(lines):
        if line.startswith("dependencies = ["):
            lines[i], found = re.subn(
                r'"(eventkit-micro|eventkit)(?:\[([^\]]*)\])?(?=[=<>!~;"\s])', with_otel, line
            )
            if tracing:
                packages = "".join(f'"{p}", ' for p in TRACING_PACKAGES)
                lines[i] = lines[i].replace("dependencies = [", f"dependencies = [{packages}", 1)
            break
    if not found:
        raise ValueError(f"{path} names no eventkit dependency to add the otel extra to")
    path.write_text("".join(lines))


def _dockerfile(path: Path, command: list[str], env: dict[str, str], *, health: bool) -> None:
    lines = [line for line in path.read_text().splitlines() if not line.startswith("CMD ")]
    lines += [f"ENV {key}={value}" for key, value in env.items()]
    if health:
        lines.append(f"EXPOSE {METRICS_PORT}")
        check = ", ".join(f'"{part}"' for part in HEALTH_CHECK)
        lines.append(f"HEALTHCHECK --interval=10s --timeout=5s --start-period=10s CMD [{check}]")
    lines.append("CMD [" + ", ".join(f'"{part}"' for part in command) + "]")
    path.write_text("\n".join(lines) + "\n")


def _compose(
    path: Path,
    name: str,
    command: list[str],
    env: dict[str, str],
    *,
    health: bool,
    tracing: bool,
) -> None:
    compose: dict[str, Any] = yaml.safe_load(path.read_text())
    services = compose["services"]
    service = services[name]
    service["command"] = command
    service["environment"] = {**service.get("environment", {}), **env}
    if health:
        service["ports"] = [f"{METRICS_PORT}:{METRICS_PORT}"]
        service["healthcheck"] = {
            "test": ["CMD", *HEALTH_CHECK],
            "interval": "10s",
            "timeout": "5s",
            "start_period": "10s",
            "retries": 3,
        }
    if tracing:
        services["jaeger"] = {
            "image": "jaegertracing/all-in-one:1.57",
            "environment": {"COLLECTOR_OTLP_ENABLED": "true"},
            "ports": ["16686:16686", "4317:4317"],
        }
        service["depends_on"] = [*service.get("depends_on", []), "jaeger"]
    path.write_text(yaml.safe_dump(compose, sort_keys=False))


def manifests(name: str, command: list[str], env: dict[str, str]) -> dict[str, list[Any]]:
    """The Kubernetes objects, by file: the Deployment and its metrics Service, the Secret."""

    def labels() -> dict[str, str]:  # a fresh dict each time: no YAML anchors in the output
        return {"app.kubernetes.io/name": name}

    secret = f"{name}-broker"
    container_env: list[dict[str, Any]] = [
        {
            "name": "EVENTKIT_BROKER",
            "valueFrom": {"secretKeyRef": {"name": secret, "key": "url"}},
        },
        {"name": "EVENTKIT_NODE_ID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        *({"name": key, "value": value} for key, value in env.items()),
    ]
    probe = {"port": "metrics"}
    port = {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels()},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels()},
            "template": {
                "metadata": {"labels": labels()},
                "spec": {
                    "terminationGracePeriodSeconds": GRACE_PERIOD,
                    "containers": [
                        {
                            "name": name,
                            "image": f"{name}:0.1.0",
                            "command": command,
                            "env": container_env,
                            "ports": [port],
                            "livenessProbe": {
                                "httpGet": {**probe, "path": "/healthz"},
                                "periodSeconds": 10,
                                "timeoutSeconds": 5,
                                "failureThreshold": 3,
                            },
                            "readinessProbe": {
                                "httpGet": {**probe, "path": "/readyz"},
                                "periodSeconds": 5,
                                "timeoutSeconds": 3,
                                "failureThreshold": 1,
                            },
                            "startupProbe": {
                                "httpGet": {**probe, "path": "/healthz"},
                                "periodSeconds": 2,
                                "failureThreshold": 30,
                            },
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "128Mi"},
                                "limits": {"memory": "256Mi"},
                            },
                            "securityContext": {
                                "runAsNonRoot": True,
                                "runAsUser": 10001,
                                "allowPrivilegeEscalation": False,
                            },
                        }
                    ],
                },
            },
        },
    }
    metrics_service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": f"{name}-metrics",
            "labels": labels(),
            "annotations": {
                "prometheus.io/scrape": "true",
                "prometheus.io/port": str(METRICS_PORT),
                "prometheus.io/path": "/metrics",
            },
        },
        "spec": {
            "selector": labels(),
            "ports": [{"name": "metrics", "port": METRICS_PORT, "targetPort": "metrics"}],
        },
    }
    broker_secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": secret, "labels": labels()},
        "type": "Opaque",
        # Replace before applying (or: kubectl create secret generic NAME-broker
        # --from-literal=url=nats://user:password@nats:4222); the URL may hold credentials.
        "stringData": {"url": "nats://nats:4222"},
    }
    return {"deployment.yaml": [deployment, metrics_service], "secret.yaml": [broker_secret]}
