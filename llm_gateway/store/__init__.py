"""Stores the gateway keeps in its home besides the configuration."""
