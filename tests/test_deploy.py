"""The Dockerfile and compose.yaml, checked without a Docker engine (none runs here): they parse,
their commands are commands `ainews` has, their health checks ask endpoints the health server
serves (and do work against an HTTP server), and the image holds what an installed wheel needs."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import threading
import tomllib
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import typer.main
import yaml

from bot.cli import cli
from bot.config import PROJECT_ROOT, Settings


# The routes of the health server that `ainews run` starts on AINEWS_HEALTH_PORT: liveness and
# readiness. Written here until that server exists on this branch; at merge, point this at the
# server's own route table so that a renamed route fails this test.
def _probe_routes() -> tuple[str, ...]:
    """The health server's probe routes, read from the app it builds (not a copy of them)."""
    from bot.health import HealthServer

    app = HealthServer.__new__(HealthServer).build_app()
    paths = {resource.canonical for resource in app.router.resources()}
    return tuple(sorted(p for p in paths if p in ("/healthz", "/readyz")))


HEALTH_ENDPOINTS = _probe_routes()
# Off by default (a test's `ainews run` must not take a fixed port); the image sets this one.
HEALTH_PORT_DEFAULT = 8080

DOCKERFILE = PROJECT_ROOT / "Dockerfile"
COMPOSE = PROJECT_ROOT / "compose.yaml"


# ── reading the files ────────────────────────────────────────────────────────────────────────


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "the Dockerfile ends in a continuation line"
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1]) for ln in logical]


def stages() -> list[list[tuple[str, str]]]:
    """The instructions of each build stage (a stage starts at FROM)."""
    result: list[list[tuple[str, str]]] = []
    for instruction, args in dockerfile_instructions():
        if instruction == "FROM":
            result.append([])
        assert result, "the Dockerfile must start with FROM"
        result[-1].append((instruction, args))
    return result


def exec_form(args: str) -> list[str]:
    """A CMD/HEALTHCHECK CMD in exec (JSON) form: no shell between Docker and the process, so
    SIGTERM reaches `ainews run` itself."""
    parsed = json.loads(args)
    assert isinstance(parsed, list) and all(isinstance(a, str) for a in parsed), args
    return parsed


def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def bot_services() -> dict[str, dict[str, Any]]:
    """The services built from this repository's Dockerfile."""
    return {name: s for name, s in compose()["services"].items() if "build" in s}


def cli_commands() -> set[str]:
    """Every command path `ainews` accepts ("run", "sources list", …), read from the typer app."""

    def walk(command: Any, prefix: str) -> Iterator[str]:
        if hasattr(command, "commands"):  # a group (typer vendors click: no click to import)
            for name, sub in command.commands.items():
                yield from walk(sub, f"{prefix} {name}".strip())
        else:
            yield prefix

    return set(walk(typer.main.get_command(cli), ""))


def named_command(argv: list[str]) -> str:
    """`ainews sources list --json` → "sources list": the words before the first option."""
    assert argv and argv[0] == "ainews", f"expected the ainews entry point, got {argv}"
    words: list[str] = []
    for word in argv[1:]:
        if word.startswith("-"):
            break
        words.append(word)
    return " ".join(words)


def health_paths(command: list[str]) -> list[str]:
    return re.findall(r"127\.0\.0\.1:[^/'\"\s]*(/[A-Za-z0-9_]+)", " ".join(command))


def compose_test_command(service: dict[str, Any]) -> list[str]:
    test = service["healthcheck"]["test"]
    if isinstance(test, str):
        return shlex.split(test)
    assert test[0] in ("CMD", "CMD-SHELL"), test
    return test[1:] if test[0] == "CMD" else shlex.split(test[1])


# ── the CLI commands they run ────────────────────────────────────────────────────────────────


def test_the_image_runs_the_bot_through_a_real_cli_command() -> None:
    cmds = [args for instruction, args in stages()[-1] if instruction == "CMD"]
    assert len(cmds) == 1
    argv = exec_form(cmds[0])
    assert named_command(argv) == "run"
    assert named_command(argv) in cli_commands()


def test_compose_commands_are_real_cli_commands() -> None:
    commands = cli_commands()
    assert {"run", "search", "sources list"} <= commands  # the introspection itself works
    for name, service in bot_services().items():
        argv = service.get("command")
        if argv is None:
            continue  # the image's CMD, checked above
        argv = shlex.split(argv) if isinstance(argv, str) else argv
        assert named_command(argv) in commands, f"{name}: {argv}"


# ── health checks ────────────────────────────────────────────────────────────────────────────


