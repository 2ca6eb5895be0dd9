"""A build followed while it runs: each step as it begins and ends, and each line its
commands print, on the operation's progress (the live card, the CLI).

A step beginning is `STEP_RUNNING` ('install: running…'), which the card replaces with
the step's summary ('install: ok (3.2 s)') when it ends and takes as the start of a new
command's output. The commands' lines go to the progress only when the project's output
switch is on; off, not one line of output is reported, failed or not (the build log has
them all). A failed step's own lines (what it found) are shown either way; with output on
also its headline: the lines naming what failed, which a 30-line tail may have dropped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from controlplane.domain.models import Project
from controlplane.engine.build import StepResult, StepWatch, step_label
from controlplane.i18n import N_, tr, verbatim

if TYPE_CHECKING:
    from controlplane.engine.releases import Reporter

STEP_RUNNING = N_("{step}: running…")
FAILED_AT = N_("what failed: {line}")


def step_watch(project: Project, op: Reporter) -> StepWatch:
    """The watch that reports a build of `project` on `op`."""

    def started(name: str) -> None:
        op.step(tr(STEP_RUNNING, step=step_label(name)))

    def line(text: str) -> None:
        if project.output:
            op.log(text)

    def done(result: StepResult) -> None:
        op.step(result.summary)
        if project.output or not result.ok:
            for detail in result.details:
                op.step(detail)
        if project.output and not result.ok:
            for row in result.headline:
                op.step(tr(FAILED_AT, line=verbatim(row)))

    return StepWatch(on_start=started, on_line=line, on_done=done)
