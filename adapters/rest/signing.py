"""The Standard Webhooks headers of a call, signed by ``standardwebhooks.Webhook.sign``."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime

from standardwebhooks import Webhook


def signing_key(token: str) -> bytes:
    """The HMAC key: the token's UTF-8 bytes, or the decoded secret of a ``whsec_`` token
    (decoded as ``standardwebhooks.Webhook`` does, padding added)."""
    if token.startswith("whsec_"):
        return base64.b64decode(token[len("whsec_") :] + "==")
    return token.encode()


class Signer:
    """Signs calls with one platform's key; ``Webhook`` is given the key's bytes, so a token that
    is not ``whsec_`` is never taken for base64."""

    def __init__(self, key: bytes) -> None:
        if not key:
            raise ValueError("the token's whsec_ secret is empty")
        self._webhook = Webhook(key)

    def headers(self, msg_id: str, payload: str) -> list[tuple[bytes, bytes]]:
        """``webhook-id``, ``webhook-timestamp`` (now) and ``webhook-signature`` of ``payload``."""
        timestamp = int(time.time())
        signature = self._webhook.sign(msg_id, datetime.fromtimestamp(timestamp, UTC), payload)
        return [
            (b"webhook-id", msg_id.encode()),
            (b"webhook-timestamp", b"%d" % timestamp),
            (b"webhook-signature", signature.encode()),
        ]
