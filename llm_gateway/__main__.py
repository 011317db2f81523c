"""``python -m llm_gateway`` and the zipapp's entry point.

The version check comes first and uses only syntax that any Python 3 (and
2.7) can parse, so an older interpreter prints a sentence, not a traceback.
"""

import sys

if sys.version_info < (3, 10):  # noqa: UP036 - the one place older versions reach
    message = "llm-gateway needs Python 3.10 or newer (this is %d.%d.%d)\n"  # noqa: UP031
    sys.stderr.write(message % tuple(sys.version_info[:3]))
    sys.exit(1)

from llm_gateway.cli.main import main  # noqa: E402

raise SystemExit(main())
