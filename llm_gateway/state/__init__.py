"""Backends for state the gateway's processes share (see ``routing/state.py``).

* ``shared_buckets``: per-key rate-limit buckets in memory shared by the
  forked workers of ``server start --workers N``.
"""
