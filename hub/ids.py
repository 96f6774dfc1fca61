"""Global ids: ``"<platform name>:<local id>"``, and local ids kept as given (int or str)."""

from __future__ import annotations

SEPARATOR = ":"


def global_id(platform_name: str, local_id: int | str) -> str:
    """Format the global id of a platform's user or room."""
    return f"{platform_name}{SEPARATOR}{local_id}"


def parse_global_id(value: str) -> tuple[str, str]:
    """Split a global id into (platform name, local id text); names never contain ':'."""
    name, sep, local = value.partition(SEPARATOR)
    if not sep or not name or not local:
        raise ValueError(f"not a global id (expected 'Platform:localId'): {value!r}")
    return name, local


def local_id_key(value: int | str) -> tuple[str, bool]:
    """Return how a local id is stored: its text and whether it was an integer."""
    if isinstance(value, bool):  # bool is an int subclass; never a valid id
        raise ValueError("a local id is an integer or a string, not a boolean")
    return str(value), isinstance(value, int)


def local_id_value(text: str, is_int: bool) -> int | str:
    """Return a stored local id in the type the platform gave it."""
    return int(text) if is_int else text
