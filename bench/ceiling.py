"""The ceiling for bench/http.py: a trivial Flask view, served like webchat.

``gunicorn -c gunicorn.conf.py bench.ceiling:app`` with webchat's environment (one gevent
worker, same pinning): what one worker can answer when the view itself costs nothing.
"""

from flask import Flask

app = Flask(__name__)

BODY = "webchat-bench ceiling"


@app.get("/")
def index() -> str:
    return BODY
