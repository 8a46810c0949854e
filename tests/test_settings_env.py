"""Settings read the environment through one helper; a bad value raises ImproperlyConfigured."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, env_list, parse_database_url


def test_it_parses_a_postgres_url():
    db = parse_database_url("postgres://u:p%40ss@db.example:6543/registry?sslmode=require")
    assert db["NAME"] == "registry"
    assert db["USER"] == "u"
    assert db["PASSWORD"] == "p@ss"
    assert db["HOST"] == "db.example"
    assert db["PORT"] == "6543"
    assert db["OPTIONS"] == {"sslmode": "require"}


@pytest.mark.parametrize(
    "url", ["sqlite:///db.sqlite3", "mysql://root@localhost/x", "postgres://localhost", "postgres://h:notaport/x"]
)
def test_it_rejects_a_database_url_that_is_not_postgres(url):
    with pytest.raises(ImproperlyConfigured):
        parse_database_url(url)


def test_it_rejects_a_boolean_it_does_not_know(monkeypatch):
    monkeypatch.setenv("DEBUG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="DEBUG"):
        env_bool("DEBUG", False)
    monkeypatch.setenv("DEBUG", "true")
    assert env_bool("DEBUG", False) is True


def test_it_rejects_a_non_integer(monkeypatch):
    monkeypatch.setenv("CELERY_TASK_TIME_LIMIT", "ten")
    with pytest.raises(ImproperlyConfigured):
        env_int("CELERY_TASK_TIME_LIMIT", 1)


def test_it_splits_lists(monkeypatch):
    monkeypatch.setenv("ALLOWED_HOSTS", "a.example, b.example,,")
    assert env_list("ALLOWED_HOSTS", []) == ["a.example", "b.example"]


def test_settings_refuse_to_start_with_a_bad_value():
    import os
    import subprocess
    import sys

    env = {**os.environ, "DEBUG": "perhaps"}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env={**env, "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "DEBUG" in result.stderr
