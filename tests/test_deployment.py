"""The deployment: compose.yaml, Prometheus and Grafana name only what exists, the lock file pins
what pyproject.toml asks for, and every role of the image starts from deploy/entrypoint.sh and
answers on loopback, outside a container (no container engine runs on these machines)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import servers
import yaml
from fastapi.testclient import TestClient
from packaging.requirements import Requirement
from prometheus_client.parser import text_string_to_metric_families

from m5_assets.defs.instance_storage import PG_SETTINGS
from m5_assets.settings import data_paths
from m5_serving.app import create_app
from m5_serving.config import ServingSettings

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES = COMPOSE["services"]
BIN = Path(sys.executable).parent


def entrypoint_roles() -> set[str]:
    """The roles deploy/entrypoint.sh's case statement starts."""
    script = (DEPLOY / "entrypoint.sh").read_text()
    return set(re.findall(r"^  ([a-z-]+)\)$", script, flags=re.MULTILINE))


def image_path(container_path: str) -> Path:
    """The repository file the image holds at ``container_path`` (the Dockerfile copies deploy/ to /app/deploy)."""
    assert container_path.startswith("/app/deploy/"), container_path
    return DEPLOY / container_path.removeprefix("/app/deploy/")


# --- files -----------------------------------------------------------------------------------


def test_the_lock_pins_every_dependency_and_each_pin_satisfies_pyproject():
    import tomllib

    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version and " " not in line, f"requirements.lock: {line!r} is not name==version"
            pins[name.lower().replace("_", "-")] = version
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for spec in map(Requirement, declared):
        name = spec.name.lower().replace("_", "-")
        assert name in pins, f"requirements.lock lacks {spec.name} (run make lock)"
        assert spec.specifier.contains(pins[name], prereleases=True), (
            f"requirements.lock pins {name}=={pins[name]}, pyproject.toml asks {spec}"
        )
        for extra in spec.extras:  # pandera[pandas] needs pandas pinned too
            assert extra in pins, f"requirements.lock lacks {extra}, an extra of {spec}"


def test_the_dockerfile_builds_from_the_lock_runs_as_a_user_and_starts_through_the_entrypoint():
    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+) AS (\S+)$", dockerfile, flags=re.MULTILINE)
    assert [stage for _, stage in stages] == ["build", "runtime"] and {base for base, _ in stages} == {
        "${PYTHON_IMAGE}"
    }
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in dockerfile
    runtime = dockerfile.split("AS runtime", 1)[1]
    assert re.search(r"^USER m5$", runtime, flags=re.MULTILINE)
    assert not re.search(r"\b(gcc|g\+\+|build-essential|clang)\b", runtime), "the runtime stage installs no compiler"
    assert "-r requirements.lock" in dockerfile and "--only-binary=:all:" in dockerfile
    for source in re.findall(r"^COPY (?!--from)(\S+)", dockerfile, flags=re.MULTILINE):
        assert (ROOT / source).exists(), f"the Dockerfile copies {source}, which the repository lacks"
    entrypoint = json.loads(re.search(r"^ENTRYPOINT (.+)$", dockerfile, flags=re.MULTILINE).group(1))
    healthcheck = json.loads(re.search(r"HEALTHCHECK .* CMD (\[.+\])$", dockerfile, flags=re.MULTILINE).group(1))
    assert image_path(entrypoint[0]) == DEPLOY / "entrypoint.sh" and image_path(healthcheck[-1]).is_file()
    assert os.access(DEPLOY / "entrypoint.sh", os.X_OK)
    assert json.loads(re.search(r"^CMD (.+)$", dockerfile, flags=re.MULTILINE).group(1))[0] in entrypoint_roles()


