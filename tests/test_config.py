"""Settings: defaults, then the HUB_CONFIG_FILE, then the environment, then a test's mapping."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask

from hub.config import SETTINGS, load_config


def _load(**overrides: object) -> dict:
    return load_config(Flask(__name__), overrides or None)


def test_defaults_apply_without_a_file_or_environment(monkeypatch) -> None:
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("HUB_CONFIG_FILE", raising=False)
    config = _load()
    assert config["HUB_WAKE_INTERVAL"] == 2.0 and config["HUB_DELIVERY"] is True


def test_a_config_file_sets_values_and_the_environment_overrides_it(
    monkeypatch, tmp_path: Path
) -> None:
    config_file = tmp_path / "hub.cfg"
    config_file.write_text(
        "HUB_RETRY_MAX_DELAY = 60\nHUB_DELIVERY = 'off'\nHUB_LOG_LEVEL = 'DEBUG'\nlower = 1\n"
    )
    monkeypatch.setenv("HUB_CONFIG_FILE", str(config_file))
    monkeypatch.setenv("HUB_LOG_LEVEL", "WARNING")
    config = _load()
    assert config["HUB_RETRY_MAX_DELAY"] == 60.0  # from the file, as the setting's type
    assert config["HUB_DELIVERY"] is False  # "off", read by the setting's parser
    assert config["HUB_LOG_LEVEL"] == "WARNING"  # the environment wins over the file
    assert "lower" not in config  # only upper-case names are settings


def test_a_relative_config_file_is_read_from_the_working_folder(
    monkeypatch, tmp_path: Path
) -> None:
    (tmp_path / "hub.cfg").write_text("HUB_POLL_TIMEOUT = 5\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HUB_CONFIG_FILE", "hub.cfg")
    assert _load()["HUB_POLL_TIMEOUT"] == 5.0


def test_environment_strings_get_their_setting_type(monkeypatch) -> None:
    monkeypatch.setenv("HUB_DELIVERY_BATCH", "7")
    monkeypatch.setenv("HUB_SCHEDULER", "False")
    monkeypatch.setenv("HUB_SYNC_CRON", "0 4 * * *")
    config = _load()
    assert config["HUB_DELIVERY_BATCH"] == 7
    assert config["HUB_SCHEDULER"] is False
    assert config["HUB_SYNC_CRON"] == "0 4 * * *"


def test_a_mapping_given_to_the_app_overrides_everything(monkeypatch) -> None:
    monkeypatch.setenv("HUB_POLL_TIMEOUT", "3")
    assert _load(HUB_POLL_TIMEOUT=9.0)["HUB_POLL_TIMEOUT"] == 9.0


@pytest.mark.parametrize(
    ("where", "value"), [("environment", "soon"), ("file", "'soon'")], ids=["env", "file"]
)
def test_a_wrong_value_stops_the_hub_naming_the_setting(
    monkeypatch, tmp_path: Path, where: str, value: str
) -> None:
    if where == "environment":
        monkeypatch.setenv("HUB_RETRY_BASE_DELAY", value)
    else:
        config_file = tmp_path / "hub.cfg"
        config_file.write_text(f"HUB_RETRY_BASE_DELAY = {value}\n")
        monkeypatch.setenv("HUB_CONFIG_FILE", str(config_file))
    with pytest.raises(SystemExit, match="HUB_RETRY_BASE_DELAY='soon'"):
        _load()


@pytest.mark.parametrize("text", [None, "HUB_POLL_TIMEOUT = = 5\n"], ids=["missing", "broken"])
def test_a_config_file_that_cannot_be_read_stops_the_hub_naming_it(
    monkeypatch, tmp_path: Path, text: str | None
) -> None:
    config_file = tmp_path / "hub.cfg"
    if text is not None:
        config_file.write_text(text)
    monkeypatch.setenv("HUB_CONFIG_FILE", str(config_file))
    with pytest.raises(SystemExit, match=r"cannot read HUB_CONFIG_FILE=.*hub\.cfg"):
        _load()
