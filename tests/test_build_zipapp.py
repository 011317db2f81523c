"""The single-file zipapp: reproducible, pure Python, and runnable with site-packages
off on every supported interpreter. Everything is built into temporary directories."""

from __future__ import annotations

import base64
import hashlib
import http.client
import importlib.util
import os
import shlex
import shutil
import signal
import stat
import subprocess
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import PYTHON, REPO, free_port, get_health, wait_until
from redis_server import redis_url

from llm_gateway import __version__

_ = redis_url  # the fixture, imported for pytest

PY310 = Path.home() / ".pyenv" / "versions" / "3.10.13" / "bin" / "python3.10"
INTERPRETERS = [
    pytest.param(PYTHON, id="current"),
    pytest.param(
        str(PY310),
        id="python3.10",
        marks=pytest.mark.skipif(not PY310.exists(), reason="no Python 3.10 at " + str(PY310)),
    ),
]
NATIVE = (".so", ".pyd", ".dylib", ".dll")


def load_builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_zipapp", REPO / "build_zipapp.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def builder() -> ModuleType:
    return load_builder()


@pytest.fixture(scope="module")
def pyz(builder: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path: Path = builder.build(tmp_path_factory.mktemp("zipapp") / "llm-gateway.pyz")
    return path


def test_building_twice_gives_identical_bytes(
    builder: ModuleType, pyz: Path, tmp_path: Path
) -> None:
    again = builder.build(tmp_path / "again" / "llm-gateway.pyz")
    assert again.read_bytes() == pyz.read_bytes()


def test_archive_holds_the_gateway_and_its_pure_python_dependencies(pyz: Path) -> None:
    assert pyz.read_bytes().startswith(b"#!/usr/bin/env python3\n")
    assert stat.S_IMODE(pyz.stat().st_mode) == 0o755
    with zipfile.ZipFile(pyz) as zf:
        names = zf.namelist()
        infos = zf.infolist()
        main = zf.read("__main__.py").decode()
    assert names == sorted(names)
    assert len(names) == len(set(names))
    for required in (
        "__main__.py",
        "llm_gateway/__init__.py",
        "llm_gateway/cli/main.py",
        "llm_gateway/server/tcp.py",
        "h11/__init__.py",
        "certifi/__init__.py",
        "certifi/cacert.pem",
        "yaml/__init__.py",
    ):
        assert required in names
    assert "from llm_gateway.cli.main import main" in main
    native = [n for n in names if n.endswith(NATIVE) or ".cpython-" in n]
    assert native == []
    assert not any("__pycache__" in n or n.endswith((".pyc", ".pyo")) for n in names)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert any(n.startswith("licenses/") for n in names)


def test_archive_has_every_module_of_the_package(pyz: Path) -> None:
    in_tree = {
        p.relative_to(REPO).as_posix()
        for p in (REPO / "llm_gateway").rglob("*.py")
        if "__pycache__" not in p.parts
    }
    with zipfile.ZipFile(pyz) as zf:
        archived = {n for n in zf.namelist() if n.startswith("llm_gateway/")}
    assert in_tree <= archived


def test_native_extensions_are_refused(builder: ModuleType, tmp_path: Path) -> None:
    package = tmp_path / "fastlib"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "_speedups.cpython-311-x86_64-linux-gnu.so").write_bytes(b"\x7fELF")
    with pytest.raises(builder.BuildError, match="refusing to bundle native extension"):
        builder.package_files("fastlib", package)
    # PyYAML's optional accelerator is the one native file that is left out silently.
    yaml_dir = tmp_path / "yaml"
    yaml_dir.mkdir()
    (yaml_dir / "__init__.py").write_text("")
    (yaml_dir / "_yaml.cpython-311-x86_64-linux-gnu.so").write_bytes(b"\x7fELF")
    assert [name for name, _ in builder.package_files("yaml", yaml_dir)] == ["yaml/__init__.py"]


