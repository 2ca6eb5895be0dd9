"""A private repository over ssh through the project's deploy key, against a real sshd:
the key is made by us and never written to disk or a command line, the host key is pinned
at the first fetch and shown, and a changed host key stops fetches with a clear message."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from controlplane.adapters import sshkeys
from tests.support.chat import Chat
from tests.support.fixtures_release import Plant
from tests.support.sshserver import SshServer, ssh_server


def files_holding(root: Path, needle: str) -> list[Path]:
    """Regular files under `root` on its own file system that hold `needle`. Other file
    systems mounted below (the swarm fixture's tmpfs with its engines' data) and FIFOs or
    sockets (an engine's, which a read would wait on forever) are not ours to search."""
    found = []
    device = root.stat().st_dev
    for here, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if same_device(Path(here) / d, device)]
        for name in files:
            path = Path(here) / name
            try:
                if not stat.S_ISREG(path.lstat().st_mode):
                    continue
                if needle in path.read_text(errors="ignore"):
                    found.append(path)
            except OSError:
                continue
    return found


def same_device(path: Path, device: int) -> bool:
    try:
        return path.lstat().st_dev == device
    except OSError:
        return False


def add(plant: Plant, url: str) -> tuple[int, str]:
    done = plant.cli(
        "project", "add", "shop", "--repo", url, "--path", f"{plant.box.base}/live/shop"
    )
    return done.returncode, (done.stdout + done.stderr).strip()


def key_info(plant: Plant, *flags: str) -> dict[str, object]:
    return dict(json.loads(plant.ok("project", "key", "shop", "--json", *flags)))


def deploy_fails_on_changed_host_key(plant: Plant, sshd: SshServer) -> None:
    sshd.stop()
    sshd.new_host_key()
    sshd.start()
    plant.commit("2")
    done = plant.cli("deploy", "shop")
    said = done.stdout + done.stderr
    assert done.returncode != 0 and "not the one pinned" in said, said


@pytest.mark.timeout(300)
def test_a_private_repository_over_ssh_with_a_deploy_key(
    plant: Plant,
    run_as_user: str | None,
) -> None:
    if run_as_user is None:
        pytest.skip("needs root and the run-as user (sshd lets that user in)")
    with ssh_server(run_as_user) as sshd:
        plant.commit("1")
        url = sshd.url(plant.origin.bare)
        made = key_info(plant)
        public = str(made["public_key"])
        assert made["made"] and public.startswith("ssh-ed25519 ") and public.endswith("shop")

        # the repository does not know the key yet: one line saying what to do, nothing added
        code, said = add(plant, url)
        assert code != 0 and "deploy key" in said and len(said.splitlines()) == 1, said
        assert "shop" not in plant.ok("project", "list")

        sshd.authorized_keys.write_text(public + "\n")
        code, said = add(plant, url)
        assert code == 0, said
        shown = key_info(plant)
        assert shown["public_key"] == public and not shown["made"]
        pinned = shown["pinned_hosts"]
        assert isinstance(pinned, list) and len(pinned) == 1
        assert pinned[0]["fingerprint"] == sshd.host_fingerprint()

        admins_command = "GIT_SSH_COMMAND=touch /tmp/cp-admin-command-ran"
        plant.ok("env", "set", "shop", *plant.local_index(), admins_command)
        plant.ok("project", "set", "shop", "health-window", "1")
        plant.ok("deploy", "shop")
        assert plant.wait_report("prod", "1")["version"] == "1"
        assert not Path("/tmp/cp-admin-command-ran").exists()

        # the private key is in the store only, encrypted: no file holds a line of it
        private = plant.box.store.deploy_key("shop")
        assert private is not None
        body = private.splitlines()[2]
        assert files_holding(plant.settings.data_dir, body) == []
        assert files_holding(Path("/tmp"), body) == []

        deploy_fails_on_changed_host_key(plant, sshd)
        forgotten = key_info(plant, "--forget-hosts")
        assert forgotten["pinned_hosts"] == []
        plant.ok("deploy", "shop")
        assert plant.wait_report("prod", "2")["version"] == "2"
        again = key_info(plant)["pinned_hosts"]
        assert isinstance(again, list) and again[0]["fingerprint"] == sshd.host_fingerprint()


def test_the_deploy_key_from_the_chat(phone: Chat) -> None:
    """🔑 on a project's menu shows the key (made on first view; never its private half);
    a new key replaces it after a confirmation; pinned hosts can be forgotten."""
    plant = phone.plant
    plant.commit("1")
    plant.add()
    phone.send("/projects")
    listed = phone.wait_text("Projects")
    phone.press_text(listed, "shop")
    menu = phone.wait_text("policy")
    phone.press_text(menu, "Deploy key")
    shown = phone.wait_text("read-only deploy key")
    first = plant.box.store.deploy_key("shop")
    assert first is not None
    public = sshkeys.public_of(first, "controlplane-shop")
    assert public.split()[1] in shown.text and "PRIVATE" not in shown.text
    assert "No host key pinned yet" in shown.text

    phone.press_text(shown, "New key")
    ask = phone.wait_text("Make a new deploy key")
    yes = phone.buttons(ask)["✅ Yes, do it"]
    phone.answered(phone.press(ask, yes))
    phone.api.wait_for(lambda: plant.box.store.deploy_key("shop") not in (None, first))
    second = plant.box.store.deploy_key("shop")
    assert second is not None
    phone.wait_text(sshkeys.public_of(second, "x").split()[1])
    screen = phone.wait_text(sshkeys.public_of(second, "x").split()[1])
    toast = phone.answered(phone.press_text(screen, "Forget pinned hosts"))
    assert "forgotten" in str(toast.get("text"))
