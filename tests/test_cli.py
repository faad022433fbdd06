import pytest
from typer.testing import CliRunner

from sentimon.cli import app

COMMANDS = ["config", "train", "tune", "evaluate", "predict", "bench"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    res = CliRunner().invoke(app, [command, "--help"])
    assert res.exit_code == 0
    assert "Usage" in res.output


def test_config_prints_effective_settings(monkeypatch):
    import json

    from sentimon.settings import get_settings

    get_settings.cache_clear()
    monkeypatch.setenv("SENTIMON_THREADS", "1")
    res = CliRunner().invoke(app, ["config"])
    get_settings.cache_clear()
    assert res.exit_code == 0
    assert json.loads(res.stdout)["threads"] == 1


def test_unknown_profile_is_a_clear_error():
    res = CliRunner().invoke(app, ["train", "--profile", "huge"])
    assert res.exit_code == 2 and "unknown profile" in res.output
