"""The gunicorn settings the server runs with, read from gunicorn's own Config object, and the
master's hook that runs before each fork."""

from __future__ import annotations

import gc

from aurelius_server.config import Config, parse_s3_uri
from aurelius_server.gunicorn_app import ModelServer
from aurelius_server.wsgi import ModelApp, ServerState


def settings(**config):
    cfg = Config(model=parse_s3_uri("s3://models-bucket/m.pkl"), version_id="v1", **config)
    server = ModelServer(ModelApp(cfg, ServerState()), cfg, ServerState(), listener_fd=7, workers=3)
    return server.cfg


def test_gunicorn_preloads_on_the_handed_over_socket_with_keep_alive_above_the_alb_idle_timeout():
    # Given the default configuration
    cfg = settings()

    # Then gunicorn serves the socket it was handed, preloaded, with the event-loop worker
    assert cfg.bind == ["fd://7"] and cfg.preload_app is True
    assert cfg.worker_class_str == "aurelius_server.workers.ModelWorker"
    assert cfg.workers == 3
    # And a worker stuck in one request is replaced only after the load balancer gave up on it (60 s)
    assert cfg.timeout > 60
    # And idle keep-alive outlasts the load balancer's 60 s idle timeout
    assert cfg.keepalive == 75 > 60
    # And SIGTERM waits SHUTDOWN_TIMEOUT_SECONDS, inside ECS's 30 s stop timeout
    assert cfg.graceful_timeout == 20 < 30
    # And gunicorn writes no access log of its own and opens no control socket
    assert cfg.accesslog is None and cfg.control_socket_disable is True


def test_shutdown_timeout_is_rounded_up_to_whole_seconds():
    # Given a fractional shutdown timeout / Then gunicorn waits at least that long
    assert settings(shutdown_timeout=2.5).graceful_timeout == 3


class _Arbiter:
    def __init__(self, app, workers):
        self.app, self.WORKERS = app, workers


class _Worker:
    pass


def test_every_fork_is_preceded_by_gc_freeze():
    # Given gunicorn's pre_fork hook
    cfg = settings()
    gc.unfreeze()
    try:
        # When it runs (before each worker is forked)
        cfg.pre_fork(_Arbiter(None, {}), _Worker())
        # Then every object the master holds is in the permanent generation
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_each_new_worker_gets_a_connection_slot_no_live_worker_holds():
    # Given three workers' slots, of which the worker in slot 1 died and was reaped
    cfg = Config(model=parse_s3_uri("s3://models-bucket/m.pkl"), version_id="v1")
    server = ModelServer(ModelApp(cfg, ServerState()), cfg, ServerState(), listener_fd=7, workers=3)
    live = {}
    for slot in (0, 2):
        worker = _Worker()
        worker.slot = slot
        live[100 + slot] = worker
    replacement = _Worker()

    # When the master forks its replacement
    server.cfg.pre_fork(_Arbiter(server, live), replacement)
    gc.unfreeze()

    # Then the replacement takes the free slot
    assert replacement.slot == 1
    # And counts as live with no connection while it boots: a worker holding one waits for it
    assert server.shares.may_accept(0, 1) is False
    assert server.shares.may_accept(0, 0) is True