def test_compose_names_only_services_roles_files_and_settings_that_exist():
    assert set(SERVICES) == {
        "postgres",
        "redis",
        "code-server",
        "webserver",
        "daemon",
        "api",
        "dashboard",
        "prometheus",
        "grafana",
    }
    roles = entrypoint_roles()
    assert roles == {"code-server", "webserver", "daemon", "api", "dashboard"}
    dockerfile_stages = re.findall(r"^FROM \S+ AS (\S+)$", (ROOT / "Dockerfile").read_text(), flags=re.MULTILINE)
    declared_volumes = set(COMPOSE["volumes"])
    for name, service in SERVICES.items():
        if "build" in service:
            assert (
                service["build"]["target"] in dockerfile_stages
                and (ROOT / service["build"]["context"] / "Dockerfile").is_file()
            )
            assert service["command"] == [name], f"{name} runs the role of its own name"
            assert service["command"][0] in roles
            health = service["healthcheck"]["test"]
            assert health[:2] == ["CMD", "python"] and image_path(health[2]).is_file() and health[3] == name
        else:
            assert "image" in service and ":" in service["image"] and not service["image"].endswith(":latest"), (
                f"{name}: pin the image"
            )
            assert service["healthcheck"]["test"]
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in SERVICES and condition["condition"] in ("service_healthy", "service_started")
            assert "healthcheck" in SERVICES[dependency] or condition["condition"] == "service_started"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts {source}, which the repository lacks"
            elif not source.startswith("$"):
                assert source in declared_volumes, f"{name} mounts the undeclared volume {source}"
    # Every Dagster process opens the instance: all of them get the same Postgres settings.
    for name in ("code-server", "webserver", "daemon"):
        env = SERVICES[name]["environment"]
        assert set(PG_SETTINGS) <= set(env) and env["DAGSTER_PG_HOST"] == "postgres"
        assert env["M5_CODE_SERVER_HOST"] == "code-server"
        assert env["DAGSTER_PG_USER"] == SERVICES["postgres"]["environment"]["POSTGRES_USER"]
        assert env["DAGSTER_PG_DB"] == SERVICES["postgres"]["environment"]["POSTGRES_DB"]
    # The data folder is one named volume, shared by every role.
    for name in roles:
        assert "m5-data:/app/data" in SERVICES[name]["volumes"]
    # Secrets are never defaults in the file: compose refuses to start without them.
    assert "${DAGSTER_PG_PASSWORD:?" in SERVICES["code-server"]["environment"]["DAGSTER_PG_PASSWORD"]
    assert "${M5_API_KEYS:?" in SERVICES["api"]["environment"]["M5_API_KEYS"]
    # The API's online store is the compose service, on Redis's port.
    redis_url = SERVICES["api"]["environment"]["M5_API_REDIS_URL"]
    assert redis_url.startswith("redis://redis:6379/") and "redis-server" in SERVICES["redis"]["command"]


def test_prometheus_scrapes_the_api_service_where_it_listens():
    mounted = {v.split(":")[1]: v.split(":")[0] for v in SERVICES["prometheus"]["volumes"]}
    config = yaml.safe_load((ROOT / mounted["/etc/prometheus/prometheus.yml"]).read_text())
    (job,) = config["scrape_configs"]
    (target,) = job["static_configs"][0]["targets"]
    host, port = target.split(":")
    assert host == "api" and job["metrics_path"] == "/metrics"
    assert any(p.endswith(f":{port}") for p in SERVICES["api"]["ports"])
    image_env = dict(re.findall(r"(M5_API_PORT)=(\d+)", (ROOT / "Dockerfile").read_text()))
    assert image_env["M5_API_PORT"] == port


def _exported_sample_names(warehouse_dir) -> set[str]:
    app = create_app(ServingSettings(paths=data_paths(warehouse_dir), rate_limit_per_minute=0), watch=False)
    with TestClient(app) as client:
        assert client.get("/health").status_code == 200
        assert client.get("/no-such-route").status_code == 404
        text = client.get("/metrics").text
    return {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}


