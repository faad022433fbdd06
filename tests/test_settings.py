from pathlib import Path

import pytest

from sentimon.settings import Settings


def test_defaults_point_at_shared_data():
    s = Settings()
    assert s.data_dir.name == "data" and s.data_dir.parent.name == "shared"
    assert s.models_dir == s.var_dir / "models"


def test_environment_overrides(monkeypatch, tmp_path):
    monkeypatch.setenv("SENTIMON_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SENTIMON_THREADS", "1")
    s = Settings()
    assert s.data_dir == tmp_path and s.threads == 1


def test_config_file_and_precedence(monkeypatch, tmp_path):
    config = tmp_path / "conf.toml"
    config.write_text('model = "sentimon-full"\nthreads = 1\n')
    monkeypatch.setenv("SENTIMON_CONFIG", str(config))
    monkeypatch.setenv("SENTIMON_THREADS", "2")
    s = Settings()
    assert s.model == "sentimon-full"
    assert s.threads == 2  # environment beats the file


def test_bad_values_are_rejected(monkeypatch, tmp_path):
    config = tmp_path / "conf.toml"
    config.write_text("colour = 'blue'\n")
    monkeypatch.setenv("SENTIMON_CONFIG", str(config))
    with pytest.raises(ValueError, match="colour"):
        Settings()
    monkeypatch.setenv("SENTIMON_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(FileNotFoundError, match="missing.toml"):
        Settings()


def test_data_source_is_validated(monkeypatch):
    monkeypatch.setenv("SENTIMON_DATA_SOURCE", "ftp")
    with pytest.raises(ValueError):
        Settings()


def test_relative_paths_allowed(monkeypatch):
    monkeypatch.setenv("SENTIMON_VAR_DIR", "somewhere")
    assert Settings().var_dir == Path("somewhere")


def test_example_config_is_valid(monkeypatch):
    from sentimon.settings import PROJECT_ROOT

    monkeypatch.setenv("SENTIMON_CONFIG", str(PROJECT_ROOT / "sentimon.example.toml"))
    s = Settings()
    assert s.model == "auto" and s.data_source == "local"


def test_producers_are_plain_with_one_request_in_flight_unless_idempotence_is_on(monkeypatch):
    from streams.kafka.producer import delivery_config

    plain = delivery_config(Settings().kafka)
    assert plain["enable.idempotence"] is False and plain["max.in.flight.requests.per.connection"] == 1
    assert plain["acks"] == "all"
    monkeypatch.setenv("SENTIMON_KAFKA__IDEMPOTENCE", "true")
    on = delivery_config(Settings().kafka)
    assert on == {"enable.idempotence": True, "acks": "all"}


@pytest.mark.parametrize("name, module", [("uvloop", "uvloop"), ("asyncio", "asyncio")])
def test_the_workers_event_loop_follows_the_setting(monkeypatch, name, module):
    import asyncio

    from sentimon.worker import use_event_loop

    monkeypatch.setenv("SENTIMON_WORKER__EVENT_LOOP", name)
    previous = asyncio.get_event_loop_policy()
    try:
        use_event_loop(Settings().worker.event_loop)

        async def running() -> str:
            return type(asyncio.get_running_loop()).__module__

        loop = asyncio.new_event_loop()
        try:
            assert loop.run_until_complete(running()).split(".")[0] == module
        finally:
            loop.close()
    finally:
        asyncio.set_event_loop_policy(previous)


def test_an_unknown_event_loop_is_refused(monkeypatch):
    monkeypatch.setenv("SENTIMON_WORKER__EVENT_LOOP", "gevent")
    with pytest.raises(ValueError, match="event_loop"):
        Settings()
