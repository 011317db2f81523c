"""How the user started the CLI, so hints print a command that works when pasted.

Theory of operation: ``invoked_as`` looks at the interpreter's view of the
command line once, at the CLI's edge, and returns the words that start the
CLI again: ``llm-gateway`` for an installed script found on ``PATH`` (its path
otherwise), ``python3 llm-gateway.pyz`` for the zipapp, ``python3 -m
llm_gateway`` for the package run as a module, each with the interpreter and
its options exactly as typed. Anything unrecognised gives ``llm-gateway``.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Sequence

__all__ = ["DEFAULT_PROGRAM", "invoked_as"]

DEFAULT_PROGRAM = "llm-gateway"


def invoked_as(
    argv: Sequence[str],
    orig_argv: Sequence[str],
    package_dir: str,
    which: Callable[[str], str | None],
) -> str:
    """The command that starts this CLI, as the user would type it.

    ``argv`` and ``orig_argv`` are ``sys.argv`` and ``sys.orig_argv``;
    ``package_dir`` is the directory of the ``llm_gateway`` package (inside the
    archive for the zipapp); ``which`` finds a command on ``PATH``.
    """
    if not argv or argv[0] in ("", "-c"):
        return DEFAULT_PROGRAM
    script = os.path.abspath(argv[0])
    package = os.path.abspath(package_dir)
    zipapp = package.startswith(script + os.sep)
    module = script == os.path.join(package, "__main__.py")
    if zipapp or module:
        # the interpreter and its options, then the archive or "-m llm_gateway":
        # everything the user typed before the CLI's own arguments
        typed = len(orig_argv) - (len(argv) - 1)
        words = list(orig_argv[:typed]) if 0 < typed <= len(orig_argv) else []
        if len(words) < 2:
            words = ["python3", argv[0]] if zipapp else ["python3", "-m", "llm_gateway"]
        return shlex.join(words)
    name = os.path.basename(argv[0])
    found = which(name)
    if found is not None and os.path.abspath(found) == script:
        return name
    return shlex.quote(argv[0])
