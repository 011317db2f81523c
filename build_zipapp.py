#!/usr/bin/env python3
"""Build ``llm-gateway.pyz``: the gateway and its pure-Python dependencies in one file.

The archive holds ``llm_gateway`` from this tree plus ``h11``, ``certifi`` and
the pure-Python part of PyYAML, taken from the pinned copy in ``vendor/``
(nothing needs to be installed: any Python 3.10+ can build it). Every vendored
file is checked against ``vendor/SHA256SUMS`` first; a changed, missing or
unlisted file stops the build. The archive must run on any Python 3.10+ with
site-packages switched off, so:

* no native extension goes in: PyYAML's optional ``_yaml`` accelerator is left
  out (PyYAML falls back to pure Python), and any other native file fails the
  build;
* the output is reproducible: files in sorted order, fixed timestamps and
  permissions, so building twice from the same tree gives identical bytes;
* its ``__main__.py`` is ``llm_gateway/__main__.py``, which checks the Python
  version before importing anything, so an old interpreter gets a sentence.

Usage: ``python3 build_zipapp.py [--output PATH] [--with redis|WHEEL]...``

Optional extras (``--with``) are bundled too, pure Python only: ``--with
redis`` takes redis-py (for ``state.backend: redis``) from the installed
distribution, ``--with redis-X-py3-none-any.whl`` from a wheel. Either way
every file is checked against the distribution's own ``RECORD`` first, as
the vendored wheels are. redis-py needs ``async-timeout`` on Python older
than 3.11.3: it is bundled when installed (or given as a wheel), and the
build says when it is not.

Updating the vendored copy: download the wheels (``python3 -m pip download
--no-deps h11==V certifi==V pyyaml==V``), then ``python3 build_zipapp.py
--vendor WHEEL...``: each wheel's files are checked against its own ``RECORD``,
its packages and licence files replace those in ``vendor/``, and
``vendor/SHA256SUMS`` is rewritten; record the wheels' names and SHA-256 in
``vendor/README.md``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import importlib.metadata
import os
import shutil
import stat
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENDOR = ROOT / "vendor"
SUMS = "SHA256SUMS"
#: files of ``vendor/`` that describe it and are not bundled
VENDOR_DOCS = ("README.md", SUMS)
SHEBANG = b"#!/usr/bin/env python3\n"
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
NATIVE_SUFFIXES = (".so", ".pyd", ".dylib", ".dll")
#: native modules a dependency imports optionally and works without
OPTIONAL_NATIVE = ("yaml/_yaml",)
#: importable package -> its distribution on PyPI
DEPENDENCIES = {"h11": "h11", "certifi": "certifi", "yaml": "PyYAML"}
#: ``--with NAME``: importable package -> distribution, the first one required
EXTRAS = {"redis": {"redis": "redis", "async_timeout": "async-timeout"}}


class BuildError(Exception):
    pass


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def is_native(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return base.endswith(NATIVE_SUFFIXES) or ".cpython-" in base


def package_files(name: str, source: Path) -> list[tuple[str, Path]]:
    """(archive name, file) pairs for one package, native files checked."""
    files: list[tuple[str, Path]] = []
    for path in sorted(source.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts or path.suffix in (".pyc", ".pyo"):
            continue
        arcname = f"{name}/{path.relative_to(source).as_posix()}"
        if is_native(arcname):
            if any(arcname.startswith(prefix) for prefix in OPTIONAL_NATIVE):
                continue
            raise BuildError(f"refusing to bundle native extension {arcname}")
        files.append((arcname, path))
    return files


def read_sums(vendor: Path) -> dict[str, str]:
    """``vendor/SHA256SUMS`` (``sha256sum`` format): relative path -> hex digest."""
    try:
        text = (vendor / SUMS).read_text(encoding="utf-8")
    except OSError as exc:
        raise BuildError(f"cannot read {vendor / SUMS}: {exc.strerror or exc}") from None
    sums: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        digest, _, name = line.partition("  ")
        if len(digest) != 64 or not name:
            raise BuildError(f"{vendor / SUMS}: line {number} is not 'SHA256  PATH'")
        sums[name] = digest
    return sums


def vendored_files(vendor: Path = VENDOR) -> list[tuple[str, bytes]]:
    """(archive name, bytes) of every vendored file, each checked against its pin."""
    sums = read_sums(vendor)
    found: dict[str, bytes] = {}
    for path in sorted(vendor.rglob("*")):
        relative = path.relative_to(vendor).as_posix()
        if not path.is_file() or relative in VENDOR_DOCS or "__pycache__" in path.parts:
            continue
        if relative not in sums:
            raise BuildError(f"vendor/{relative} is not listed in vendor/{SUMS}")
        data = path.read_bytes()
        if sha256(data) != sums[relative]:
            raise BuildError(f"vendor/{relative} does not match its SHA-256 in vendor/{SUMS}")
        if is_native(relative):
            raise BuildError(f"refusing to bundle native extension {relative}")
        found[relative] = data
    missing = sorted(set(sums) - set(found))
    if missing:
        raise BuildError(f"vendor/{missing[0]} is listed in vendor/{SUMS} but missing")
    for package in DEPENDENCIES:
        if f"{package}/__init__.py" not in found:
            raise BuildError(f"vendor/{package} is missing")
    return sorted(found.items())


def _entry(zf: zipfile.ZipFile, arcname: str, data: bytes) -> None:
    info = zipfile.ZipInfo(arcname, date_time=FIXED_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (stat.S_IFREG | 0o644) << 16
    info.create_system = 3
    zf.writestr(info, data, compresslevel=9)


def build(output: Path, vendor: Path = VENDOR, extras: tuple[str, ...] = ()) -> Path:
    main = (ROOT / "llm_gateway" / "__main__.py").read_bytes()
    entries: list[tuple[str, bytes]] = [("__main__.py", main)]
    for arcname, path in package_files("llm_gateway", ROOT / "llm_gateway"):
        entries.append((arcname, path.read_bytes()))
    entries.extend(vendored_files(vendor))
    bundled: dict[str, bytes] = {}
    for choice in extras:
        bundled.update(extra_files(choice))
    taken = {name for name, _ in entries}
    entries.extend((name, data) for name, data in bundled.items() if name not in taken)
    entries.sort()
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(SHEBANG)
        with zipfile.ZipFile(handle, "w") as zf:
            for arcname, data in entries:
                _entry(zf, arcname, data)
    os.chmod(tmp, 0o755)
    os.replace(tmp, output)
    return output


# --- refreshing vendor/ from wheels ---------------------------------------------------


def _record_digest(entry: str) -> str:
    """A RECORD hash (``sha256=<urlsafe base64>``) as hex."""
    algorithm, _, value = entry.partition("=")
    if algorithm != "sha256":
        raise BuildError(f"unsupported RECORD hash {algorithm!r}")
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).hex()


def wheel_files(
    wheel: Path, packages: tuple[str, ...] = tuple(DEPENDENCIES)
) -> tuple[str, dict[str, bytes]]:
    """The distribution name and the files of ``packages`` (with its licences)
    in one wheel, each checked against the wheel's own RECORD."""
    with zipfile.ZipFile(wheel) as zf:
        names = [n for n in zf.namelist() if not n.endswith("/")]
        records = [n for n in names if n.endswith(".dist-info/RECORD")]
        if len(records) != 1:
            raise BuildError(f"{wheel.name}: not a wheel (no single RECORD)")
        info_dir = records[0].rsplit("/", 1)[0]
        distribution = info_dir.split("-", 1)[0]
        expected: dict[str, str] = {}
        for line in zf.read(records[0]).decode().splitlines():
            name, digest, _ = line.rsplit(",", 2)
            if digest:
                expected[name] = _record_digest(digest)
        files: dict[str, bytes] = {}
        for name in names:
            top = name.split("/", 1)[0]
            licence = name.startswith(f"{info_dir}/licenses/")
            if not licence and (top not in packages or is_native(name)):
                if top in packages and not licence and top not in DEPENDENCIES:
                    raise BuildError(f"refusing to bundle native extension {name}")
                continue
            data = zf.read(name)
            if expected.get(name) != sha256(data):
                raise BuildError(f"{wheel.name}: {name} does not match the wheel's RECORD")
            if licence:
                name = f"licenses/{distribution}/" + name.split("/licenses/", 1)[1]
            files[name] = data
    return distribution, files


