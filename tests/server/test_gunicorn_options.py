"""The gunicorn settings the server runs with, read from gunicorn's own Config object."""

from __future__ import annotations

import gc

from aurelius_server.config import Config, parse_s3_uri
from aurelius_server.gunicorn_app import ModelServer, honour_connection_close
from aurelius_server.wsgi import ModelApp, ServerState


def settings(**config):
    cfg = Config(model=parse_s3_uri("s3://models-bucket/m.pkl"), version_id="v1", **config)
    server = ModelServer(ModelApp(cfg, ServerState()), cfg, ServerState(), listener_fd=7, workers=3)
    return server.cfg


def test_gunicorn_preloads_on_the_handed_over_socket_with_keep_alive_above_the_alb_idle_timeout():
    # Given the default configuration
    cfg = settings()

    # Then gunicorn serves the socket it was handed, preloaded, with the adapted gthread worker
    assert cfg.bind == ["fd://7"] and cfg.preload_app is True
    assert cfg.worker_class_str == "aurelius_server.workers.ModelWorker"
    assert (cfg.workers, cfg.threads) == (3, 4)
    # And idle keep-alive outlasts the load balancer's 60 s idle timeout
    assert cfg.keepalive == 75 > 60
    # And SIGTERM waits SHUTDOWN_TIMEOUT_SECONDS, inside ECS's 30 s stop timeout
    assert cfg.graceful_timeout == 20 < 30
    # And gunicorn writes no access log of its own and opens no control socket
    assert cfg.accesslog is None and cfg.control_socket_disable is True


def test_shutdown_timeout_is_rounded_up_to_whole_seconds():
    # Given a fractional shutdown timeout / Then gunicorn waits at least that long
    assert settings(shutdown_timeout=2.5).graceful_timeout == 3


def test_every_fork_is_preceded_by_gc_freeze():
    # Given gunicorn's pre_fork hook
    cfg = settings()
    gc.unfreeze()
    try:
        # When it runs (before each worker is forked)
        cfg.pre_fork(None, None)
        # Then every object the master holds is in the permanent generation
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_a_connection_close_header_from_the_application_closes_gunicorns_connection():
    # Given gunicorn's start_response (a bound method of its Response) and an app that asks to close
    class Response:
        closed = False

        def force_close(self):
            self.closed = True

        def start_response(self, status, headers, exc_info=None):
            self.headers = headers

    response = Response()

    def app(environ, start_response):
        start_response("413 Content Too Large", [("Connection", "close")])
        return [b""]

    # When the wrapped app answers
    honour_connection_close(app)({}, response.start_response)

    # Then gunicorn's response is told to close the connection
    assert response.closed is True
