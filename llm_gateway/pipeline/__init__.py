"""The request path: authenticate, route, convert, send upstream, relay back."""