def test_the_grafana_dashboard_asks_only_for_metrics_the_api_exports(warehouse_dir):
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "m5-api.json").read_text())
    datasource = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yaml").read_text())[
        "datasources"
    ][0]
    assert datasource["url"] == "http://prometheus:9090" and "prometheus" in SERVICES
    exported = _exported_sample_names(warehouse_dir)
    titles, asked = set(), set()
    for panel in dashboard["panels"]:
        titles.add(panel["title"])
        assert panel["datasource"]["uid"] == datasource["uid"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == datasource["uid"] and target["expr"].strip()
            assert target["expr"].count("(") == target["expr"].count(")"), target["expr"]
            asked |= set(re.findall(r"\bm5_[a-z0-9_]+", target["expr"]))
    assert {"Request rate by route", "Latency percentiles", "Error rate", "Snapshot age"} <= titles
    assert asked and asked <= exported, (
        f"the dashboard asks for {sorted(asked - exported)}, which /metrics does not export"
    )
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    provider = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "dashboards" / "m5.yaml").read_text())[
        "providers"
    ][0]
    mounted = {v.split(":")[1]: v.split(":")[0] for v in SERVICES["grafana"]["volumes"]}
    assert (ROOT / mounted[provider["options"]["path"]] / "m5-api.json").is_file()


# --- the roles, started as the image starts them -----------------------------------------------


