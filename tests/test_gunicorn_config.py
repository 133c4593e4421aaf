"""gunicorn.conf.py: several workers need Redis, or rooms would silently split."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from .liveserver import ROOT, free_port

pytestmark = pytest.mark.live


def test_two_workers_without_redis_refuse_to_start(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(
        APP_ENV="testing",
        WEB_CONCURRENCY="2",
        BIND=f"127.0.0.1:{free_port()}",
        DATABASE_URL=f"sqlite:///{tmp_path / 'unused.sqlite3'}",
        WEBCHAT_INSTANCE_DIR=str(tmp_path / "instance"),
    )
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode != 0
    assert "2 workers need REDIS_URL" in result.stderr, result.stderr[-2000:]


def test_two_workers_with_redis_start(tmp_path):
    from . import services
    from .liveserver import Browser, LiveServer

    services.redis_or_skip()
    server = LiveServer(
        f"sqlite:///{tmp_path / 'db.sqlite3'}", tmp_path, workers=2,
        REDIS_URL=services.REDIS_URL, REDIS_KEY_PREFIX="webchat-test:gunicorn-config:",
    )  # fmt: skip
    server.start()
    try:
        status, page = Browser(server).get("/login/")
        assert status == 200 and 'name="password"' in page
    finally:
        server.stop()
