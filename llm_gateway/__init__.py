"""llm-gateway: one endpoint for LLM clients, many upstream accounts behind it."""

__version__ = "0.1.0"
__all__ = ["__version__"]
