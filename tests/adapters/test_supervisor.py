"""Rendering and checking supervisord configs, and the pure decisions of the adapter."""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path

import pytest
from supervisor.options import ClientOptions, ServerOptions, UnhosedConfigParser

from controlplane.adapters.supervisor.client import (
    ProgramOptions,
    Supervisor,
    check_program,
    plan_update,
    process_info,
    render_program,
    render_supervisord_conf,
    stale_programs,
    write_program,
    write_supervisord_conf,
)
from controlplane.adapters.supervisor.render import (
    env_value,
    percent_escape,
    resource_path,
    shell_word,
)
from controlplane.domain.models import Project
from controlplane.domain.runner import ProcessState, is_ours, parse_program, program_name
from controlplane.errors import SupervisorError
from controlplane.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def settings_at(data: Path) -> Settings:
    return Settings.from_env({"CONTROLPLANE_DATA_DIR": str(data), "CONTROLPLANE_RUN_AS": "x"})


def project(name: str = "shop") -> Project:
    return Project(name=name, repo="https://example.com/x.git", path="/srv/shop")


def parse_groups(text: str, here: Path) -> dict[str, object]:
    """What supervisord itself makes of a program file: {program: ProcessConfig}."""
    options = ServerOptions()
    options.here = str(here)
    parser = UnhosedConfigParser()
    parser.read_string(text)
    groups = options.process_groups_from_parser(parser)
    return {p.name: p for g in groups for p in g.process_configs}


def test_templates_are_found_where_the_wheel_puts_them() -> None:
    build = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["build"]
    included = build["targets"]["wheel"]["force-include"]
    assert included["supervisord.conf.tmpl"] == "controlplane/_data/supervisord.conf.tmpl"
    assert included["templates"] == "controlplane/_data/templates"
    assert resource_path("supervisord.conf.tmpl") == ROOT / "supervisord.conf.tmpl"
    assert resource_path("templates/program.conf.j2") == ROOT / "templates" / "program.conf.j2"
    with pytest.raises(FileNotFoundError, match="reinstall"):
        resource_path("templates/nope.j2")


def test_escaping_filters() -> None:
    assert percent_escape("50%(x)s") == "50%%(x)s"
    assert shell_word("/a b/%p") == "'/a b/%%p'"
    assert env_value("/d%ata") == '"/d%%ata"'
    with pytest.raises(ValueError, match="environment"):
        env_value('say "hi"')


def test_program_names() -> None:
    assert program_name("shop", "test") == "shop-test"
    assert parse_program("my-shop-prod") == ("my-shop", "prod")
    assert parse_program("controlplane") is None
    assert parse_program("controlplane-events") is None
    assert not is_ours("shop-staging")


def test_plan_touches_only_our_groups() -> None:
    plan = plan_update(
        ["b-prod", "controlplane"], ["a-test", "controlplane-events"], ["old-prod", "other"]
    )
    assert (plan.added, plan.changed, plan.removed) == (["b-prod"], ["a-test"], ["old-prod"])
    assert plan_update([], ["controlplane"], []).empty


def test_stale_programs_are_ours_and_unwanted() -> None:
    present = ["a-prod", "a-test", "b-prod", "controlplane", "notes"]
    assert stale_programs(present, ["a-prod", "b-prod"]) == ["a-test"]


def test_process_info_uptime() -> None:
    raw = {
        "name": "a-prod",
        "group": "a-prod",
        "statename": "RUNNING",
        "pid": 7,
        "start": 100,
        "stop": 0,
        "now": 130,
        "exitstatus": 0,
        "description": "pid 7, uptime 0:00:30",
    }
    assert process_info(raw).uptime == 30
    assert process_info(raw).state is ProcessState.RUNNING
    assert process_info({**raw, "statename": "EXITED"}).uptime == 0


