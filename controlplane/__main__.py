"""`python -m controlplane` runs the CLI."""

from controlplane.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
