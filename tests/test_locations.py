"""Where config and data go: platformdirs user locations, or /etc/siq and /var/lib/siq as root."""

import os
from pathlib import Path

import pytest

from siqd import paths
from siqd.config import find_config_file, parse_config, sqlite_path


@pytest.fixture
def user_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("SIQ_CONFIG", raising=False)
    return tmp_path


def test_user_locations_without_root(user_dirs, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert paths.default_config_dir() == user_dirs / "config" / "siq"
    assert paths.default_data_dir() == user_dirs / "data" / "siq"
    store = parse_config({}, "test").store
    assert sqlite_path(store) == user_dirs / "data" / "siq" / "siq.db"


def test_site_locations_as_root(user_dirs, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert paths.default_config_dir() == Path("/etc/siq")
    assert paths.default_data_dir() == Path("/var/lib/siq")
    assert sqlite_path(parse_config({}, "test").store) == Path("/var/lib/siq/siq.db")


def test_config_search_order(user_dirs, monkeypatch, tmp_path):
    user_file = user_dirs / "config" / "siq" / "siq.toml"
    assert find_config_file() in (None, Path("/etc/siq/siq.toml"))
    user_file.parent.mkdir(parents=True)
    user_file.write_text('host = "a"\n')
    assert find_config_file() == user_file
    monkeypatch.setenv("SIQ_CONFIG", str(tmp_path / "env.toml"))
    assert find_config_file() == tmp_path / "env.toml"
    assert find_config_file("/explicit.toml") == Path("/explicit.toml")


def test_relative_store_from_config_folder(tmp_path):
    config = parse_config({"store": "sqlite:///./data/siq.db"}, "test", tmp_path / "siq.toml")
    assert sqlite_path(config.store) == tmp_path / "data" / "siq.db"
