"""The fixtures the runner factories ask for (a factory takes only what it needs)."""

from tests.fixtures_supervisor import box_factory, run_as_user  # noqa: F401 - fixtures
