"""`python -m controlplane` runs the CLI."""

from controlplane.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
