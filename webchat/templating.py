"""Jinja filters and globals shared by pages and pushed fragments."""

from __future__ import annotations

from datetime import datetime

from flask import Flask


def iso_utc(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def clock(value: datetime) -> str:
    return value.strftime("%H:%M")


def full_time(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")


def init_app(app: Flask) -> None:
    app.jinja_env.filters.update(iso_utc=iso_utc, clock=clock, full_time=full_time)
    # Fragments are rendered once and pushed verbatim; trimmed blocks keep them small.
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True
