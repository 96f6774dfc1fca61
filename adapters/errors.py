"""What can go wrong when delivering to a platform; the type says whether to retry.

DeliveryError (message)
├── Retryable   connection error, timeout, 408, 429, 5xx: the platform is down for now;
│               retry later with backoff, the stream waits behind this event
└── Permanent   any other 4xx: the platform rejects this event for good; dead-letter it
                (keeping the answer) and go on with the next one
"""

from __future__ import annotations


class DeliveryError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Retryable(DeliveryError):
    pass


class Permanent(DeliveryError):
    pass


class Unsupported(Permanent):
    pass
