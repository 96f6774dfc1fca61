"""Global ids and local ids kept as the platform gave them."""

from __future__ import annotations

import pytest

from hub.ids import global_id, local_id_key, local_id_value, parse_global_id


@pytest.mark.parametrize(
    ("local", "text", "is_int"),
    [(4, "4", True), ("4", "4", False), ("a:b", "a:b", False), (-7, "-7", True)],
)
def test_local_ids_round_trip_with_their_type(local, text, is_int) -> None:
    assert local_id_key(local) == (text, is_int)
    assert local_id_value(text, is_int) == local
    assert type(local_id_value(text, is_int)) is type(local)


def test_booleans_are_not_ids() -> None:
    with pytest.raises(ValueError):
        local_id_key(True)


def test_global_ids_split_at_the_first_colon() -> None:
    assert global_id("BuasApp", 4) == "BuasApp:4"
    assert parse_global_id("BuasApp:room:1") == ("BuasApp", "room:1")
    for bad in ("BuasApp", ":4", "BuasApp:"):
        with pytest.raises(ValueError):
            parse_global_id(bad)