def test_the_build_needs_nothing_installed(tmp_path: Path) -> None:
    """No site-packages, no pip: the build takes its dependencies from vendor/."""
    target = tmp_path / "llm-gateway.pyz"
    done = subprocess.run(
        [PYTHON, "-I", "-S", str(REPO / "build_zipapp.py"), "--output", str(target)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(target) as zf:
        names = set(zf.namelist())
    assert {"h11/__init__.py", "certifi/cacert.pem", "yaml/__init__.py"} <= names


def copy_vendor(tmp_path: Path) -> Path:
    copy = tmp_path / "vendor"
    shutil.copytree(REPO / "vendor", copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda v: (v / "h11" / "_util.py").write_text("import os\n"), "does not match"),
        (lambda v: (v / "yaml" / "extra.py").write_text(""), "is not listed"),
        (lambda v: (v / "certifi" / "core.py").unlink(), "listed in vendor/SHA256SUMS but missing"),
    ],
    ids=["changed", "unlisted", "missing"],
)
def test_the_vendored_copy_is_checked_against_its_pins(
    builder: ModuleType, tmp_path: Path, change: Any, message: str
) -> None:
    vendor = copy_vendor(tmp_path)
    change(vendor)
    with pytest.raises(builder.BuildError, match=message):
        builder.build(tmp_path / "out.pyz", vendor)
    assert not (tmp_path / "out.pyz").exists()


def _wheel(path: Path, files: dict[str, bytes], record: dict[str, bytes]) -> Path:
    def digest(data: bytes) -> str:
        return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()

    lines = [f"{name},sha256={digest(data)},{len(data)}" for name, data in record.items()]
    lines.append("h11-9.9.dist-info/RECORD,,")
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        zf.writestr("h11-9.9.dist-info/RECORD", "\n".join(lines) + "\n")
    return path


def test_vendoring_a_wheel_checks_its_record_and_rewrites_the_pins(
    builder: ModuleType, tmp_path: Path
) -> None:
    vendor = copy_vendor(tmp_path)
    files = {
        "h11/__init__.py": b"VERSION = '9.9'\n",
        "h11-9.9.dist-info/licenses/LICENSE.txt": b"MIT\n",
        "h11-9.9.dist-info/METADATA": b"Name: h11\n",
    }
    good = _wheel(tmp_path / "h11-9.9-py3-none-any.whl", files, files)
    builder.vendor_wheels([good], vendor)
    assert sorted(p.name for p in (vendor / "h11").iterdir()) == ["__init__.py"]
    assert (vendor / "licenses" / "h11" / "LICENSE.txt").read_bytes() == b"MIT\n"
    sums = builder.read_sums(vendor)
    assert sums["h11/__init__.py"] == hashlib.sha256(files["h11/__init__.py"]).hexdigest()
    assert [name for name in sums if name.startswith("h11/")] == ["h11/__init__.py"]
    builder.build(tmp_path / "out.pyz", vendor)  # the rewritten pins hold

    tampered = dict(files, **{"h11/__init__.py": b"import os; os.system('x')\n"})
    (tmp_path / "bad").mkdir()
    bad = _wheel(tmp_path / "bad" / "h11-9.9-py3-none-any.whl", tampered, files)
    with pytest.raises(builder.BuildError, match="does not match the wheel's RECORD"):
        builder.vendor_wheels([bad], vendor)


OLD_PYTHONS = [
    pytest.param(
        Path.home() / ".pyenv" / "versions" / version / "bin" / f"python{version[:3]}",
        id=f"python{version[:3]}",
        marks=pytest.mark.skipif(
            not (Path.home() / ".pyenv" / "versions" / version).exists(),
            reason=f"no Python {version}",
        ),
    )
    for version in ("3.9.18", "3.8.18")
]


