"""OAuth upstream accounts: authorisation flows, token requests, token lifetime.

Theory of operation: the package is layered like the gateway itself. Pure
modules (``pkce``, ``flow``, ``claude_code``, ``registry``, ``records``,
``identity``, ``presentation``) take data and return data; ``token_client``
is the one place a token request meets the network (through ``upstream.pool``), ``refresh_lock``
the one place a cross-process lock is taken, and ``manager.TokenManager``
composes them: it hands out access tokens, refreshes them ahead of expiry or
after a 401, single-flight per account, and saves what it obtained before it is
used. Importing the package does no work; import the modules you need.
"""
