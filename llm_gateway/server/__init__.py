"""The inbound side: an asyncio stream server speaking HTTP/1.1 through h11."""
