"""`dupsearch serve IDX`: the catalogue index over HTTP (FastAPI + uvicorn, extra ``serve``).

``run_server(index_path, ...)`` runs one process: one uvicorn server, one index handle, one
writer (group commit); with ``workers=N`` it forks N such processes that accept on one socket
(the kernel hands each connection to one of them). Every worker opens the index itself (the
memory-mapped files are shared through the page cache); their writers take the index's lock in
turn, and before each read a worker picks up what the others committed (``Index.stale``: one
stat), so an acknowledged write is seen by every later read, whichever worker answers it.
``/metrics`` gives the numbers of the worker that answers the scrape, labelled ``worker="N"``. ``create_app`` (in
``dupsearch.serve.app``) builds the ASGI app alone, for tests or another server. See ``app.py``
for the endpoints and ``auth.py`` for tokens.

Tokens: a file with one token per line, ``read:<token>`` or ``write:<token>`` (``#`` starts a
comment line), and/or the environment variable ``DUPSEARCH_TOKENS`` with the same entries
separated by commas (``read:<token>,write:<token>``). A write token may also read. Tokens are
hashed (sha256) when loaded; the plaintext is not kept, and ``DUPSEARCH_TOKENS`` is removed from
the server's environment once read. Without any token the server refuses to start unless
``no_auth=True`` (``--no-auth``), meant for local use only.

``import dupsearch`` never imports this package; importing ``dupsearch.serve`` does not import
fastapi either (``create_app`` loads it on first use), so a missing extra is reported by
``run_server`` as ``MissingDependencyError``.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from pathlib import Path

from dupsearch.errors import DupsearchError

DEFAULT_MAX_BODY_BYTES = 1 << 20  # 1 MiB: a batch of a few hundred listings with descriptions
DEFAULT_MAX_BATCH = 256           # listings per POST /v1/match
DEFAULT_TIMEOUT_S = 10.0          # per request, queueing for the writer included


def _require_serve_extra() -> None:
    from dupsearch.encoders.base import MissingDependencyError
    missing = []
    for module in ("fastapi", "uvicorn"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise MissingDependencyError(
            f"`dupsearch serve` needs the Python package(s) {', '.join(map(repr, missing))}, "
            "which are not installed: pip install 'dupsearch[serve]'")


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so that a port in use is a one-line error, not a log."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise DupsearchError(f"cannot resolve host {host!r}: {e.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as e:
        sock.close()
        raise DupsearchError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    # listening from here on: with worker processes, a connection made while they still open
    # the index waits in the backlog instead of being refused
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def run_server(index_path: str | os.PathLike, host: str = "127.0.0.1", port: int = 8000,
               tokens_file: str | os.PathLike | None = None, no_auth: bool = False,
               max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, max_batch: int = DEFAULT_MAX_BATCH,
               timeout_s: float = DEFAULT_TIMEOUT_S, trust: bool = False, log_level: str = "info",
               access_log: bool = False, workers: int = 1) -> None:
    """Serve the index at ``index_path`` until SIGINT/SIGTERM, then shut down gracefully: requests
    in flight finish, queued writes are committed, the index is closed.

    ``port=0`` takes a free port; the line ``dupsearch serve: listening on http://HOST:PORT`` on
    stderr says which. ``trust``: load a model with pickled parts (as ``Index.open``). ``workers``:
    server processes (Python runs one core's worth of a match per process; see the module doc). Raises
    ``MissingDependencyError`` without fastapi/uvicorn and ``DupsearchError`` (one line) for no
    tokens, a bad token file, a port in use or an index that does not open.
    """
    _require_serve_extra()
    import uvicorn

    from dupsearch.serve.app import create_app
    from dupsearch.serve.auth import TOKENS_ENV, load_tokens

    if int(workers) < 1:
        raise DupsearchError(f"workers must be at least 1, got {workers}")

    tokens = None
    if not no_auth:
        tokens = load_tokens(tokens_file)
        os.environ.pop(TOKENS_ENV, None)  # hashed now: the plaintext need not stay around
        if not len(tokens):
            raise DupsearchError(
                "no API tokens: pass --tokens FILE (lines read:<token> / write:<token>) or set "
                f"{TOKENS_ENV}=read:<token>,write:<token>; or --no-auth for local use only")
    sock = _bind(host, port)
    # one thread per library call: the service's concurrency is its requests. With the BLAS and
    # OpenMP pools at every core, a match of 10 listings against a million took 83 ms and 146 ms
    # of CPU (the pools' threads spinning), with one thread 69 ms and 69 ms of CPU; a batch of
    # 600, 1.60 s (2.24 s CPU) against 1.55 s (1.61 s CPU)
    from dupsearch.threads import one_thread_each
    one_thread_each()

    def make_server(worker: int | None = None, metrics_dir: str | None = None):
        app = create_app(Path(index_path), tokens=tokens, no_auth=no_auth, max_body_bytes=max_body_bytes,
                         max_batch=max_batch, timeout_s=timeout_s, trust=trust, worker=worker,
                         metrics_dir=metrics_dir)
        config = uvicorn.Config(app, log_level=log_level, access_log=access_log, lifespan="on",
                                # a request in flight gets its own timeout to finish, plus slack
                                timeout_graceful_shutdown=int(timeout_s) + 5)
        return uvicorn.Server(config), app

    def say_listening(n_listings: int) -> None:
        bound_host, bound_port = sock.getsockname()[:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        auth = "no auth" if no_auth else f"{len(tokens)} token(s)"
        procs = f", {workers} worker processes" if workers > 1 else ""
        sys.stderr.write(f"dupsearch serve: listening on http://{shown}:{bound_port} "
                         f"(index {index_path}, {n_listings} listings, {auth}{procs})\n")
        sys.stderr.flush()

    try:
        if workers == 1:
            server, app = make_server()
            say_listening(len(app.state.index))
            server.run(sockets=[sock])
        else:
            from dupsearch.index.core import live_listings
            n_listings = live_listings(Path(index_path))  # a folder that is no index: one line, here
            _run_workers(int(workers), sock, make_server, lambda: say_listening(n_listings))
    finally:
        sock.close()


def _run_workers(workers: int, sock: socket.socket, make_server, on_started) -> None:
    """Fork ``workers`` processes that each serve ``sock`` with their own app; wait for them.
    SIGINT/SIGTERM here are passed on once (each worker shuts down gracefully); a worker that
    exits while the others serve stops them all, and is reported as one line."""

    if not hasattr(os, "fork"):
        raise DupsearchError("--workers above 1 needs os.fork (Linux or macOS); run one worker here")
    import shutil
    import tempfile
    # the workers' metrics snapshots: a scrape of any worker answers for all (create_app)
    metrics_dir = tempfile.mkdtemp(prefix="dupsearch-serve-metrics-")
    try:
        _fork_workers(workers, sock, make_server, on_started, metrics_dir)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)  # our own mkdtemp folder, nothing else


def _fork_workers(workers: int, sock: socket.socket, make_server, on_started, metrics_dir: str) -> None:
    import signal

    children: dict[int, int] = {}
    for number in range(workers):
        pid = os.fork()
        if pid == 0:  # the worker: its own process group (a terminal's Ctrl-C reaches the parent only)
            code = 1
            try:
                os.setpgid(0, 0)
                _exit_with_parent()
                server, _ = make_server(number + 1, metrics_dir)
                server.run(sockets=[sock])
                code = 0
            except BaseException as exc:  # noqa: BLE001 - the worker reports in one line and exits
                sys.stderr.write(f"dupsearch serve: worker {number + 1}: {exc}\n")
            finally:
                sys.stderr.flush()
                os._exit(code)
        children[pid] = number
    on_started()
    stopping = False

    def stop(signum=None, frame=None):
        nonlocal stopping
        if not stopping:
            stopping = True
            for child in list(children):
                try:
                    os.kill(child, signal.SIGTERM)
                except ProcessLookupError:
                    pass

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    failed = None
    try:
        while children:
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            number = children.pop(pid, None)
            code = os.waitstatus_to_exitcode(status)
            if number is not None and not stopping:
                failed = failed or f"worker {number + 1} of {workers} exited (code {code}); the others were stopped"
                stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if failed:
        raise DupsearchError(failed)


def _exit_with_parent() -> None:
    """Linux: the kernel sends this process SIGTERM when its parent dies (a supervisor killed
    with -9 leaves no worker behind). Elsewhere nothing."""
    import signal
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def __getattr__(name: str):
    if name == "create_app":
        from dupsearch.serve.app import create_app
        return create_app
    raise AttributeError(f"module 'dupsearch.serve' has no attribute {name!r}")


__all__ = ["run_server", "create_app", "DEFAULT_MAX_BODY_BYTES", "DEFAULT_MAX_BATCH", "DEFAULT_TIMEOUT_S"]

logging.getLogger("dupsearch.serve").addHandler(logging.NullHandler())
