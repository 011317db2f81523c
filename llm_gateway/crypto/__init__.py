"""Cryptography and secret handling: ChaCha20-Poly1305, sealed secrets, gateway API keys."""