def installed_files(distribution: str, packages: tuple[str, ...]) -> dict[str, bytes]:
    """The files of ``packages`` (with its licences) in an installed distribution,
    each checked against its RECORD."""
    try:
        found = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        raise BuildError(f"{distribution} is not installed") from None
    files: dict[str, bytes] = {}
    for entry in found.files or ():
        name = entry.as_posix()
        top = name.split("/", 1)[0]
        licence = top.endswith(".dist-info") and "/licenses/" in name
        if not licence and (top not in packages or "__pycache__" in name):
            continue
        if is_native(name):
            raise BuildError(f"refusing to bundle native extension {name}")
        data = Path(str(entry.locate())).read_bytes()
        if entry.hash is None or _record_digest(f"{entry.hash.mode}={entry.hash.value}") != sha256(
            data
        ):
            raise BuildError(f"the installed {distribution}: {name} does not match its RECORD")
        if licence:
            name = f"licenses/{distribution}/" + name.split("/licenses/", 1)[1]
        files[name] = data
    if not any(name.startswith(f"{packages[0]}/") for name in files):
        raise BuildError(f"the installed {distribution} holds no {packages[0]} package")
    return files


def extra_files(choice: str) -> dict[str, bytes]:
    """What ``--with choice`` bundles: an extra's name (installed) or a wheel's path."""
    if choice.endswith(".whl"):
        wheel = Path(choice)
        if not wheel.is_file():
            raise BuildError(f"no such wheel: {choice}")
        packages = tuple(p for extra in EXTRAS.values() for p in extra)
        _, files = wheel_files(wheel, packages)
        return files
    if choice not in EXTRAS:
        raise BuildError(f"--with takes {', '.join(EXTRAS)} or a wheel's path, not {choice!r}")
    files: dict[str, bytes] = {}
    (first, distribution), *others = EXTRAS[choice].items()
    try:
        files.update(installed_files(distribution, (first,)))
    except BuildError as exc:
        raise BuildError(
            f"--with {choice}: {exc}; install it (pip install 'llm-gateway[{choice}]') "
            f"or pass its wheel: --with {distribution}-VERSION-py3-none-any.whl"
        ) from None
    for package, name in others:
        try:
            files.update(installed_files(name, (package,)))
        except BuildError:
            print(
                f"note: {name} is not installed: the archive's {choice} support needs "
                f"Python 3.11.3 or newer (or add --with {name}-VERSION-py3-none-any.whl)",
                file=sys.stderr,
            )
    return files


