"""gunicorn settings for webchat: gevent workers serve pages and WebSockets alike."""

import os
import sys

bind = os.environ.get("BIND") or f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
# Never the sync worker: it kills long-lived sockets at --timeout.
worker_class = "gevent"
# Each open WebSocket holds one of these; past the limit new sockets *and* pages hang.
worker_connections = int(os.environ.get("WORKER_CONNECTIONS", "10000"))
# gunicorn 27's per-user control socket would be fought over by two instances.
control_socket_disable = True
timeout = 30
graceful_timeout = 5
keepalive = 5
accesslog = os.environ.get("ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info")
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def on_starting(server):
    # The in-process broker only reaches sockets of its own worker: with several
    # workers and no Redis, people in one room would silently not see each other.
    if server.cfg.workers > 1 and not os.environ.get("REDIS_URL"):
        sys.stderr.write(
            f"webchat: {server.cfg.workers} workers need REDIS_URL (the in-process broker "
            "only reaches one worker). Set REDIS_URL or WEB_CONCURRENCY=1.\n"
        )
        sys.exit(3)


def post_worker_init(worker):
    # Everything imported so far lives for the whole process: freeze it out of the
    # collector's sight, and collect the young generation less often. With 500 sockets
    # a full collection stopped every socket for ~60 ms every 1.5 s (bench/README.md).
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)


def when_ready(server):
    host, port = server.address[0] if isinstance(server.address, list) else server.address
    shown = "127.0.0.1" if host == "0.0.0.0" else host  # noqa: S104 - a comparison, not a bind
    server.log.info("webchat is ready: open http://%s:%s/", shown, port)
