"""Test support: local servers (Bot API, git over http, sshd), fixtures registered
once in tests/conftest.py."""
