"""A failed step's headline: the lines naming what failed, as pip and uv print them (their
real output for a package whose build fails, cut), kept when a 30-line tail drops them."""

from __future__ import annotations

from controlplane.engine.build import headline, tail

PIP = (
    "Looking in links: /opt/wheels\n"
    "Processing ./broken\n"
    "  Getting requirements to build wheel: started\n"
    "  Getting requirements to build wheel: finished with status 'error'\n"
    "  error: subprocess-exited-with-error\n"
    "  \n"
    "  × Getting requirements to build wheel did not run successfully.\n"
    "  │ exit code: 1\n"
    "  ╰─> [46 lines of output]\n"
    + "".join(f"      compiling part {i}\n" for i in range(45))
    + "      fatal: mysql_config not found\n"
    "      [end of output]\n"
    "note: This error originates from a subprocess, and is likely not a problem with pip.\n"
    "error: subprocess-exited-with-error\n"
)
UV = (
    "Resolved 1 package in 1ms\n"
    "   Building mysqlclient==2.2.4\n"
    "error: Failed to build `mysqlclient==2.2.4`\n"
    "  cause: The build backend returned an error\n"
    "  cause: Call to `setuptools.build_meta.build_wheel` failed (exit status: 1)\n"
    "\n"
    "         [stdout]\n" + "".join(f"         compiling part {i}\n" for i in range(45))
)


def test_pip_names_the_package_it_was_processing_and_the_first_error() -> None:
    assert headline(PIP) == ("Processing ./broken", "error: subprocess-exited-with-error")
    lines, omitted = tail(PIP)
    assert "Processing ./broken" not in "\n".join(lines) and omitted > 0


def test_uv_says_failed_to_build_the_package() -> None:
    assert headline(UV) == ("error: Failed to build `mysqlclient==2.2.4`",)
    assert "mysqlclient" not in "\n".join(tail(UV)[0])


def test_output_with_no_error_line_has_no_headline() -> None:
    assert headline("Resolved 3 packages\nInstalled 3 packages\n") == ()