@pytest.mark.parametrize("python", OLD_PYTHONS)
def test_an_old_python_gets_a_sentence_not_a_traceback(pyz: Path, python: Path) -> None:
    version = subprocess.run(
        [str(python), "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout.strip()
    for command in ([str(python), str(pyz), "server", "start"], [str(python), "-I", str(pyz)]):
        done = subprocess.run(command, capture_output=True, text=True, timeout=30)
        assert done.returncode == 1
        assert done.stderr == f"llm-gateway needs Python 3.10 or newer (this is {version})\n"
        assert done.stdout == ""


def test_output_option_and_the_repository_is_left_alone(tmp_path: Path) -> None:
    default = REPO / "llm-gateway.pyz"
    before = default.stat().st_mtime_ns if default.exists() else None
    target = tmp_path / "out" / "custom-name.pyz"
    done = subprocess.run(
        [PYTHON, str(REPO / "build_zipapp.py"), "--output", str(target)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"built {target} (")
    assert zipfile.is_zipfile(target)
    assert not (tmp_path / "out" / "custom-name.pyz.tmp").exists()
    after = default.stat().st_mtime_ns if default.exists() else None
    assert after == before


@pytest.mark.parametrize("python", INTERPRETERS)
def test_version_with_site_packages_off(pyz: Path, python: str) -> None:
    done = subprocess.run(
        [python, "-I", "-S", str(pyz), "--version"], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"llm-gateway {__version__}\n"


@pytest.mark.parametrize("python", INTERPRETERS)
def test_bundled_dependencies_load_from_the_zip(pyz: Path, python: str) -> None:
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "import certifi, h11, yaml;"
        "assert certifi.__file__.startswith(sys.argv[1]), certifi.__file__;"
        "assert yaml.__file__.startswith(sys.argv[1]), yaml.__file__;"
        "assert '-----BEGIN CERTIFICATE-----' in certifi.contents();"
        "print(yaml.safe_dump({'ok': True}).strip())"
    )
    done = subprocess.run(
        [python, "-I", "-S", "-c", probe, str(pyz)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ok: true\n"


@pytest.mark.parametrize("python", INTERPRETERS)
def test_the_zipapp_manages_config_and_serves(pyz: Path, python: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "LLM_GATEWAY_HOME": str(home), "LOG_LEVEL": "warning"}
    env.pop("LLM_GATEWAY_SECRET_KEY", None)
    added = subprocess.run(
        [python, "-I", "-S", str(pyz), "apikey", "add", "--name", "zip"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert added.returncode == 0, added.stderr
    assert "Created gateway key" in added.stdout
    assert stat.S_IMODE((home / "config.yaml").stat().st_mode) == 0o600

    port = free_port()
    server = subprocess.Popen(
        [
            python,
            "-I",
            "-S",
            str(pyz),
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def answered() -> object:
            if server.poll() is not None:
                pytest.fail(f"zipapp server exited early: {server.communicate()[1]}")
            return get_health(port)

        health = wait_until(answered, 20.0, "the zipapp server to answer /health")
        assert health["status"] == "ok" and health["version"] == __version__
        # the admin page is package data, read from inside the archive
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/admin")
        page = conn.getresponse()
        assert page.status == 200
        assert page.read() == (REPO / "llm_gateway" / "admin" / "page.html").read_bytes()
        conn.close()
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=15)
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    assert server.returncode == 0, err
    assert f"listening on http://127.0.0.1:{port}" in err
    # the next step is named as this archive is run, so it works when pasted
    program = shlex.join([python, "-I", "-S", str(pyz)])
    assert f"1 gateway key, 0 upstream accounts); next: {program} upstream add " in err


# --- --with redis: an optional extra, checked like the vendored copy ---------------------


@pytest.fixture(scope="module")
def pyz_with_redis(builder: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("redis", reason="redis-py is not installed (pip install '.[redis]')")
    path: Path = builder.build(
        tmp_path_factory.mktemp("zipapp-redis") / "llm-gateway.pyz", extras=("redis",)
    )
    return path


def test_with_redis_bundles_redis_py_and_its_licence(pyz_with_redis: Path, pyz: Path) -> None:
    with zipfile.ZipFile(pyz_with_redis) as zf:
        names = set(zf.namelist())
    assert {"redis/__init__.py", "redis/asyncio/client.py", "licenses/redis/LICENSE"} <= names
    assert not [n for n in names if n.endswith(NATIVE) or "__pycache__" in n]
    with zipfile.ZipFile(pyz) as zf:
        assert not [n for n in zf.namelist() if n.startswith("redis/")]


def _fake_distribution(site: Path, content: bytes, recorded: bytes) -> Any:
    import importlib.metadata

    (site / "redis").mkdir(parents=True)
    (site / "redis" / "__init__.py").write_bytes(content)
    info = site / "redis-9.9.dist-info"
    info.mkdir()
    digest = base64.urlsafe_b64encode(hashlib.sha256(recorded).digest()).rstrip(b"=").decode()
    (info / "METADATA").write_text("Name: redis\nVersion: 9.9\n")
    (info / "RECORD").write_text(
        f"redis/__init__.py,sha256={digest},{len(recorded)}\nredis-9.9.dist-info/RECORD,,\n"
    )
    return importlib.metadata.PathDistribution(info)


def test_with_redis_checks_the_installed_files_against_their_record(
    builder: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tampered = _fake_distribution(tmp_path / "site", b"import os; os.system('x')\n", b"ok\n")
    monkeypatch.setattr(builder.importlib.metadata, "distribution", lambda name: tampered)
    with pytest.raises(builder.BuildError, match="does not match its RECORD"):
        builder.build(tmp_path / "out.pyz", extras=("redis",))
    assert not (tmp_path / "out.pyz").exists()


def test_with_redis_when_it_is_not_installed_says_how_to_get_it(
    builder: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.metadata

    def missing(name: str) -> Any:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(builder.importlib.metadata, "distribution", missing)
    with pytest.raises(builder.BuildError, match=r"pip install 'llm-gateway\[redis\]'"):
        builder.build(tmp_path / "out.pyz", extras=("redis",))
    with pytest.raises(builder.BuildError, match="--with takes redis or a wheel"):
        builder.build(tmp_path / "out.pyz", extras=("memcached",))


def _start_zipapp(pyz: Path, home: Path, url: str) -> tuple[subprocess.Popen[str], int]:
    """``pyz server start`` with site-packages off, its config naming a Redis at ``url``."""
    home.mkdir(mode=0o700)
    port = free_port()
    config = home / "config.yaml"
    config.write_text(f"server:\n  port: {port}\nstate:\n  backend: redis\n  url: {url}\n")
    config.chmod(0o600)
    env = {**os.environ, "LLM_GATEWAY_HOME": str(home), "LOG_LEVEL": "warning"}
    process = subprocess.Popen(
        [PYTHON, "-I", "-S", str(pyz), "server", "start"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return process, port


def test_the_zipapp_with_redis_serves_with_the_redis_backend(
    pyz_with_redis: Path, tmp_path: Path, redis_url: str
) -> None:
    import sys

    if sys.version_info < (3, 11, 3):
        pytest.importorskip("async_timeout", reason="redis-py needs async-timeout here")
    process, port = _start_zipapp(pyz_with_redis, tmp_path / "home", redis_url)
    try:
        health = wait_until(lambda: get_health(port), 60, "the zipapp to answer /health")
        assert health["state"]["backend"] == "redis"
        assert health["state"]["reachable"] is True
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)


def test_the_zipapp_without_redis_refuses_the_backend_in_one_line(
    pyz: Path, tmp_path: Path
) -> None:
    process, _ = _start_zipapp(pyz, tmp_path / "home", "redis://127.0.0.1:6379/0")
    _, err = process.communicate(timeout=60)
    assert process.returncode == 1
    assert err == (
        "error: state.backend redis needs the redis package: pip install 'llm-gateway[redis]', "
        "or build the zipapp with: python3 build_zipapp.py --with redis\n"
    )
