"""deploy/k8s/: every manifest valid for Kubernetes (the schemas kubernetes-validate ships, offline), and in step
with the app: probe paths, settings names, the Secret, the labels that tie the objects together; and the
Dockerfile in step with the app and the manifests (it cannot be built here)."""

import re
import tomllib
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from api.main import app
from core.settings import Settings
from tests.support import REPO

K8S = REPO / "deploy" / "k8s"
# The oldest Kubernetes the manifests are meant for (nothing in them is newer); strict: unknown fields are errors.
KUBERNETES_VERSION = "1.30"


def manifests() -> list[tuple[Path, dict]]:
    return [(path, doc) for path in sorted(K8S.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]


def by_kind() -> dict[str, dict]:
    return {doc["kind"]: doc for _, doc in manifests()}


@pytest.mark.parametrize("path, manifest", manifests(), ids=lambda v: v.name if isinstance(v, Path) else v["kind"])
def test_every_manifest_is_valid_kubernetes(path, manifest):
    kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


def test_the_manifests_are_the_expected_set():
    assert sorted(by_kind()) == ["ConfigMap", "Deployment", "HorizontalPodAutoscaler", "Secret", "Service"]


def test_a_misspelt_field_is_caught():
    deployment = by_kind()["Deployment"]
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_the_deployment_is_in_step_with_the_app():
    kinds = by_kind()
    pod = kinds["Deployment"]["spec"]["template"]
    container = pod["spec"]["containers"][0]
    paths = set(app.openapi()["paths"])
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready" in paths
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live" in paths
    assert container["startupProbe"]["httpGet"]["path"] == "/health/live"

    # Every ConfigMap key is a setting (a misspelt one would be ignored silently), and the port agrees.
    config = kinds["ConfigMap"]["data"]
    settings = {f"FACEGATE_{name.upper()}" for name in Settings.model_fields}
    assert set(config) <= settings, set(config) - settings
    assert container["ports"][0]["containerPort"] == int(config["FACEGATE_PORT"])
    assert {"FACEGATE_WEIGHTS_DIR", "FACEGATE_DATA_DIR"} <= set(config)
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {config["FACEGATE_WEIGHTS_DIR"], config["FACEGATE_DATA_DIR"]} <= mounts
    assert container["envFrom"] == [{"configMapRef": {"name": kinds["ConfigMap"]["metadata"]["name"]}}]

    # The database URL comes from the Secret, which holds a placeholder only.
    (database_url,) = [e for e in container["env"] if e["name"] == "DATABASE_URL"]
    secret = kinds["Secret"]
    assert database_url["valueFrom"]["secretKeyRef"] == {"name": secret["metadata"]["name"], "key": "DATABASE_URL"}
    assert "CHANGE-ME" in secret["stringData"]["DATABASE_URL"]

    # Requests at least the measured ~1.1 GB resident memory.
    assert container["resources"]["requests"]["memory"] == "1280Mi"
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True


def test_the_service_and_the_autoscaler_point_at_the_deployment():
    kinds = by_kind()
    deployment = kinds["Deployment"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert kinds["Service"]["spec"]["selector"].items() <= pod_labels.items()
    assert kinds["Service"]["spec"]["ports"][0]["targetPort"] == "http"
    target = kinds["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert kinds["HorizontalPodAutoscaler"]["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert "cpu" in deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]


def test_the_dockerfile_is_in_step_with_the_app_and_the_deployment():
    dockerfile = (REPO / "Dockerfile").read_text()
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    # Every package and module the project installs is copied into the image.
    copied = {part.rstrip("/").removeprefix("./") for line in re.findall(r"^COPY (.+)$", dockerfile, re.M)
              for part in line.split()}  # fmt: skip
    packages = {name.rstrip("*") for name in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert packages | {f"{m}.py" for m in project["tool"]["setuptools"]["py-modules"]} | {"alembic.ini"} <= copied
    # The command is the project's own entry point; the health check asks a route the app has.
    assert "facegate" in project["project"]["scripts"]
    assert re.search(r'^CMD \["sh", "-c", "facegate migrate && exec facegate serve"\]$', dockerfile, re.M)
    (health_path,) = re.findall(r"http://127\.0\.0\.1:8000(/[\w/]+)", dockerfile)
    assert health_path in app.openapi()["paths"]
    # Weights and data folders are the settings' folders and the Deployment's mounts, owned by the non-root user.
    for setting, folder in (("FACEGATE_WEIGHTS_DIR", "/models"), ("FACEGATE_DATA_DIR", "/data")):
        assert f"{setting}={folder}" in dockerfile and by_kind()["ConfigMap"]["data"][setting] == folder
    (user,) = re.findall(r"^USER (\d+):(\d+)$", dockerfile, re.M)
    pod_security = by_kind()["Deployment"]["spec"]["template"]["spec"]["securityContext"]
    assert user == (str(pod_security["runAsUser"]), str(pod_security["runAsGroup"])) and user[0] != "0"
