#!/usr/bin/env python3
"""Build ``llm-gateway.pyz``: the gateway and its pure-Python dependencies in one file.

The archive holds ``llm_gateway`` from this tree plus ``h11``, ``certifi`` and
the pure-Python part of PyYAML, taken from the Python environment running this
script (install them first: ``python3 -m pip install h11 certifi pyyaml``).
It must run on any Python 3.10+ with site-packages switched off, so:

* no native extension goes in: PyYAML's optional ``_yaml`` accelerator is left
  out (PyYAML falls back to pure Python), and any other native file fails the
  build;
* the output is reproducible: files in sorted order, fixed timestamps and
  permissions, so building twice from the same tree gives identical bytes.

Usage: ``python3 build_zipapp.py [--output PATH]``
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import os
import stat
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
SHEBANG = b"#!/usr/bin/env python3\n"
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
NATIVE_SUFFIXES = (".so", ".pyd", ".dylib", ".dll")
#: native modules a dependency imports optionally and works without
OPTIONAL_NATIVE = ("yaml/_yaml",)
DEPENDENCIES = {"h11": "h11", "certifi": "certifi", "yaml": "PyYAML"}
MAIN = b'''"""Entry point of the llm-gateway zipapp."""

from llm_gateway.cli.main import main

raise SystemExit(main())
'''


class BuildError(Exception):
    pass


def package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise BuildError(
            f"package {name!r} is not importable here; install it first: "
            f"python3 -m pip install {DEPENDENCIES.get(name, name)}"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def package_files(name: str, source: Path) -> list[tuple[str, Path]]:
    """(archive name, file) pairs for one package, native files checked."""
    files: list[tuple[str, Path]] = []
    for path in sorted(source.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts or path.suffix in (".pyc", ".pyo"):
            continue
        arcname = f"{name}/{path.relative_to(source).as_posix()}"
        if path.name.endswith(NATIVE_SUFFIXES) or ".cpython-" in path.name:
            if any(arcname.startswith(prefix) for prefix in OPTIONAL_NATIVE):
                continue
            raise BuildError(f"refusing to bundle native extension {arcname}")
        files.append((arcname, path))
    return files


def license_files(distribution: str) -> list[tuple[str, bytes]]:
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return []
    found = []
    for entry in dist.files or []:
        name = Path(str(entry)).name
        if name.upper().startswith(("LICENSE", "LICENCE", "COPYING")):
            located = Path(str(dist.locate_file(entry)))
            if located.is_file():
                found.append((f"licenses/{distribution}/{name}", located.read_bytes()))
    return sorted(found)


def _entry(zf: zipfile.ZipFile, arcname: str, data: bytes) -> None:
    info = zipfile.ZipInfo(arcname, date_time=FIXED_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (stat.S_IFREG | 0o644) << 16
    info.create_system = 3
    zf.writestr(info, data, compresslevel=9)


def build(output: Path) -> Path:
    entries: list[tuple[str, bytes]] = [("__main__.py", MAIN)]
    for arcname, path in package_files("llm_gateway", ROOT / "llm_gateway"):
        entries.append((arcname, path.read_bytes()))
    for name, distribution in DEPENDENCIES.items():
        for arcname, path in package_files(name, package_dir(name)):
            entries.append((arcname, path.read_bytes()))
        entries.extend(license_files(distribution))
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the llm-gateway zipapp.")
    parser.add_argument(
        "--output", type=Path, default=ROOT / "llm-gateway.pyz", help="where to write the .pyz"
    )
    args = parser.parse_args(argv)
    try:
        path = build(args.output)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"built {path} ({path.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
