"""A real uvicorn server in a subprocess, started the way the repository's start commands do.

Some behaviour lives outside the ASGI app: uvicorn rewrites the client address from proxy
headers and writes its own access log before the app sees anything, and a blocked event loop
only shows with a real server and concurrent clients. These helpers run ``uvicorn`` with the
arguments of a start command (Makefile, Dockerfile, render.yaml) on a free loopback port.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from app.core.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def start_commands() -> dict[str, list[str]]:
    """The uvicorn arguments (after ``uvicorn``) of every start command of the repository."""
    commands: dict[str, list[str]] = {}
    makefile = (REPO / "Makefile").read_text()
    run = re.search(r"^run:.*\n\t(.*uvicorn .*)$", makefile, re.MULTILINE)
    assert run, "no uvicorn command in the Makefile's run target"
    commands["Makefile"] = _after_uvicorn(run.group(1))
    dockerfile = (REPO / "Dockerfile").read_text()
    cmd = re.search(r"^CMD .*exec (uvicorn [^\"]*)\"", dockerfile, re.MULTILINE)
    assert cmd, "no uvicorn command in the Dockerfile's CMD"
    commands["Dockerfile"] = _after_uvicorn(cmd.group(1))
    render = (REPO / "render.yaml").read_text()
    web = re.search(r"^\s+startCommand: (uvicorn .*)$", render, re.MULTILINE)
    assert web, "no uvicorn startCommand in render.yaml"
    commands["render.yaml"] = _after_uvicorn(web.group(1))
    return commands


def _after_uvicorn(line: str) -> list[str]:
    tokens = shlex.split(line)
    index = next(i for i, token in enumerate(tokens) if token.endswith("uvicorn"))
    return tokens[index + 1 :]


def local_args(args: list[str], port: int) -> list[str]:
    """``args`` on loopback ``port`` with one worker; the command's other flags are kept."""
    out = ["--host", "127.0.0.1", "--port", str(port)]
    values = iter(args)
    for token in values:
        if token in ("--port", "--host", "--workers"):
            next(values, None)  # drop the option's value
        else:
            out.append(token)
    return out


@dataclass
class Server:
    """A running server: its base URL, process and (after it stopped) its output."""

    url: str
    proc: subprocess.Popen[str]
    output: str = ""
    _log: Path | None = field(default=None, repr=False)

    def read_output(self) -> str:
        """Everything the server wrote so far (stdout and stderr)."""
        return self._log.read_text() if self._log else ""


def free_port() -> int:
    """A TCP port on loopback that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def uvicorn_server(
    args: list[str], env: dict[str, str], *, data_from: Path | None, startup_s: float = 60
) -> Iterator[Server]:
    """Run ``python -m uvicorn <args>`` (``args`` get a free port and loopback host) with a
    data dir copied from ``data_from`` (a seeded store; None: an empty data dir), the offline
    provider and ``env``."""
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="nseq-uvicorn-"))
    if data_from is not None:
        shutil.copy(data_from, workdir / "store.sqlite3")
    log = workdir / "server.log"
    # The server reads its settings from ``env`` only, not from the test runner's environment.
    full_env = {k: v for k, v in os.environ.items() if k.lower() not in Settings.model_fields}
    full_env.update(
        {
            "DATA_DIR": str(workdir),
            "MARKET_DATA_PROVIDER": "offline",
            "DATA_STALE_AFTER_DAYS": "100000",
            "LOG_LEVEL": "INFO",
            # Run from an empty folder (no .env file) with the repository importable.
            "PYTHONPATH": str(REPO),
            **env,
        }
    )
    command = [sys.executable, "-m", "uvicorn", *local_args(args, port)]
    with log.open("w") as sink:
        proc = subprocess.Popen(
            command,
            cwd=workdir,
            env=full_env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
        )
    server = Server(url=f"http://127.0.0.1:{port}", proc=proc, _log=log)
    try:
        deadline = time.monotonic() + startup_s
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the server exited at start:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{server.url}/health/live", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"the server did not start:\n{log.read_text()[-3000:]}")
                time.sleep(0.2)
        yield server
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)
        server.output = log.read_text()
        shutil.rmtree(workdir, ignore_errors=True)
