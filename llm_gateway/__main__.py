"""``python -m llm_gateway`` and the zipapp's entry point."""

from llm_gateway.cli.main import main

raise SystemExit(main())