def test_percent_in_paths_survives_supervisords_own_parsing(tmp_path: Path) -> None:
    data = tmp_path / "da%(ENV_HOME)s%ta"
    settings = settings_at(data)
    conf = write_supervisord_conf(settings)
    write_program(settings, project(), "prod")
    assert "da%%(ENV_HOME)s%%ta" in (settings.confd / "shop-prod.conf").read_text()
    options = ServerOptions()
    options.realize(args=["-c", str(conf)])
    assert options.logfile == str(data / "logs" / "supervisord.log")
    assert options.server_configs[0]["file"] == str(settings.supervisor_sock)
    configs = {c.name: c for g in options.process_group_configs for c in g.process_configs}
    shop = configs["shop-prod"]
    assert shop.stdout_logfile == str(data / "logs" / "shop-prod.out.log")
    assert shop.stderr_logfile == str(data / "logs" / "shop-prod.err.log")
    assert shop.environment["CONTROLPLANE_DATA_DIR"] == str(data)
    assert shop.command.endswith("-m controlplane run-slot shop prod")
    assert shop.stopasgroup and shop.killasgroup and shop.autorestart
    assert configs["controlplane-events"].stderr_logfile == str(data / "logs" / "events.err.log")
    assert configs["controlplane"].stdout_logfile == str(data / "logs" / "controlplane.log")
    client = ClientOptions()
    client.realize(args=["-c", str(conf)])
    assert client.serverurl == f"unix://{settings.supervisor_sock}"


def test_program_command_uses_this_interpreter(tmp_path: Path) -> None:
    import sys

    settings = settings_at(tmp_path / "data")
    text = render_program(settings, project(), "test", cli=["/opt/my python/bin/python", "-m", "x"])
    (tmp_path / "data" / "logs").mkdir(parents=True)
    config = parse_groups(text, tmp_path)["shop-test"]
    assert config.command == "'/opt/my python/bin/python' -m x run-slot shop test"  # type: ignore[attr-defined]
    assert sys.executable in render_program(settings, project(), "test")


def test_a_bad_program_file_never_lands(tmp_path: Path) -> None:
    settings = settings_at(tmp_path / "data")
    assert write_program(settings, project(), "prod") is True
    path = settings.confd / "shop-prod.conf"
    good = path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(SupervisorError, match="invalid"):
        write_program(settings, project(), "prod", options=ProgramOptions(log_maxbytes="lots"))
    assert path.read_text() == good
    assert sorted(p.name for p in settings.confd.iterdir()) == ["shop-prod.conf"]
    assert write_program(settings, project(), "prod") is False


def test_a_value_that_cannot_be_written_is_refused(tmp_path: Path) -> None:
    settings = settings_at(tmp_path / 'da"ta')
    with pytest.raises(
        SupervisorError, match="cannot write the program config for shop-prod"
    ) as info:
        write_program(settings, project(), "prod")
    assert not any(settings.confd.glob("*.conf"))
    assert "cannot be written into a supervisord environment= line" in str(info.value)
    assert info.value.text.render("ru").startswith(
        "не удаётся записать конфигурацию программы shop-prod: '"
    )
    assert "нельзя записать в строку environment= supervisord" in info.value.text.render("ru")


def test_no_supervisord_is_said_in_either_language(tmp_path: Path) -> None:
    with pytest.raises(SupervisorError) as info:
        Supervisor(settings_at(tmp_path / "data"))
    assert str(info.value) == "supervisord is not running; start it with `controlplane up`"
    assert info.value.text.render("ru") == (
        "supervisord не запущен; запустите его командой `controlplane up`"
    )


def test_check_refuses_a_file_for_another_program(tmp_path: Path) -> None:
    settings = settings_at(tmp_path / "data")
    (tmp_path / "data" / "logs").mkdir(parents=True)
    text = render_program(settings, project("other"), "prod")
    with pytest.raises(SupervisorError, match="not shop-prod"):
        check_program(text, "shop-prod", tmp_path)


def test_supervisord_conf_has_auth_and_is_private(tmp_path: Path) -> None:
    settings = settings_at(tmp_path / "data")
    path = write_supervisord_conf(settings)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(settings.supervisor_auth.stat().st_mode) == 0o600
    assert stat.S_IMODE(settings.supervisor_dir.stat().st_mode) == 0o700
    user, _, password = settings.supervisor_auth.read_text().strip().partition(":")
    assert len(password) >= 24
    parser = UnhosedConfigParser()
    parser.read_string(path.read_text())
    assert parser.get("unix_http_server", "password") == password
    assert parser.get("supervisorctl", "username") == user
    assert parser.get("unix_http_server", "chmod") == "0700"
    assert parser.get("include", "files") == f"{settings.confd}/*.conf"
    assert parser.get("eventlistener:controlplane-events", "events") == "PROCESS_STATE"
    assert parser.get("program:controlplane", "command").endswith("-m controlplane serve")
    assert render_supervisord_conf(settings) == path.read_text(), "password is generated once"
    assert "program:controlplane" not in render_supervisord_conf(settings, serve=False)
    os.chmod(settings.supervisor_auth, 0o600)
