"""Upstream provider families: one module each, listed in ``registry``."""
