"""Errors a user can act on. The CLI turns them into a message and exit code 2."""

from __future__ import annotations


class UsageError(Exception):
    """Bad input: a file, key or option the user must fix. Nothing was touched."""
