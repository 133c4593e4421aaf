"""Live rooms: the WebSocket route, the broker, this process's hub and presence."""

from flask import Flask

from .broker import create_broker
from .connection import NoReaderThread
from .hub import Hub
from .presence import Presence
from .push import Renderer
from .views import bp


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.config["SOCK_SERVER_OPTIONS"] = {**app.config["SOCK_SERVER_OPTIONS"], "thread_class": NoReaderThread}
    broker = create_broker(app.config["REDIS_URL"], app.config["REDIS_KEY_PREFIX"])
    hub = Hub(Renderer(app))
    broker.listen(hub.deliver, hub.restart, hub.deliver_user)
    app.extensions["webchat.broker"] = broker
    app.extensions["webchat.hub"] = hub
    app.extensions["webchat.presence"] = Presence(app, broker)
