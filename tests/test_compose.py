"""compose.yaml (Docker is not available here): its services are wired together and run real entry points."""

from __future__ import annotations

import argparse
import importlib
import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml
from sqlalchemy.engine import make_url

from tests.docker_build import Stage, effective, environment, stages, substitute
from worker.settings import Settings

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO / "compose.yaml").read_text())


def _playground_services(compose: dict) -> dict[str, dict]:
    return {name: svc for name, svc in compose["services"].items() if svc.get("command", [None])[0] == "playground"}


def _workers(compose: dict) -> dict[str, dict]:
    return {name: svc for name, svc in _playground_services(compose).items() if svc["command"][1] == "worker"}


def _sub_commands(parser: argparse.ArgumentParser) -> set[str]:
    return {name for action in parser._actions for name in (getattr(action, "choices", None) or {})}


def test_the_stack_has_redis_postgres_the_web_app_and_a_worker_per_gpu(compose: dict) -> None:
    services = compose["services"]
    assert services["redis"]["image"].startswith("redis:")
    assert services["postgres"]["image"].startswith("postgres:")
    for name in ("redis", "postgres"):
        assert services[name]["healthcheck"]["test"], f"{name} needs a healthcheck for depends_on to wait on"
    assert _playground_services(compose)["web"]["command"][1] == "serve"
    assert "7860:7860" in services["web"]["ports"]
    assert len(_workers(compose)) >= 2


def test_every_gpu_worker_reserves_its_own_gpu_and_runs_one_job_at_a_time(compose: dict) -> None:
    reserved = []
    for name, svc in _workers(compose).items():
        devices = svc["deploy"]["resources"]["reservations"]["devices"]
        assert len(devices) == 1, name
        assert devices[0]["driver"] == "nvidia" and devices[0]["capabilities"] == ["gpu"]
        assert len(devices[0]["device_ids"]) == 1, f"{name} must reserve exactly one GPU"
        reserved += devices[0]["device_ids"]
        # The reserved GPU is the only one inside the container, so it is CUDA device 0 there.
        assert svc["environment"]["CUDA_VISIBLE_DEVICES"] == "0"
        assert svc["command"][2:] == ["--concurrency", "1"]
    assert len(reserved) == len(set(reserved)), f"two workers share a GPU: {reserved}"


def test_playground_services_share_the_data_volume_broker_and_store(compose: dict) -> None:
    for name, svc in _playground_services(compose).items():
        env = svc["environment"]
        settings = Settings.from_env(env)  # the same parsing the containers will do
        assert not settings.embedded and settings.broker.startswith("redis://redis:"), name
        url = make_url(settings.database)
        assert (url.get_backend_name(), url.get_driver_name(), url.host) == ("postgresql", "psycopg", "postgres")
        assert f"playground-data:{env['PLAYGROUND_HOME']}" in svc["volumes"], name
        assert set(svc["depends_on"]) == {"redis", "postgres", "s3-bucket"}
        assert all(svc["depends_on"][dep]["condition"] == "service_healthy" for dep in ("redis", "postgres"))
        assert svc["depends_on"]["s3-bucket"]["condition"] == "service_completed_successfully"
    assert "playground-data" in compose["volumes"]


def test_playground_services_keep_artifacts_in_the_s3_service_and_its_bucket(compose: dict) -> None:
    from worker.artifacts import ArtifactStore

    services = compose["services"]
    s3, bucket = services["s3"], services["s3-bucket"]
    assert s3["image"].startswith("minio/") and s3["healthcheck"]["test"], "depends_on needs a healthcheck"
    assert bucket["depends_on"]["s3"]["condition"] == "service_healthy"
    made = re.search(r"mc mb --ignore-existing store/(\S+)", bucket["entrypoint"][-1]).group(1)
    for name, svc in _playground_services(compose).items():
        env = svc["environment"]
        store = ArtifactStore.from_env(Path("/data"), env)  # the parsing the containers do
        assert store.remote and store.url.startswith(f"s3://{made}/"), name
        assert store._options["endpoint_url"] == "http://s3:9000", name
        for key, minio in (("AWS_ACCESS_KEY_ID", "MINIO_ROOT_USER"), ("AWS_SECRET_ACCESS_KEY", "MINIO_ROOT_PASSWORD")):
            assert substitute(env[key], {}) == substitute(s3["environment"][minio], {}), (name, key)


