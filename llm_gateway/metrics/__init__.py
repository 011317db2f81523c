"""Prometheus metrics: a pure registry and its text rendering (``registry``), the
gateway's metric families (``families``), and the sum over ``--workers``
processes (``shared``: per-worker snapshot files in the home)."""
