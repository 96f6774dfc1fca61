"""Ingest: the one path for every call a platform makes, over HTTP or a WebSocket frame.

``calls`` validates a call and runs it once per idempotency key (``idempotency``); ``users``,
``rooms`` and ``messages`` save what a platform sent and queue it, rendered per receiver, in
the same transaction; ``notifications`` queue notices, ``direct`` pushes unstored messages to
live sockets. ``directory`` finds and upserts users and rooms by (platform, local id).
"""
