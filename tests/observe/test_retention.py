"""Log retention: the limits are settings, rendered into every program file and into
supervisord.conf, refused with the accepted range when malformed, and shown by
`controlplane logs --sizes` with what each log takes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from supervisor.options import ServerOptions

from controlplane.adapters.supervisor.client import (
    ProgramOptions,
    render_program,
    write_program,
    write_supervisord_conf,
)
from controlplane.domain.models import Project
from controlplane.errors import SettingsError
from controlplane.observe.retention import format_sizes, log_sizes
from controlplane.settings import MIB, LogLimit, Settings
from tests.conftest import MakeSettings, cli_env

ROOT = Path(__file__).resolve().parents[2]
SMALL = {
    "CONTROLPLANE_APP_LOG_SIZE": "7MB",
    "CONTROLPLANE_APP_LOG_BACKUPS": "2",
    "CONTROLPLANE_OWN_LOG_SIZE": "20 mb",
    "CONTROLPLANE_OWN_LOG_BACKUPS": "4",
}


def cli(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "controlplane", *args],
        capture_output=True,
        text=True,
        env=cli_env(data_dir, LANG="C.UTF-8", LANGUAGE="", LC_ALL="", **env),
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def test_defaults_and_settings(make_settings: MakeSettings) -> None:
    default = make_settings()
    assert default.app_logs == LogLimit(size=5 * MIB, backups=3)
    assert default.own_logs == LogLimit(size=10 * MIB, backups=5)
    small = make_settings(**SMALL)
    assert small.app_logs == LogLimit(size=7 * MIB, backups=2)
    assert small.own_logs == LogLimit(size=20 * MIB, backups=4)
    assert make_settings(CONTROLPLANE_APP_LOG_SIZE="2048KB").app_logs.size == 2 * MIB
    assert make_settings(CONTROLPLANE_APP_LOG_SIZE="1000M").app_logs.size == 1000 * MIB
    assert make_settings(CONTROLPLANE_APP_LOG_BACKUPS="0").app_logs.backups == 0


@pytest.mark.parametrize(
    ("variable", "value", "needle"),
    [
        ("CONTROLPLANE_APP_LOG_SIZE", "lots", "use 1MB to 1000MB, like 5MB"),
        ("CONTROLPLANE_APP_LOG_SIZE", "0", "use 1MB to 1000MB"),
        ("CONTROLPLANE_OWN_LOG_SIZE", "2GB", "use 1MB to 1000MB"),
        ("CONTROLPLANE_OWN_LOG_SIZE", "512KB", "use 1MB to 1000MB"),
        ("CONTROLPLANE_APP_LOG_BACKUPS", "51", "use a whole number from 0 to 50"),
        ("CONTROLPLANE_OWN_LOG_BACKUPS", "-1", "use a whole number from 0 to 50"),
    ],
)
def test_bad_limits_are_refused_with_the_range(
    make_settings: MakeSettings, variable: str, value: str, needle: str
) -> None:
    with pytest.raises(SettingsError) as refused:
        make_settings(**{variable: value})
    assert refused.value.variable == variable
    message = str(refused.value)
    assert message.startswith(f"{variable}: {value!r} is not a") and needle in message


def test_the_settings_reach_the_program_files_and_supervisord_conf(
    make_settings: MakeSettings, tmp_path: Path
) -> None:
    settings = make_settings(**SMALL)
    project = Project(name="shop", repo="file:///x", path=str(tmp_path / "live"))
    assert write_program(settings, project, "prod")  # checked as supervisord reads it
    text = settings.layout.program_conf("shop-prod").read_text()
    assert text.count(f"_logfile_maxbytes={7 * MIB}\n") == 2
    assert text.count("_logfile_backups=2\n") == 2
    own = render_program(settings, project, "prod", options=ProgramOptions(log_backups=9))
    assert own.count("_logfile_backups=9\n") == 2  # a program's own knob wins

    conf = write_supervisord_conf(settings, cli=["controlplane"])
    options = ServerOptions()
    options.configfile = str(conf)
    options.process_config(do_usage=False)  # supervisord's own reading of the file
    assert (options.logfile_maxbytes, options.logfile_backups) == (20 * MIB, 4)
    programs = {p.name: p for group in options.process_group_configs for p in group.process_configs}
    serve = programs["controlplane"]
    assert (serve.stdout_logfile_maxbytes, serve.stdout_logfile_backups) == (20 * MIB, 4)
    events = programs["controlplane-events"]
    assert (events.stderr_logfile_maxbytes, events.stderr_logfile_backups) == (20 * MIB, 4)


def seed_logs(settings: Settings) -> None:
    logs = settings.logs_dir
    (logs / "builds").mkdir(parents=True)
    (logs / "supervisord.log").write_bytes(b"x" * 3000)
    (logs / "supervisord.log.1").write_bytes(b"x" * 1000)
    (logs / "controlplane.log").write_bytes(b"y" * 100)
    (logs / "shop-prod.out.log").write_bytes(b"z" * 10)
    (logs / "shop-prod.out.log.1").write_bytes(b"z" * 10)
    (logs / "events.jsonl").write_bytes(b"{}\n")
    (logs / "load.json").write_bytes(b"[]")
    (logs / "builds" / "shop-1.log").write_bytes(b"b" * 50)
    (logs / "builds" / "shop-1.2.log").write_bytes(b"b" * 50)


def test_sizes_name_every_log_its_limit_and_the_total(make_settings: MakeSettings) -> None:
    settings = make_settings(**SMALL)
    seed_logs(settings)
    rows = {row.name: row for row in log_sizes(settings)}
    assert set(rows) == {
        "supervisord.log",
        "controlplane.log",
        "events.jsonl",
        "load.json",
        "shop-prod.out.log",
        "builds/",
    }
    assert (rows["supervisord.log"].size, rows["supervisord.log"].files) == (4000, 2)
    assert rows["supervisord.log"].limit == LogLimit(20 * MIB, 4)
    assert rows["shop-prod.out.log"].limit == LogLimit(7 * MIB, 2)
    assert (rows["builds/"].size, rows["builds/"].files) == (100, 2)
    text = format_sizes(list(rows.values()))
    lines = text.splitlines()
    assert lines[0].split() == ["log", "size", "rotated", "at", "backups", "at", "most"]
    assert any(
        line.split()
        == ["shop-prod.out.log", "(2", "files)", "20", "B", "7.0", "MiB", "2", "21.0", "MiB"]
        for line in lines
    ), text
    assert any(line.startswith("total") and "4.1 KiB" in line for line in lines), text
    assert "CONTROLPLANE_APP_LOG_SIZE" in text and "controlplane up" in text
    russian = format_sizes(list(rows.values()), "ru")
    assert "7,0 МБ" in russian and "всего" in russian


def test_logs_sizes_from_the_cli(data_dir: Path, make_settings: MakeSettings) -> None:
    seed_logs(make_settings())
    shown = cli(data_dir, "logs", "--sizes", **SMALL)
    assert shown.returncode == 0, shown.stderr
    assert "supervisord.log (2 files)" in shown.stdout and "100.0 MiB" in shown.stdout
    rows = json.loads(cli(data_dir, "logs", "--sizes", "--json", **SMALL).stdout)
    supervisord = next(row for row in rows if row["name"] == "supervisord.log")
    assert supervisord == {
        "name": "supervisord.log",
        "size": 4000,
        "files": 2,
        "rotated_at": 20 * MIB,
        "backups": 4,
        "at_most": 100 * MIB,
    }
    refused = cli(data_dir, "logs", "--sizes", CONTROLPLANE_APP_LOG_BACKUPS="many")
    assert refused.returncode != 0
    assert "CONTROLPLANE_APP_LOG_BACKUPS: 'many' is not a number of backups" in refused.stderr
    assert "use a whole number from 0 to 50" in refused.stderr
    nameless = cli(data_dir, "logs")
    assert nameless.returncode != 0 and "give --sizes" in nameless.stderr
