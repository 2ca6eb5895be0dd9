"""Build the same tiny project with uv and with venv + pip, cold and warm cache, in one run.

    .venv/bin/python -m bench.bench_build [rounds]

The baseline is the plain venv + pip path; uv is what `build` picks when it is installed.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from controlplane.adapters import git
from controlplane.engine import build
from controlplane.layout import release_in
from tests.support.fixtures_repos import make_wheel, sh_git


def make_project(root: Path) -> tuple[Path, str, dict[str, str]]:
    """A bare origin with one commit needing one local wheel; returns mirror, sha, env."""
    wheels = root / "wheels"
    make_wheel(wheels, "tinylib", "1.0")
    work = root / "work"
    sh_git("init", "-q", "--initial-branch=main", str(work))
    (work / "main.py").write_text("import tinylib\n")
    (work / "requirements.txt").write_text("tinylib==1.0\n")
    sh_git("add", "-A", cwd=work)
    sh_git("commit", "-q", "-m", "tiny", cwd=work)
    mirror = git.ensure_mirror(str(work), root / "mirror.git")
    sha = git.fetch(mirror, str(work), "main")
    (root / "uv.toml").write_text(f'no-index = true\nfind-links = ["{wheels}"]\n')
    env = {
        "UV_CONFIG_FILE": str(root / "uv.toml"),
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(wheels),
    }
    return mirror, sha, env


def main(rounds: int = 3) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        mirror, sha, env = make_project(root)
        n = 0
        for installer in ("pip", "uv"):
            times = []
            for _ in range(rounds):
                n += 1
                result = build.build_release(
                    dest=release_in(root / "releases", n, sha),
                    mirror=mirror,
                    sha=sha,
                    python="/usr/bin/python3",
                    env=env,
                    log_path=root / "build.log",
                    cache_dir=root / f"cache-{installer}",
                    installer=installer,  # type: ignore[arg-type]
                )
                assert result.state == "ready", result.error
                steps = " ".join(f"{s.name}={s.seconds:.2f}" for s in result.steps)
                times.append(result.seconds)
                print(f"{installer:3} build {n}: {result.seconds:.2f} s  ({steps})")
            print(
                f"{installer:3} first (cold cache) {times[0]:.2f} s, "
                f"best warm {min(times[1:] or times):.2f} s"
            )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