def test_commands_run_the_playground_console_script_with_sub_commands_it_has(compose: dict) -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    module_name, _, function = pyproject["project"]["scripts"]["playground"].partition(":")
    cli = importlib.import_module(module_name)
    assert callable(getattr(cli, function))

    parser = cli.build_parser()
    known = _sub_commands(parser)
    coming = {"serve": "issue 4 (the web app) adds `playground serve`"}
    waiting = []
    for name, svc in _playground_services(compose).items():
        command = svc["command"][1]
        if command not in known and command in coming:
            waiting.append(f"service {name}: {coming[command]}")
            continue
        assert command in known, f"service {name} runs `playground {command}`, which ui/cli.py does not have"
        try:
            parser.parse_args(svc["command"][1:])  # flags included
        except SystemExit as exc:
            pytest.fail(f"service {name}: `{' '.join(svc['command'])}` is rejected by the CLI parser ({exc})")
    if waiting:
        pytest.xfail("; ".join(waiting))


# ---- compose.yaml and the Dockerfile --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dockerfile() -> dict[str, Stage]:
    return stages()


def _gpu_reserved(svc: dict) -> bool:
    devices = svc.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])
    return any("gpu" in device.get("capabilities", []) for device in devices)


def _probe(healthcheck: dict) -> tuple[str, str]:
    """(port, path) of the URL an HTTP healthcheck written in Python opens."""
    test = healthcheck["test"]
    assert test[:3] == ["CMD", "python", "-c"], f"the image has no curl; check with Python, not {test}"
    found = re.search(r"http://127\.0\.0\.1:(\d+)(/\w+)", test[3])
    assert found, test
    return found.group(1), found.group(2)


def test_playground_services_build_dockerfile_targets_that_exist(compose: dict, dockerfile: dict[str, Stage]) -> None:
    for name, svc in _playground_services(compose).items():
        build = svc["build"]
        assert (REPO / build["context"] / build.get("dockerfile", "Dockerfile")).resolve() == REPO / "Dockerfile"
        assert build["target"] in dockerfile, f"service {name} builds target {build['target']!r}, not in Dockerfile"
        # GPU workers need a CUDA build of torch; everything else runs on the CPU image.
        assert build["target"] == ("cuda" if _gpu_reserved(svc) else "cpu"), name


def test_each_image_name_is_built_from_one_target(compose: dict) -> None:
    targets: dict[str, set[str]] = {}
    for svc in _playground_services(compose).values():
        # Names as they are with no PLAYGROUND_*IMAGE set: two variables may well default to one name.
        targets.setdefault(substitute(svc["image"], {}), set()).add(svc["build"]["target"])
    # Two targets under one name: whichever builds last would be tagged over the other.
    assert all(len(built) == 1 for built in targets.values()), targets
    web_image = compose["services"]["web"]["image"]
    assert substitute(web_image, {}) == "finetune-playground:latest", "the documented image name is kept"


def test_services_and_their_image_agree_on_port_data_dir_and_offline_mode(
    compose: dict, dockerfile: dict[str, Stage]
) -> None:
    for name, svc in _playground_services(compose).items():
        image_env = environment(dockerfile, svc["build"]["target"])
        volumes = json.loads(effective(dockerfile, svc["build"]["target"], "VOLUME") or "[]")
        home = svc["environment"]["PLAYGROUND_HOME"]
        assert home == image_env["PLAYGROUND_HOME"] and home in volumes, (name, home, image_env, volumes)
        assert f"playground-data:{volumes[0]}" in svc["volumes"], name
        assert svc["environment"]["HF_HUB_OFFLINE"] == image_env["HF_HUB_OFFLINE"] == "1", name
    web = compose["services"]["web"]
    exposed = effective(dockerfile, web["build"]["target"], "EXPOSE")
    assert [port.split(":")[-1] for port in web["ports"]] == [exposed]
    command = web["command"]
    assert command[command.index("--port") + 1] == exposed


def test_web_is_healthy_when_ready_and_workers_check_their_store_and_broker(
    compose: dict, dockerfile: dict[str, Stage]
) -> None:
    web = compose["services"]["web"]
    exposed = effective(dockerfile, web["build"]["target"], "EXPOSE")
    assert _probe(web["healthcheck"]) == (exposed, "/readyz")
    workers = _workers(compose)
    for name, svc in workers.items():
        # The image's own check asks the web port, which a worker does not serve.
        test = svc["healthcheck"]["test"]
        assert test[:3] == ["CMD", "python", "-m"], (name, test)
        assert callable(importlib.import_module(test[3]).main), f"service {name}: {test[3]} has no main()"
    for name, svc in {"web": web, **workers}.items():
        assert svc["healthcheck"]["start_period"], f"{name}: the first start (imports, schema) takes a while"
