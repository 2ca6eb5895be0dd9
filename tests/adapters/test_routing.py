"""serve's runner by project (adapters/routing.py) and the project's runner fields: old
stores read as this box, placement rules are checked, and serve with every project on
this box never loads the docker SDK."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from controlplane.adapters.routing import RoutingRunner
from controlplane.domain.models import Project, validate_placement, validate_runner
from controlplane.domain.runner import Runner
from controlplane.errors import ControlPlaneError, ValidationError
from controlplane.i18n import tr


def test_an_old_record_reads_as_this_box() -> None:
    old = {"name": "shop", "repo": "https://example.com/x.git", "path": "/srv/shop"}
    project = Project.from_dict(old)
    assert project.runner == "local"
    assert project.placement == ()


def test_placement_round_trips_as_a_list() -> None:
    project = Project(name="shop", repo="r", path="/p", placement=("node.labels.site==home",))
    again = Project.from_dict({**project.to_dict(), "placement": ["node.labels.site==home"]})
    assert again == project


@pytest.mark.parametrize(
    "rule",
    [
        "node.labels.site==home",
        "node.hostname!=pi",
        "node.role==manager",
        "node.platform.arch==aarch64",
        "node.platform.os==linux",
        "node.id==abc123",
    ],
)
def test_placement_rules_accepted(rule: str) -> None:
    assert validate_placement([rule]) == (rule,)


@pytest.mark.parametrize("rule", ["site==home", "node.labels.site=home", "node.cpu==4", ""])
def test_placement_rules_refused_in_one_line(rule: str) -> None:
    if not rule:
        assert validate_placement([rule]) == ()
        return
    with pytest.raises(ValidationError) as caught:
        validate_placement([rule])
    assert "\n" not in str(caught.value.text)
    assert "node.labels.KEY==VALUE" in str(caught.value.text)


def test_a_dash_clears_placement() -> None:
    assert validate_placement(["-"]) == ()


def test_runner_names() -> None:
    assert validate_runner("Swarm") == "swarm"
    assert validate_runner("local") == "local"
    with pytest.raises(ValidationError):
        validate_runner("k8s")


def test_serve_runtime_leaves_the_docker_sdk_unloaded(tmp_path: object) -> None:
    code = (
        "import sys\n"
        "from controlplane.service import serve\n"
        "from controlplane.adapters.routing import RoutingRunner\n"
        "assert 'docker' not in sys.modules, 'docker imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_prune_goes_on_when_the_swarm_cannot_be_reached(tmp_path: Path) -> None:
    """drop_release of a swarm project whose engine does not answer keeps the image and
    raises nothing (a deploy's prune must not fail for it); a project on this box never
    makes the Swarm runner."""
    made: list[str] = []

    def unreachable() -> Runner:
        made.append("swarm")
        raise ControlPlaneError(tr("cannot reach the Docker engine"))

    on_box = Project(name="shop", repo="https://example.com/x.git", path=str(tmp_path / "s"))
    # the local runner is never asked: supervisord keeps nothing of a release
    router = RoutingRunner(local=object(), lookup=lambda name: on_box, swarm_factory=unreachable)  # type: ignore[arg-type]
    router.drop_release(on_box, tmp_path / "1-abc1234")
    assert made == []
    router.drop_release(on_box.with_(runner="swarm"), tmp_path / "1-abc1234")
    assert made == ["swarm"]
