"""deploy/k8s/: every manifest valid for Kubernetes (the schemas kubernetes-validate ships, offline), and in step
with the app: probe paths, settings names, the Secret, the labels that tie the objects together; the properties
that keep a deployment alive: migrations before the API and outside its probes, long index builds CONCURRENTLY,
volumes sized for what the service writes, memory from the measured figure, volumes the non-root user can write,
restart policies. The Dockerfile in step with the app and the manifests (`make docker-smoke` builds and runs it),
and the wheel it installs holding every file the service reads."""

import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
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
    # Every package and module the project installs is in the build context (.dockerignore lets only them in).
    context = {line.removeprefix("!") for line in (REPO / ".dockerignore").read_text().splitlines() if line[:1] == "!"}
    packages = {name.rstrip("*") for name in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    modules = {f"{m}.py" for m in project["tool"]["setuptools"]["py-modules"]}
    assert packages | modules | {"pyproject.toml", "requirements.lock", *project["project"]["license-files"]} <= context
    # The base is an argument whose default is the official slim Python image.
    assert re.search(r"^ARG BASE_IMAGE=python:3\.11-slim$", dockerfile, re.M) and "FROM ${BASE_IMAGE}" in dockerfile
    # The dependencies are installed before the source is copied (their layer survives code changes), and the
    # project itself not editable.
    steps = re.findall(r"^(COPY|RUN) (.+)$", dockerfile.replace("\\\n", " "), re.M)
    source_copied = steps.index(("COPY", ". ."))
    assert any("-c requirements.lock -r" in step for kind, step in steps[:source_copied] if kind == "RUN")
    assert not re.search(r"pip install[^\n]* (-e|--editable) ", dockerfile)
    # The command is the project's own entry point; the health check asks a route the app has.
    assert "facegate" in project["project"]["scripts"]
    assert re.search(r'^CMD \["facegate", "serve"\]$', dockerfile, re.M)
    (health_path,) = re.findall(r"http://127\.0\.0\.1:8000(/[\w/]+)", dockerfile)
    assert health_path in app.openapi()["paths"]
    # Weights and data folders are the settings' folders and the Deployment's mounts, owned by the non-root user.
    for setting, folder in (("FACEGATE_WEIGHTS_DIR", "/models"), ("FACEGATE_DATA_DIR", "/data")):
        assert f"{setting}={folder}" in dockerfile and by_kind()["ConfigMap"]["data"][setting] == folder
    (user,) = re.findall(r"^USER (\d+):(\d+)$", dockerfile, re.M)
    pod_security = by_kind()["Deployment"]["spec"]["template"]["spec"]["securityContext"]
    assert user == (str(pod_security["runAsUser"]), str(pod_security["runAsGroup"])) and user[0] != "0"


def quantity_bytes(quantity: str) -> int:
    number, unit = re.fullmatch(r"(\d+)(Mi|Gi)", quantity).groups()  # type: ignore[union-attr]
    return int(number) * {"Mi": 2**20, "Gi": 2**30}[unit]


def test_migrations_run_before_the_api_and_outside_its_probes():
    """An init container migrates (a long migration is not killed by a probe); the API starts once it is done."""
    pod = by_kind()["Deployment"]["spec"]["template"]["spec"]
    (migrate,) = pod["initContainers"]
    (api,) = pod["containers"]
    assert migrate["command"] == ["facegate", "migrate"] and "command" not in api
    assert migrate["image"] == api["image"] and (migrate["envFrom"], migrate["env"]) == (api["envFrom"], api["env"])
    assert not {"startupProbe", "livenessProbe", "readinessProbe"} & set(migrate)
    # The startup probe waits for the models (the ONNX files built at a first start) but not for a migration.
    startup = api["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 300


def test_long_index_builds_run_concurrently():
    """From migration 0009 on, an index is built CONCURRENTLY: the running service keeps searching and enrolling
    (0009's rebuild takes 19 minutes at 1M members); with the migration lock outside a transaction (db/migrations)."""
    versions = sorted((REPO / "db" / "migrations" / "versions").glob("0*.py"))
    later = [path for path in versions if int(path.name[:4]) >= 9]
    assert later
    for path in later:
        source = path.read_text()
        assert "op.create_index(" not in source or "postgresql_concurrently=True" in source, path.name
        for statement in re.findall(r"CREATE (?:UNIQUE )?INDEX[^\n]*", source):
            assert "CONCURRENTLY" in statement, (path.name, statement)


@pytest.mark.models
def test_the_volumes_hold_what_the_service_writes(pipeline):
    """data holds the ONNX files a first start writes (measured here, as the pipeline wrote them) and models the
    weights, both with room to spare: a volume over its sizeLimit gets the pod evicted."""
    from core.settings import get_settings

    settings = get_settings()
    volumes = {
        v["name"]: v["emptyDir"]["sizeLimit"] for v in by_kind()["Deployment"]["spec"]["template"]["spec"]["volumes"]
    }
    onnx = sum(f.stat().st_size for f in (settings.data_dir / "onnx").rglob("*") if f.is_file())
    weights = sum(f.stat().st_size for f in settings.weights_dir.iterdir() if f.is_file())
    assert onnx > 0 and weights > 0
    assert 2 * onnx <= quantity_bytes(volumes["data"])
    assert 2 * weights <= quantity_bytes(volumes["models"])


def test_memory_comes_from_the_measured_service():
    """The service's measured resident memory (deploy/README.md) fits the request; the limit leaves room for a
    burst of large photos; neither is the old PyTorch figure (1,280 Mi)."""
    (api,) = by_kind()["Deployment"]["spec"]["template"]["spec"]["containers"]
    measured = int(re.search(r"resident memory: (\d+) MB", (REPO / "deploy" / "README.md").read_text()).group(1))  # type: ignore[union-attr]
    request = quantity_bytes(api["resources"]["requests"]["memory"])
    limit = quantity_bytes(api["resources"]["limits"]["memory"])
    assert measured * 10**6 <= request <= 1.5 * measured * 10**6
    assert limit >= 1.5 * request


def test_compose_volumes_are_writable_and_services_restart():
    compose = yaml.safe_load((REPO / "deploy" / "compose.yaml").read_text())
    services = compose["services"]
    for name, service in services.items():
        assert service["restart"] in ("unless-stopped", "always", "on-failure"), name
        for volume in service.get("volumes", []):
            # A named volume (Docker gives it the image folder's owner), never a host folder.
            source = volume.split(":")[0]
            assert source in compose["volumes"] and "/" not in source, (name, volume)
    # The migrations run once, before the API, from the same image.
    assert services["migrate"]["command"] == ["facegate", "migrate"]
    assert services["api"]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert services["migrate"]["image"] == services["api"]["image"]
    assert {"/models", "/data"} <= {v.split(":")[1] for v in services["api"]["volumes"]}


def test_the_wheel_holds_every_file_the_service_reads(tmp_path):
    """A non-editable install (the image's), built from the image's build context (what .dockerignore lets in),
    gets the pages, scripts, migrations and Alembic's configuration."""
    context = tmp_path / "context"
    for name in (line[1:] for line in (REPO / ".dockerignore").read_text().splitlines() if line[:1] == "!"):
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, context / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            context.mkdir(exist_ok=True)
            shutil.copy(REPO / name, context / name)
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation"]
    subprocess.run([*pip_wheel, "-w", str(tmp_path), str(context)], check=True)
    (wheel,) = tmp_path.glob("facegate-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    tracked = subprocess.run(
        ["git", "ls-files", "api", "core", "db", "services"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    assert tracked and set(tracked) <= shipped, sorted(set(tracked) - shipped)
    assert not {name for name in shipped if name.split("/")[0] in ("facegate_client", "tests", "bench")}


def test_the_version_is_written_once():
    """pyproject.toml's version is the API's (docs/openapi.json), the CHANGELOG's latest and the manifests' tag."""
    written = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert app.version == written
    assert re.search(r"^## (\S+)", (REPO / "CHANGELOG.md").read_text(), re.M).group(1) == written  # type: ignore[union-attr]
    images = {c["image"] for c in [*by_kind()["Deployment"]["spec"]["template"]["spec"]["containers"],
                                   *by_kind()["Deployment"]["spec"]["template"]["spec"]["initContainers"]]}  # fmt: skip
    assert images == {f"registry.example.com/facegate:{written}"}
