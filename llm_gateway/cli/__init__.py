"""The ``llm-gateway`` command line: one small module per subcommand."""
