"""A bounded memo for what was checked once per process (session cookies, CSRF tokens)."""

from __future__ import annotations

import contextlib


class Kept(dict):
    """A dict of at most ``size`` entries that forgets its oldest first."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def keep(self, key: object, value: object) -> None:
        if len(self) >= self.size:
            # A threaded dev server may race here: then nothing is forgotten this time.
            with contextlib.suppress(KeyError, RuntimeError, StopIteration):
                del self[next(iter(self))]
        self[key] = value