def dockerfile_healthcheck() -> list[str]:
    checks = [args for instruction, args in stages()[-1] if instruction == "HEALTHCHECK"]
    assert len(checks) == 1
    options, _, command = checks[0].partition("CMD ")
    assert re.search(r"--interval=\d+s", options) and re.search(r"--timeout=\d+s", options)
    return exec_form(command)


def test_every_health_check_names_an_endpoint_of_the_health_server() -> None:
    named = {"Dockerfile": health_paths(dockerfile_healthcheck())}
    for name, service in bot_services().items():
        if "healthcheck" in service:
            named[f"compose {name}"] = health_paths(compose_test_command(service))
    for where, paths in named.items():
        assert len(paths) == 1 and paths[0] in HEALTH_ENDPOINTS, f"{where}: {paths}"
    # Liveness in the image (a restart helps a stuck process), readiness in compose.
    assert named["Dockerfile"] == ["/healthz"]


class _Health(BaseHTTPRequestHandler):
    """Stands in for the bot's health server: 200 on the wanted path, 503 elsewhere."""

    ok_path = ""

    def do_GET(self) -> None:
        self.send_response(200 if self.path == self.ok_path else 503)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[HTTPServer]:
    server = HTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def run_check(command: list[str], port: int) -> int:
    """Run a health-check command as the container would, with this interpreter as `python`."""
    assert command[0] == "python", command
    env = {"AINEWS_HEALTH_PORT": str(port), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, *command[1:]], env=env, timeout=20).returncode


@pytest.mark.parametrize("where", ["Dockerfile", "compose"])
def test_health_checks_pass_on_200_and_fail_otherwise(
    health_server: HTTPServer, where: str
) -> None:
    if where == "Dockerfile":
        command = dockerfile_healthcheck()
    else:
        (service,) = (s for s in bot_services().values() if "healthcheck" in s)
        command = compose_test_command(service)
    port = health_server.server_address[1]
    (path,) = health_paths(command)
    _Health.ok_path = path
    assert run_check(command, port) == 0
    _Health.ok_path = "/elsewhere"
    assert run_check(command, port) != 0


def test_health_checks_default_to_the_health_port() -> None:
    checks = [compose_test_command(s) for s in bot_services().values() if "healthcheck" in s]
    for command in [dockerfile_healthcheck(), *checks]:
        joined = " ".join(command)
        assert f"'AINEWS_HEALTH_PORT', '{HEALTH_PORT_DEFAULT}'" in joined, joined
    env = dict(pair.split("=", 1) for _, pair in _env_pairs(stages()[-1]))
    assert env.get("AINEWS_HEALTH_PORT") == str(HEALTH_PORT_DEFAULT)
    exposed = " ".join(args for instruction, args in stages()[-1] if instruction == "EXPOSE")
    assert str(HEALTH_PORT_DEFAULT) in exposed.split()


