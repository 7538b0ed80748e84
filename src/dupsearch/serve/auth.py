"""Bearer tokens for `dupsearch serve`: loading, hashing, checking.

A token file holds one token per line, ``read:<token>`` or ``write:<token>``; blank lines and
lines starting with ``#`` are ignored. The environment variable ``DUPSEARCH_TOKENS`` holds the
same entries separated by commas (``read:abc,write:def``). A write token may also read.

Tokens are hashed (sha256) as they are loaded and the plaintext is dropped; a request's token is
hashed and compared with every stored hash in constant time (``hmac.compare_digest``), so
neither the comparison nor the number of tokens checked depends on how much of a token matched.
This module imports no web framework: the CLI can load and check tokens without fastapi.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path
from typing import Iterable

from dupsearch.errors import DupsearchError

TOKENS_ENV = "DUPSEARCH_TOKENS"
SCOPES = ("read", "write")
# A token shorter than this is guessable; refuse it rather than serve with it.
MIN_TOKEN_CHARS = 16


class TokenError(DupsearchError):
    """A token file or DUPSEARCH_TOKENS entry that cannot be used."""


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


class TokenStore:
    """sha256 digests of the accepted tokens, each with its scope ("read" or "write")."""

    def __init__(self, entries: Iterable[tuple[str, str]] = ()):
        self._hashed: list[tuple[bytes, str]] = []
        for scope, token in entries:
            self.add(scope, token)

    def add(self, scope: str, token: str, *, where: str = "token") -> None:
        if scope not in SCOPES:
            raise TokenError(f"{where}: scope {scope!r} is not one of read, write "
                             "(write each entry as read:<token> or write:<token>)")
        if len(token) < MIN_TOKEN_CHARS or token != token.strip():
            raise TokenError(f"{where}: a {scope} token must be at least {MIN_TOKEN_CHARS} characters "
                             "with no surrounding spaces (e.g. python -c 'import secrets; "
                             "print(secrets.token_urlsafe(32))')")
        self._hashed.append((_digest(token), scope))

    def extend(self, other: "TokenStore") -> None:
        self._hashed.extend(other._hashed)

    def __len__(self) -> int:
        return len(self._hashed)

    def scope_of(self, token: str) -> str | None:
        """The scope of ``token``, or None when it is not one of ours."""
        digest = _digest(token)
        found = None
        for stored, scope in self._hashed:  # no early exit: every token is compared
            if hmac.compare_digest(stored, digest) and found != "write":
                found = scope
        return found

    def allows(self, token: str | None, needed: str) -> bool | None:
        """True: the token may do ``needed``; False: a known token with too small a scope;
        None: no token or an unknown one."""
        scope = self.scope_of(token) if token else None
        if scope is None:
            return None
        return scope == "write" or needed == "read"

    @classmethod
    def parse(cls, lines: Iterable[str], source: str) -> "TokenStore":
        store = cls()
        for number, raw in enumerate(lines, start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            scope, sep, token = line.partition(":")
            where = f"{source}: entry {number}"
            if not sep:
                raise TokenError(f"{where}: expected read:<token> or write:<token>")
            store.add(scope.strip(), token, where=where)
        return store

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "TokenStore":
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise TokenError(f"{path}: token file not found") from None
        except IsADirectoryError:
            raise TokenError(f"{path}: is a folder, not a token file") from None
        except UnicodeDecodeError:
            raise TokenError(f"{path}: not UTF-8 text") from None
        return cls.parse(text.splitlines(), str(path))

    @classmethod
    def from_env(cls, environ=None) -> "TokenStore":
        value = (os.environ if environ is None else environ).get(TOKENS_ENV, "")
        return cls.parse(value.split(","), TOKENS_ENV)


def load_tokens(tokens_file: str | os.PathLike | None = None, environ=None) -> TokenStore:
    """The tokens of ``tokens_file`` (when given) plus those of ``DUPSEARCH_TOKENS``."""
    store = TokenStore.from_env(environ)
    if tokens_file is not None:
        store.extend(TokenStore.from_file(tokens_file))
    return store


__all__ = ["TokenStore", "TokenError", "load_tokens", "TOKENS_ENV", "SCOPES"]