def vendor_wheels(wheels: list[Path], vendor: Path = VENDOR) -> None:
    """Replace the vendored packages that ``wheels`` provide and rewrite SHA256SUMS."""
    for wheel in wheels:
        _, files = wheel_files(wheel)
        for top in {name.split("/", 1)[0] for name in files if not name.startswith("licenses/")}:
            shutil.rmtree(vendor / top, ignore_errors=True)
        for name, data in files.items():
            target = vendor / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        print(f"vendored {wheel.name}  sha256 {sha256(wheel.read_bytes())}")
    lines = [
        f"{sha256(path.read_bytes())}  {path.relative_to(vendor).as_posix()}"
        for path in sorted(vendor.rglob("*"))
        if path.is_file() and path.relative_to(vendor).as_posix() not in VENDOR_DOCS
    ]
    (vendor / SUMS).write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the llm-gateway zipapp.")
    parser.add_argument(
        "--output", type=Path, default=ROOT / "llm-gateway.pyz", help="where to write the .pyz"
    )
    parser.add_argument(
        "--vendor",
        type=Path,
        nargs="+",
        metavar="WHEEL",
        help="refresh vendor/ from these wheels instead of building",
    )
    parser.add_argument(
        "--with",
        dest="extras",
        action="append",
        default=[],
        metavar="EXTRA",
        help="bundle an optional extra too: redis (installed) or a wheel's path; repeatable",
    )
    args = parser.parse_args(argv)
    try:
        if args.vendor:
            vendor_wheels(args.vendor)
            return 0
        path = build(args.output, extras=tuple(args.extras))
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"built {path} ({path.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
