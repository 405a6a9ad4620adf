"""What the end-to-end tests share: the local stack as a user runs it, the
operator CLI and the simulator against it, and a real browser."""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from bench.stack import free_port

BIN = Path(sys.executable).parent
DEMO_KEY = "shk_e2e-demo-key"
STARTUP_SECONDS = 90


@pytest.fixture(scope="module")
def local_stack():
    port, moto_port, simulator_port = free_port(), free_port(), free_port()
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AWS_", "SHOPHOOK_"))
    }
    env.update(
        SHOPHOOK_DEMO_API_KEY=DEMO_KEY, SHOPHOOK_LOCAL_SCHEDULE_SECONDS="1", PYTHONUNBUFFERED="1"
    )
    process = subprocess.Popen(
        [
            BIN / "shophook",
            "local",
            "--port",
            str(port),
            "--moto-port",
            str(moto_port),
            "--simulator-port",
            str(simulator_port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(
        target=lambda: [lines.put(line) for line in process.stdout], daemon=True
    ).start()
    output = []
    while True:
        line = lines.get(timeout=STARTUP_SECONDS)
        output.append(line)
        if "Ctrl-C stops everything" in line or process.poll() is not None:
            break
    assert process.poll() is None, "".join(output)
    yield (
        f"http://127.0.0.1:{port}",
        process,
        output,
        lines,
        moto_port,
        f"http://127.0.0.1:{simulator_port}",
    )
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)


def operator_cli(
    moto_port: int, *argv: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """`shophook --stage local ...` against the running stack, as the banner shows it
    (`env`: more variables, such as where this stack's simulator is)."""
    return subprocess.run(
        [BIN / "shophook", "--stage", "local", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={
            # A user's shell: none of the variables this test process set for others.
            **{
                name: value
                for name, value in os.environ.items()
                if not name.startswith("SHOPHOOK_")
            },
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{moto_port}",
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "SHOPHOOK_TABLE_PREFIX": "shophook-local-",
            "COLUMNS": "200",
            **(env or {}),
        },
    )


def simulate(url: str, scenario: str, simulator: str | None = None) -> None:
    """Play the scenario; with `simulator`, the stack's platform simulator holds its
    records (what detail calls and pulls read)."""
    held_by = ["--simulator", simulator] if simulator else []
    done = subprocess.run(
        [BIN / "shophook", "simulate", scenario, "--url", url, "--json", *held_by],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def read(url: str, path: str) -> dict:
    return requests.get(
        f"{url}{path}", headers={"Authorization": f"Bearer {DEMO_KEY}"}, timeout=10
    ).json()


def wait_for(check, what: str, seconds: float = 60):
    """Poll until `check()` is truthy (the stack's pollers work in the background)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


BROWSER_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


@pytest.fixture
def new_browser(tmp_path: Path) -> Iterator[Callable[[], Any]]:
    """Headless Debian chromium, each with a profile of its own (a browser of its
    own, cookies included); `make test` installs it where it can."""
    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and chromedriver):
        pytest.skip(
            "no chromium/chromedriver on this machine, and `make test` could not install them"
        )
    from selenium import webdriver

    opened = []

    def open_one() -> Any:
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        profile = tmp_path / f"profile-{len(opened)}"
        for flag in (*BROWSER_FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        browser = webdriver.Chrome(service=webdriver.ChromeService(chromedriver), options=options)
        browser.set_page_load_timeout(30)
        opened.append(browser)
        return browser

    yield open_one
    for browser in opened:
        browser.quit()
