"""`anchorvoice serve` at start: what it checks before listening and what it tells the user (real server on
127.0.0.1; an occupied port, an unknown device, an OBS that does not answer)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from anchorvoice.engine.cli.main import main

Serve = Callable[..., tuple[int, str, str]]


@pytest.fixture
def serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Serve:
    """Run `anchorvoice serve` in this process for a moment: (exit code, stdout, stderr)."""
    monkeypatch.setenv("ANCHORVOICE_PLUGINS", "")  # built-in plugins only

    def run(*args: str) -> tuple[int, str, str]:
        rc = main(["--home", str(tmp_path / "home"), "serve", "--speech-output", "none", "--duration", "0.2",
                   *args])
        out = capsys.readouterr()
        return rc, out.out, out.err

    return run


def test_a_port_in_use_is_an_error_naming_it(serve: Serve) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        rc, out, err = serve("--port", str(port))
    assert rc == 2 and "Traceback" not in err
    assert f"port {port} on 127.0.0.1 is already in use" in err and "another `anchorvoice serve`" in err
    assert "--port" in err


def test_unknown_voice_and_device_are_refused_before_listening(serve: Serve, tmp_path: Path) -> None:
    rc, out, err = serve("--port", "0", "--voice", "zed")
    assert rc == 2 and "Unable to find voice 'zed'" in err and "control API on" not in out
    assert not (tmp_path / "home" / "control-token").exists()  # nothing done before the check
    rc, out, err = serve("--port", "0", "--speech-output", "no-such-card-4711")
    assert rc == 2 and "speech output 'no-such-card-4711'" in err and "--speech-output" in err
    assert "control API on" not in out


def test_token_printed_on_the_first_run_then_where_it_is(serve: Serve, tmp_path: Path) -> None:
    rc, first, _ = serve("--port", "0")
    path = tmp_path / "home" / "control-token"
    token = path.read_text().strip()
    assert rc == 0 and first.startswith("anchorvoice control API on ws://127.0.0.1:")
    assert token in first and str(path) in first
    rc, again, _ = serve("--port", "0")
    assert rc == 0 and token not in again and str(path) in again and f"cat {path}" in again
    rc, shown, _ = serve("--port", "0", "--show-token")
    assert rc == 0 and token in shown


def test_listening_beyond_this_machine_warns(serve: Serve) -> None:
    rc, out, err = serve("--port", "0", "--host", "0.0.0.0")
    assert rc == 0 and "warning: listening on 0.0.0.0" in err and "anyone on the network" in err
    rc, out, err = serve("--port", "0", "--host", "127.0.0.1")
    assert rc == 0 and "warning" not in err


def test_unreachable_obs_is_a_warning_at_start_without_hanging(serve: Serve) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]  # nothing listens here once the socket is closed
    t0 = time.monotonic()
    rc, out, err = serve("--port", "0", "--obs", f"ws://127.0.0.1:{closed}")
    assert rc == 0 and time.monotonic() - t0 < 15
    assert f"warning: OBS is not reachable at ws://127.0.0.1:{closed}" in err and "WebSocket server" in err


def test_reachable_obs_gets_no_warning(serve: Serve) -> None:
    with socket.socket() as obs:
        obs.bind(("127.0.0.1", 0))
        obs.listen()
        rc, out, err = serve("--port", "0", "--obs", f"ws://127.0.0.1:{obs.getsockname()[1]}")
    assert rc == 0 and "not reachable" not in err