@pytest.fixture
def role_env(tmp_path, warehouse_dir) -> dict:
    """The image's environment, on loopback: a DAGSTER_HOME holding only dagster.yaml, the instance
    under tmp_path (SQLite: the Postgres test covers the other storage), the served warehouse."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if k not in PG_SETTINGS and k != "PROMETHEUS_MULTIPROC_DIR"}
    env |= data_paths(tmp_path / "instance").dagster_instance_env()
    env |= {
        "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        "DAGSTER_HOME": str(home),
        "M5_DATA_DIR": str(warehouse_dir),
        "M5_BIND_HOST": "127.0.0.1",
        "M5_ROLE_FILE": str(tmp_path / "role"),
        "M5_CODE_SERVER_HOST": "127.0.0.1",
        "M5_CODE_SERVER_PORT": str(servers.free_port()),
        "M5_WEBSERVER_PORT": str(servers.free_port()),
        "M5_API_PORT": str(servers.free_port()),
        "M5_DASHBOARD_PORT": str(servers.free_port()),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
    }
    return env


def _healthy(role: str | None, env: dict) -> bool:
    args = [role] if role else []
    return subprocess.run([sys.executable, str(DEPLOY / "healthcheck.py"), *args], env=env, timeout=60).returncode == 0


def _role(role: str, env: dict, tmp_path: Path):
    return servers.started([str(DEPLOY / "entrypoint.sh"), role], env, tmp_path / f"{role}.log")


def _graphql(port: str, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", json.dumps({"query": query}).encode(), {"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)["data"]


LOCATIONS = """{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus
  locationOrLoadError { ... on RepositoryLocation { repositories { jobs { name } } } } } } } }"""


def test_the_dagster_roles_start_and_the_webserver_loads_the_code_server(role_env, tmp_path):
    for role in ("code-server", "webserver", "daemon"):
        assert not _healthy(role, role_env), f"{role} reported healthy before it started"
    with contextlib.ExitStack() as stack:
        for role in ("code-server", "webserver", "daemon"):  # in compose's depends_on order
            process = stack.enter_context(_role(role, role_env, tmp_path))
            servers.wait_until(lambda: _healthy(role, role_env), process, role)  # noqa: B023 - waited for here
        (entry,) = _graphql(role_env["M5_WEBSERVER_PORT"], LOCATIONS)["workspaceOrError"]["locationEntries"]
        assert entry["name"] == "m5_assets" and entry["loadStatus"] == "LOADED"
        jobs = {job["name"] for repo in entry["locationOrLoadError"]["repositories"] for job in repo["jobs"]}
        assert {"build_feature_store", "train_model", "issue_forecast"} <= jobs
        # The health check with no argument probes the role the entrypoint started last.
        assert (tmp_path / "role").read_text().strip() == "daemon" and _healthy(None, role_env)


def test_the_api_role_serves_with_gunicorn_workers_and_one_combined_metrics_view(role_env, tmp_path):
    env = role_env | {"M5_API_WORKERS": "2", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}
    base = f"http://127.0.0.1:{env['M5_API_PORT']}"
    with _role("api", env, tmp_path) as api:
        servers.wait_until(lambda: servers.http_ok(f"{base}/health"), api, "api")
        assert _healthy("api", env)
        # The entrypoint exec'd into the gunicorn master: its children are the workers.
        workers = subprocess.run(["pgrep", "-P", str(api.pid)], capture_output=True, text=True).stdout.split()
        for _ in range(40):
            assert servers.http_ok(f"{base}/health")
        # Each scrape lands on one worker; every one must count all 40 requests, whichever served them.
        for _ in range(6):
            counted = sum(
                s.value for s in _samples(f"{base}/metrics", "m5_api_requests_total") if s.labels["route"] == "/health"
            )
            assert counted >= 41

        # Every live worker reports when it loaded its snapshot (0 until it has: it may still be loading).
        def both_loaded() -> bool:
            loaded = _samples(f"{base}/metrics", "m5_api_snapshot_loaded_timestamp_seconds")
            return len(loaded) == 2 and all(s.value > 0 for s in loaded)

        servers.wait_until(both_loaded, api, "both workers' snapshots", seconds=60)
    assert len(workers) == 2, workers


def _samples(url: str, name: str) -> list:
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return [s for f in text_string_to_metric_families(text) for s in f.samples if s.name == name]


def test_the_dashboard_role_serves_the_app(role_env, tmp_path):
    base = f"http://127.0.0.1:{role_env['M5_DASHBOARD_PORT']}"
    with _role("dashboard", role_env, tmp_path) as dashboard:
        servers.wait_until(lambda: servers.http_ok(f"{base}/_stcore/health"), dashboard, "dashboard")
        assert _healthy("dashboard", role_env)
        with urllib.request.urlopen(base, timeout=10) as response:
            assert response.status == 200 and b"<html" in response.read().lower()
    assert not _healthy("dashboard", role_env), "the health check passes with the dashboard stopped"


def test_the_entrypoint_without_a_role_says_which_there_are(role_env):
    result = subprocess.run([str(DEPLOY / "entrypoint.sh")], env=role_env, capture_output=True, text=True)
    assert result.returncode == 2 and "code-server|webserver|daemon|api|dashboard" in result.stderr


def _variables_read() -> set[str]:
    """The settings class's variables and the libraries' that the project reads."""
    from m5_assets import library_env
    from m5_assets.settings import Settings

    libraries = {library_env.MLFLOW_TRACKING_URI, library_env.PROMETHEUS_MULTIPROC_DIR, *library_env.DAGSTER_PG}
    return {Settings.variable(name) for name in Settings.model_fields} | libraries


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def test_the_helm_values_name_the_code_location_the_data_folder_and_launcher_settings_that_exist():
    import tomllib

    from dagster_k8s import K8sRunLauncher

    values = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    module = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["dagster"]["module_name"]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", module]
    assert deployment["image"]["repository"].rsplit("/", 1)[-1] == SERVICES["api"]["image"].split(":")[0]
    assert deployment["includeConfigInLaunchedRuns"]["enabled"] is True
    data_dir = dict(re.findall(r"(M5_DATA_DIR)=(\S+)", (ROOT / "Dockerfile").read_text()))["M5_DATA_DIR"]
    assert {m["mountPath"] for m in deployment["volumeMounts"]} == {data_dir}
    assert {m["name"] for m in deployment["volumeMounts"]} == {v["name"] for v in deployment["volumes"]}
    for variable in deployment["env"]:
        assert variable["name"] in _variables_read(), f"{variable['name']} is read nowhere in the code"
    # Every K8sRunLauncher setting is one the installed dagster-k8s accepts (the chart maps camelCase to it).
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    accepted = set(K8sRunLauncher.config_type())
    assert {_snake(k) for k in launcher} <= accepted, {_snake(k) for k in launcher} - accepted
    memory = launcher["runK8sConfig"]["containerConfig"]["resources"]["requests"]["memory"]
    assert memory.endswith("Gi") and int(memory[:-2]) >= 7  # a full-scale training run peaked at 6.7 GiB
    assert values["postgresql"]["enabled"] is False and values["postgresql"]["postgresqlHost"]


def test_the_kubernetes_read_side_runs_the_image_roles_over_the_charts_data_volume():
    documents = list(yaml.safe_load_all((DEPLOY / "k8s" / "serving.yaml").read_text()))
    deployments = {d["metadata"]["name"]: d for d in documents if d["kind"] == "Deployment"}
    services = {d["metadata"]["name"]: d for d in documents if d["kind"] == "Service"}
    chart = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())["dagster-user-deployments"]["deployments"][0]
    image = f"{chart['image']['repository']}:{chart['image']['tag']}"
    probes = (DEPLOY / "healthcheck.py").read_text()
    entrypoint = (DEPLOY / "entrypoint.sh").read_text()
    roles_seen = set()
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
        (container,) = pod["spec"]["containers"]
        ports = {p["containerPort"] for p in container["ports"]}
        if container["image"] != image:
            continue  # Redis
        role = container["args"][0]
        roles_seen.add(role)
        assert role in entrypoint_roles() and pod["spec"]["securityContext"]["runAsUser"] == 10001
        for variable in container.get("env", []):
            read = variable["name"] in _variables_read() or variable["name"] in entrypoint
            assert read, f"{name}: {variable['name']} is read nowhere"
        path = container["readinessProbe"]["httpGet"]["path"]
        assert f'_http("M5_{role.upper()}_PORT", {container["readinessProbe"]["httpGet"]["port"]}, "{path}")' in probes
        assert container["readinessProbe"]["httpGet"]["port"] in ports
        (mount,) = container["volumeMounts"]
        (volume,) = pod["spec"]["volumes"]
        assert mount["mountPath"] == chart["volumeMounts"][0]["mountPath"] and mount["name"] == volume["name"]
        assert volume["persistentVolumeClaim"]["claimName"] == chart["volumes"][0]["persistentVolumeClaim"]["claimName"]
    assert roles_seen == {"api", "dashboard"}
    for name, service in services.items():
        target = deployments[name]
        (port,) = service["spec"]["ports"]
        assert service["spec"]["selector"] == target["spec"]["selector"]["matchLabels"]
        assert port["targetPort"] in {
            p["containerPort"] for p in target["spec"]["template"]["spec"]["containers"][0]["ports"]
        }
    api_env = {
        e["name"]: e.get("value") for e in deployments["m5-api"]["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    host, port = api_env["M5_API_REDIS_URL"].removeprefix("redis://").split("/")[0].split(":")
    assert host in services and int(port) == services[host]["spec"]["ports"][0]["port"]


def test_services_without_authentication_are_published_on_loopback_unless_told_otherwise():
    """The dashboard, the Dagster UI and Prometheus have no login: a host port open to the network
    would hand the forecasts (and the launchpad) to anyone who can reach the host."""
    for name in ("dashboard", "webserver", "prometheus"):
        (port,) = SERVICES[name]["ports"]
        bind = port[: port.index("}") + 1]
        assert bind == f"${{M5_{name.upper()}_BIND:-127.0.0.1}}", (name, port)
    # Grafana asks for its password; the API for a key when keys are configured.
    assert not SERVICES["grafana"]["ports"][0].startswith("${M5_GRAFANA_BIND")