def _env_pairs(stage: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """ENV A=1 B=2 → ("ENV", "A=1"), ("ENV", "B=2")."""
    return [
        ("ENV", pair)
        for instruction, args in stage
        if instruction == "ENV"
        for pair in args.split()
    ]


# ── the image ────────────────────────────────────────────────────────────────────────────────


def test_the_image_is_slim_python_within_requires_python() -> None:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    bounds = re.fullmatch(r">=3\.(\d+),<3\.(\d+)", project["requires-python"])
    assert bounds, project["requires-python"]
    low, high = bounds.groups()
    for stage in stages():
        image = stage[0][1].split()[0]
        match = re.fullmatch(r"python:3\.(\d+)-slim(-\w+)?", image)
        assert match, image
        assert int(low) <= int(match.group(1)) < int(high), image


def test_the_bot_runs_as_an_unprivileged_user() -> None:
    final = stages()[-1]
    users = [i for i, (instruction, _) in enumerate(final) if instruction == "USER"]
    cmd = next(i for i, (instruction, _) in enumerate(final) if instruction == "CMD")
    assert users and users[-1] < cmd
    user = final[users[-1]][1].split(":")[0]
    assert user not in ("root", "0")


def test_dependencies_come_from_the_lock_with_bytecode_compiled() -> None:
    build = [args for stage in stages() for instruction, args in stage if instruction == "RUN"]
    syncs = [args for args in build if args.startswith("uv sync")]
    assert syncs and all("--frozen" in s and "--no-dev" in s for s in syncs)
    env = dict(pair.split("=", 1) for stage in stages() for _, pair in _env_pairs(stage))
    assert env.get("UV_COMPILE_BYTECODE") == "1" or all("--compile-bytecode" in s for s in syncs)
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    uv_version = re.search(r"^UV_VERSION := (\S+)$", makefile, re.M)
    assert uv_version and f"ARG UV_VERSION={uv_version.group(1)}" in DOCKERFILE.read_text()


def test_the_image_copies_every_packaged_module_and_no_secrets() -> None:
    pyproject = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    packages = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    sources = {
        source.removeprefix("./").removesuffix("/")
        for stage in stages()
        for instruction, args in stage
        if instruction == "COPY" and not args.startswith("--from")
        for source in args.split()[:-1]
    }
    assert {*packages, "pyproject.toml", "uv.lock", "README.md"} <= sources
    ignored = (PROJECT_ROOT / ".dockerignore").read_text().split()
    assert ".env" in ignored and ".venv" in ignored


# ── compose ──────────────────────────────────────────────────────────────────────────────────


def test_compose_runs_two_bots_on_the_postgres_service() -> None:
    services = compose()["services"]
    bots = bot_services()
    assert sum(s.get("deploy", {}).get("replicas", 1) for s in bots.values()) == 2
    (postgres_name,) = (
        n for n, s in services.items() if str(s.get("image", "")).startswith("postgres:")
    )
    postgres = services[postgres_name]
    for name, bot in bots.items():
        assert bot["env_file"] in (".env", [".env"]), name
        url = urlsplit(re.sub(r"\$\{[^}]*\}", "secret", bot["environment"]["DATABASE_URL"]))
        assert url.scheme in ("postgresql", "postgresql+psycopg"), name
        assert url.hostname == postgres_name and (url.port or 5432) == 5432, name
        assert url.username == postgres["environment"]["POSTGRES_USER"], name
        assert url.path == f"/{postgres['environment']['POSTGRES_DB']}", name
        assert bot["depends_on"][postgres_name]["condition"] == "service_healthy", name
        grace = int(str(bot["stop_grace_period"]).removesuffix("s"))
        assert grace > Settings.model_fields["shutdown_grace"].default, name


def test_postgres_has_its_own_health_check() -> None:
    services = compose()["services"]
    (postgres,) = (s for s in services.values() if str(s.get("image", "")).startswith("postgres:"))
    command = compose_test_command(postgres)
    assert command[0] == "pg_isready"
    assert f"--username={postgres['environment']['POSTGRES_USER']}" in command
    assert f"--dbname={postgres['environment']['POSTGRES_DB']}" in command


def test_the_readme_scaling_out_section_matches_the_files() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Scaling out", 1)[1].split("\n## ", 1)[0]
    assert "docker compose up" in section and "compose.yaml" in section
    assert "replicas: 2" in section
    for endpoint in HEALTH_ENDPOINTS:
        assert f"`{endpoint}`" in section


# ── the default files in an installed wheel ──────────────────────────────────────────────────


def test_default_files_are_package_resources() -> None:
    defaults = files("bot.defaults")
    for name in ("sources.toml", "categories.toml"):
        assert (defaults / name).is_file()
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.sources_file.read_bytes() == (defaults / "sources.toml").read_bytes()
    assert settings.categories_file.read_bytes() == (defaults / "categories.toml").read_bytes()


def test_empty_file_settings_mean_the_bundled_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AINEWS_SOURCES_FILE", "")
    monkeypatch.setenv("AINEWS_CATEGORIES_FILE", "")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.sources_file == Path(str(files("bot.defaults") / "sources.toml"))
    assert settings.categories_file == Path(str(files("bot.defaults") / "categories.toml"))


def _uv() -> Path | None:
    local = PROJECT_ROOT / ".tools" / "bin" / "uv"
    if local.is_file():
        return local
    found = subprocess.run(["sh", "-c", "command -v uv"], capture_output=True, text=True)
    return Path(found.stdout.strip()) if found.returncode == 0 else None


def test_the_wheel_ships_defaults_demo_and_migrations(tmp_path: Path) -> None:
    uv = _uv()
    if uv is None:
        pytest.skip("uv is not installed (make sync installs it into .tools/)")
    built = subprocess.run(
        [str(uv), "build", "--wheel", "--offline", "--out-dir", str(tmp_path), str(PROJECT_ROOT)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if built.returncode != 0 and "offline" in built.stderr.lower():
        pytest.skip(
            "the build backend (hatchling) is not in uv's cache and this test stays offline"
        )
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("ainews-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"bot/defaults/sources.toml", "bot/defaults/categories.toml"} <= names
    assert "bot/demo/sources.toml" in names and "storage/migrations/env.py" in names
