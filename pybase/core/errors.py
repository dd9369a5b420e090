"""The one root of pybase's errors.

Everything pybase raises on purpose derives from PybaseError and carries a message that names
the file, field, image or command and what was expected: the CLI prints it and exits 2. Anything
else is a bug and keeps its traceback."""

from __future__ import annotations


class PybaseError(Exception):
    """An expected failure with a message for the person at the terminal."""
