"""controlplane: a self-hosted CI/CD system and process manager for Python projects."""

__version__ = "0.1.0"
