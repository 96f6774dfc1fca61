"""What a platform's answer means for delivery: Retryable, Permanent or Unsupported; call URLs."""

from __future__ import annotations

from adapters.errors import Permanent, Retryable, Unsupported

RETRYABLE_STATUS = {408, 429}
ANSWER_KEPT = 500  # characters of a failing answer kept in the error


def join_url(endpoint: str, name: str) -> str:
    """Join endpoint and call name with exactly one '/' (the contract)."""
    return endpoint.rstrip("/") + "/" + name.lstrip("/")


def classify(status: int, body: bytes) -> None:
    """Raise the delivery error a non-2xx answer stands for; return on 2xx.

    A redirect is not followed: it is a failure to retry, like 408, 429 and 5xx."""
    if 200 <= status < 300:
        return
    answer = f"HTTP {status}: {body[:ANSWER_KEPT].decode(errors='replace')}"
    if status in RETRYABLE_STATUS or status >= 500 or status < 400:
        raise Retryable(answer)
    raise Permanent(answer)


def classify_event(status: int, body: bytes, kind: str, url: str) -> None:
    """``classify``, except that 404 on a notification means the platform takes none."""
    if kind == "notification" and status == 404:
        raise Unsupported(f"POST {url} answered 404: the platform takes no notifications")
    classify(status, body)
