"""`serving.Children`, the processes `pigeon serve` starts: restarted when they die, with a
growing pause when they keep dying at once, and stopped with it."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from pigeon import serving


def _counting(code: str) -> tuple[list[subprocess.Popen[bytes]], serving.Children]:
    started: list[subprocess.Popen[bytes]] = []

    def spawn(slot: int) -> subprocess.Popen[bytes]:
        started.append(subprocess.Popen([sys.executable, "-c", code]))
        return started[-1]

    return started, serving.Children("test", spawn, 1)


@pytest.fixture(autouse=True)
def _fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(serving, "SUPERVISE_EVERY", 0.02)
    monkeypatch.setattr(serving, "QUICK_DEATH", 0.5)
    monkeypatch.setattr(serving, "MAX_RESTART_PAUSE", 0.4)


def test_a_child_that_dies_at_once_is_started_again_after_growing_pauses(caplog: pytest.LogCaptureFixture) -> None:
    started, children = _counting("import sys; sys.exit(3)")
    children.start()
    time.sleep(1.2)
    children.stop()
    # Pauses of 0 (the first start), then 1 s capped at 0.4, 0.4, ...: about four starts in
    # 1.2 s. Restarted at every check (every 0.02 s) it would have been about sixty.
    assert 2 <= len(started) <= 6, len(started)
    # Logged (a JSON line on standard error), not printed: a plain line broke the log's format.
    said = [r for r in caplog.records if r.name == "pigeon.serving"]
    assert said and all(r.levelname == "WARNING" for r in said)
    assert "exited with 3; starting another in 0.4 s" in said[-1].getMessage()
    assert said[-1].getMessage().startswith("test process")
    assert (said[-1].__dict__["exit_status"], said[-1].__dict__["restart_in_seconds"]) == (3, 0.4)


def test_a_child_that_ran_a_while_is_started_again_at_once(caplog: pytest.LogCaptureFixture) -> None:
    started, children = _counting("import time; time.sleep(0.6)")  # longer than QUICK_DEATH
    children.start()
    deadline = time.monotonic() + 5
    while len(started) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    children.stop()
    assert len(started) >= 2
    first, second = started[0], started[1]
    assert first.returncode == 0 and second.returncode is not None  # stopped with the parent
    assert any(r.getMessage().endswith("exited with 0; starting another") for r in caplog.records)


def test_stop_ends_every_child_and_no_more_are_started() -> None:
    started, children = _counting("import time; time.sleep(60)")
    children.start()
    children.stop(timeout=5)
    assert all(p.returncode is not None for p in started)
    count = len(started)
    time.sleep(0.1)
    assert len(started) == count
