"""Variables in the store: secret or plain, the mark kept next to the encrypted value."""

from __future__ import annotations

import json

from controlplane.adapters.store import Store
from controlplane.domain.models import Project
from controlplane.settings import Settings


def shop(store: Store) -> None:
    store.add_project(Project(name="shop", repo="https://example.com/o/r.git", path="/srv/shop"))


def marks(store: Store, slot: str = "prod") -> dict[str, tuple[str, bool, bool]]:
    return {v.name: (v.value, v.secret, v.marked) for v in store.variables("shop", slot)}


def test_defaults_marks_and_what_the_redactor_gets(store: Store) -> None:
    shop(store)
    store.set_env(
        "shop",
        "prod",
        {"API_KEY": "sk-1", "MODE": "prod", "DB": "postgres://a:pw1@db/x", "REGION": "eu-1"},
    )
    assert marks(store) == {
        "API_KEY": ("sk-1", True, False),
        "DB": ("postgres://a:pw1@db/x", True, False),
        "MODE": ("prod", False, False),
        "REGION": ("eu-1", False, False),
    }
    assert sorted(store.all_secret_values()) == ["postgres://a:pw1@db/x", "sk-1"]
    rev = store.get_project("shop").env_rev_prod
    assert store.mark_env("shop", "prod", ["REGION"], True) == []
    assert store.mark_env("shop", "prod", ["API_KEY"], False) == []
    assert store.get_project("shop").env_rev_prod == rev  # a mark changes no value
    assert marks(store)["REGION"] == ("eu-1", True, True)
    assert marks(store)["API_KEY"] == ("sk-1", False, True)
    store.set_env("shop", "prod", {"REGION": "eu-2"})  # set anew: keeps its mark
    assert marks(store)["REGION"] == ("eu-2", True, True)
    assert sorted(store.all_secret_values()) == ["eu-2", "postgres://a:pw1@db/x"]
    assert store.mark_env("shop", "prod", ["NOPE", "REGION"], False) == ["NOPE"]  # none marked
    assert marks(store)["REGION"] == ("eu-2", True, True)
    store.mark_env("shop", "prod", ["REGION"], None)  # back to the default
    assert marks(store)["REGION"] == ("eu-2", False, False)
    store.set_env("shop", "prod", {"TRACE": "on"}, {"TRACE": True})
    store.unset_env("shop", "prod", ["TRACE"])
    store.set_env("shop", "prod", {"TRACE": "on"})  # a mark leaves with its variable
    assert marks(store)["TRACE"] == ("on", False, False)


def test_the_slot_secrets_are_what_the_slot_sees(store: Store) -> None:
    shop(store)
    store.set_env("shop", "prod", {"API_KEY": "sk-prod", "MODE": "prod"})
    store.set_env("shop", "test", {"API_KEY": "sk-test", "MODE": "test"})
    assert store.slot_secrets("shop", "prod") == ["sk-prod"]
    assert store.slot_secrets("shop", "test") == ["sk-test"]


def test_an_older_store_without_marks_gets_the_defaults(store: Store, settings: Settings) -> None:
    shop(store)
    store.set_env("shop", "prod", {"API_KEY": "sk-1", "MODE": "prod"})
    raw = json.loads(settings.store_path.read_text())
    for doc in raw["projects"].values():
        doc.pop("env_marks", None)  # as written before marks existed
    settings.store_path.write_text(json.dumps(raw))
    again = Store.open(settings)
    assert marks(again) == {"API_KEY": ("sk-1", True, False), "MODE": ("prod", False, False)}
    assert again.all_secret_values() == ["sk-1"]
