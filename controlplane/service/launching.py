"""Launching a third-party repository: everything the admin sets before its first run.

A launch is an add of a project of kind "launch" (its folder under $DATA/apps/NAME by
default, its branch main, else master) with what a stranger's repository needs before it
can run at all: its prod and test variables (an API_KEY), its poll period, its test
duration and whether command output goes to the chat. `check_launch` validates every
answer (the same converters as `project add`, `env set`, `poll` and `project set`) and
writes nothing; the facade's launch operation writes the project and these settings, then
numbers its commits (on failure all of it is taken out again). The faces start the first
test run or deploy once the launch is done: nothing runs before the admin confirmed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from controlplane.adapters.store import Store
from controlplane.domain.models import (
    parse_assignments,
    parse_interval,
    parse_switch,
    parse_test_duration,
)
from controlplane.i18n import tr
from controlplane.service.configure import Configuration, NewProject, launch_name

DEFAULT_DURATION = 60


@dataclass(frozen=True)
class LaunchPlan:
    """A launch, every answer checked: the project, its variables by slot, its poll period
    (0: off), its test duration in seconds and its command-output switch."""

    new: NewProject
    env: dict[str, dict[str, str]] = field(default_factory=dict)
    poll: int = 0
    test_duration: int = DEFAULT_DURATION
    output: bool = True


def check_launch(
    config: Configuration,
    repo: str,
    *,
    name: str | None = None,
    path: str | None = None,
    branch: str | None = None,
    entry: str = "main.py",
    prod: Iterable[str] = (),
    test: Iterable[str] = (),
    poll: str | None = None,
    test_duration: str | None = None,
    output: str | None = None,
    take_over: bool = False,
) -> LaunchPlan:
    """Validate a launch (no network, nothing written); ValidationError names the answer
    refused and what is accepted. Variables are KEY=VALUE lines; an empty answer keeps the
    default (no variables, poll off, 60 s, output on). With `take_over`, a folder holding
    other files is taken: they move to a dated backup under $DATA/backups at the launch."""
    new = config.check_new(
        name=name or launch_name(repo),
        repo=repo,
        path=path,
        branch=branch,
        entry=entry,
        kind="launch",
        take_over=take_over,
    )
    env = {
        "prod": parse_assignments([line for line in prod if line.strip()]),
        "test": parse_assignments([line for line in test if line.strip()]),
    }
    return LaunchPlan(
        new=new,
        env={slot: values for slot, values in env.items() if values},
        poll=parse_interval(poll) if poll else 0,
        test_duration=parse_test_duration(test_duration) if test_duration else DEFAULT_DURATION,
        output=parse_switch(tr("output"), output) if output else True,
    )


def plan_from_args(config: Configuration, name: str | None, args: dict[str, Any]) -> LaunchPlan:
    """A launch request as the control socket carries it (`launch_args`), checked."""

    def arg(key: str) -> str | None:
        value = args.get(key)
        return None if value in (None, "") else str(value)

    return check_launch(
        config,
        arg("repo") or "",
        name=name,
        path=arg("path"),
        branch=arg("branch"),
        entry=arg("entry") or "main.py",
        prod=[str(line) for line in args.get("prod") or []],
        test=[str(line) for line in args.get("test") or []],
        poll=arg("poll"),
        test_duration=arg("test_duration"),
        output=arg("output"),
        take_over=bool(args.get("take_over")),
    )


def apply_plan(store: Store, plan: LaunchPlan) -> None:
    """Write a launched project's settings and variables (the project written already);
    the variables are secret or plain by the default rule (domain/variables.py)."""
    store.update_project(
        plan.new.name, poll=plan.poll, test_duration=plan.test_duration, output=plan.output
    )
    for slot, values in plan.env.items():
        store.set_env(plan.new.name, slot, values)
