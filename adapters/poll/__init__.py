"""The long-poll transport: the platform calls ``POST /bus`` for what follows its last seq."""

from adapters.poll.view import serve

__all__ = ["serve"]
