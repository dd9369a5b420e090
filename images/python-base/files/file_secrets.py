"""Load secrets from files named by ``NAME_FILE`` environment variables.

The same rules as the image's ``python-base-entrypoint``, for processes that
start without it (e.g. a Kubernetes ``command:``)::

    import file_secrets
    file_secrets.load()                     # mutates os.environ

    python -m file_secrets CMD [ARGS...]    # load, then exec CMD

For every ``NAME_FILE`` (NAME an ASCII identifier) not listed in
``PYTHON_BASE_SECRETS_IGNORE``, ``NAME`` is set to the file's content minus
one trailing newline and ``NAME_FILE`` is removed. An empty result is an
error unless listed in ``PYTHON_BASE_SECRETS_ALLOW_EMPTY``. Both lists are
whitespace-separated and accept NAME or NAME_FILE; setting the ignore list
(even to "") replaces ``DEFAULT_IGNORE``. Content is decoded as UTF-8
with surrogateescape, so any bytes reach the child environment unchanged; NUL
bytes cannot live in an environment variable, so such a file is an error, and
so is one too large for Linux to exec with (``MAX_ENV_STRING``).
Errors name the variable and the path, never the value.
"""

from __future__ import annotations

import os
import stat
import sys

# The collections.abc names are for annotations only (never evaluated: see the __future__
# import). Importing collections at run time costs `python -m file_secrets` ~1.2 ms of
# every start (keyword, operator, reprlib come with it); type checkers read the block.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, MutableMapping

__all__ = ["DEFAULT_IGNORE", "MAX_ENV_STRING", "SecretFileError", "load", "main"]

IGNORE_VAR = "PYTHON_BASE_SECRETS_IGNORE"
ALLOW_EMPTY_VAR = "PYTHON_BASE_SECRETS_ALLOW_EMPTY"
# Path variables read by the libraries themselves, not secrets: loading them
# would hand those libraries file contents where they expect a path (the
# entrypoint documents each one).
DEFAULT_IGNORE = (
    "SSL_CERT_FILE",
    "PIP_CONFIG_FILE",
    "UV_CONFIG_FILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AZURE_FEDERATED_TOKEN_FILE",
)
# Linux's MAX_ARG_STRLEN: exec fails with E2BIG ("Argument list too long") when
# one "NAME=value" string, with its NUL, is longer.
MAX_ENV_STRING = 128 * 1024
EX_USAGE = 64
EX_CONFIG = 78
_SUFFIX = "_FILE"


class SecretFileError(Exception):
    """A NAME_FILE variable could not be honoured; str() never holds the value."""

    def __init__(self, variable: str, path: str, reason: str) -> None:
        super().__init__(variable, path, reason)
        self.variable = variable
        self.path = path
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.variable}={self.path}: {self.reason}"


def _words(environ: Mapping[str, str], var: str, default: Iterable[str]) -> frozenset[str]:
    # Set (even to "") replaces the default, so operators can opt back in.
    value = environ.get(var)
    return frozenset(default if value is None else value.split())


def _read(
    var: str, name: str, path: str, environ: Mapping[str, str], allow_empty: frozenset[str]
) -> str:
    def fail(reason: str) -> SecretFileError:
        return SecretFileError(var, path, reason)

    if not path:
        raise fail("path is empty")
    if name in environ:
        raise fail(f"{name} is also set; set only one of {name} and {var}")
    # Checks run in the shell script's order so both report the same reason.
    try:
        st = os.stat(path)
    except PermissionError:
        raise fail("permission denied") from None
    except OSError:
        raise fail("dangling symbolic link" if os.path.islink(path) else "no such file") from None
    if stat.S_ISDIR(st.st_mode):
        raise fail("is a directory")
    if not stat.S_ISREG(st.st_mode):
        raise fail("not a regular file")
    limit = MAX_ENV_STRING - len(name) - 2  # "=" and the NUL

    def too_large(size: int) -> SecretFileError:
        return fail(
            f"file is {size} bytes, more than the {limit} bytes {name} can hold (Linux limits "
            "one NAME=value to 128 KiB); read the file in the app instead"
        )

    try:
        with open(path, "rb") as f:
            # Refused unread; only the one trailing newline dropped below may take a file over.
            if st.st_size > limit + 1:
                raise too_large(st.st_size)
            data = f.read()
    except PermissionError:
        raise fail("permission denied") from None
    except OSError:
        raise fail("cannot read") from None
    if b"\0" in data:
        raise fail("contains a NUL byte, which an environment variable cannot hold")
    size = len(data)  # st_size says 0 for /proc files and the like
    if data.endswith(b"\n"):
        data = data[:-1]
    if len(data) > limit:
        raise too_large(size)
    if not data and name not in allow_empty and var not in allow_empty:
        raise fail(f"file is empty (list {name} in {ALLOW_EMPTY_VAR} to allow)")
    return data.decode("utf-8", "surrogateescape")


def load(environ: MutableMapping[str, str] | None = None) -> list[str]:
    """Resolve every NAME_FILE in ``environ`` (default ``os.environ``).

    Returns the names set, sorted. All files are read before anything is
    changed, so on SecretFileError the mapping is left untouched.
    """
    env: MutableMapping[str, str] = os.environ if environ is None else environ
    ignore = _words(env, IGNORE_VAR, DEFAULT_IGNORE)
    allow_empty = _words(env, ALLOW_EMPTY_VAR, ())
    loaded: dict[str, tuple[str, str]] = {}
    for var in sorted(env):
        name = var[: -len(_SUFFIX)]
        if not var.endswith(_SUFFIX) or not (name.isascii() and name.isidentifier()):
            continue
        if var in ignore or name in ignore:
            continue
        loaded[name] = (var, _read(var, name, env[var], env, allow_empty))
    for name, (var, value) in loaded.items():
        env[name] = value
        del env[var]
    return list(loaded)


def main(argv: list[str] | None = None) -> int:
    """``python -m file_secrets CMD [ARGS...]``: load, then exec CMD."""
    prog = "file_secrets"
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print(
            f"{prog}: error: no command given (usage: python -m {prog} CMD [ARGS...])",
            file=sys.stderr,
        )
        return EX_USAGE
    try:
        load()
    except SecretFileError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EX_CONFIG
    try:
        os.execvp(args[0], args)
    except OSError as exc:
        # Same codes as a shell: 127 not found, 126 found but not runnable.
        print(f"{prog}: error: cannot run {args[0]}: {exc.strerror}", file=sys.stderr)
        return 127 if isinstance(exc, FileNotFoundError) else 126


if __name__ == "__main__":
    sys.exit(main())
