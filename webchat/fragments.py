"""Rendered fragments kept per process, Russian-doll style.

A fragment's key names everything its HTML depends on — the data (a room's newest
message id, a room-list entry's counts) and the view (language, zone, today) — so a
cached fragment is never stale: when something changes, the key does. Reads
outnumber writes many times in a chat; after the first reader of a view, a page of
history or an entry of the room list is a lookup instead of a render.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

from flask import Flask, current_app

T = TypeVar("T")


class FragmentCache:
    """A bounded LRU shared by the greenlets of one process."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, object] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> object | None:
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
            return item

    def put(self, key: Hashable, item: object) -> None:
        with self._lock:
            self._items[key] = item
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def get_or_render(self, key: Hashable, render: Callable[[], T]) -> T:
        """The fragment for ``key``, rendered by ``render`` only when not kept already."""
        found = self.get(key)
        if found is None:
            found = render()
            self.put(key, found)
        return found  # type: ignore[return-value]


def cache() -> FragmentCache:
    """This app's cache (callers rendering many fragments look it up once)."""
    return current_app.extensions["webchat.fragments"]


def cached(key: Hashable, render: Callable[[], T]) -> T:
    return cache().get_or_render(key, render)


def init_app(app: Flask) -> None:
    app.extensions["webchat.fragments"] = FragmentCache(app.config["FRAGMENT_CACHE_SIZE"])
