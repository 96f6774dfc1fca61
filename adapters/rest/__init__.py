"""The REST transport: each event POSTed to ``<endpoint><kind>``, signed with Standard Webhooks."""

from __future__ import annotations

from adapters.rest.adapter import RestAdapter

__all__ = ["RestAdapter"]
