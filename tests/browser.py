"""Load a page in headless Chromium and report what a user's browser would see: console errors, requests, a screenshot.

A test helper, not part of the product: coca-bench writes HTML and never needs a browser. Why a driver of our own
rather than Playwright or Selenium: it needs no extra package (Playwright's Python package would fetch its own
browser build, which this project's machines cannot download; Selenium needs chromedriver besides Chromium). Chromium speaks the DevTools
protocol over a pipe (``--remote-debugging-pipe``: commands on fd 3, replies on fd 4, each JSON message ended by a
NUL byte), which gives every console message, uncaught exception and network request as an event, not as text
scraped from a log. Host names resolve to nothing (``--host-resolver-rules``), so even a page that tried to reach
the network would not leave the machine, and the attempt is still seen as a request.

    python tests/browser.py results/report.html docs/report.png --viewport 1280x1700 --width 960
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
LOCAL_SCHEMES = ("data:", "about:")  # what a self-contained page may load besides itself


class BrowserError(RuntimeError):
    """Chromium could not be started or did not answer."""


def find_chromium() -> str | None:
    """The Chromium (or Chrome) executable on the PATH, or ``$COCA_BENCH_CHROMIUM``; ``None`` when there is none."""
    explicit = os.environ.get("COCA_BENCH_CHROMIUM")
    if explicit:
        return explicit if shutil.which(explicit) else None
    return next((found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None)


@dataclass
class PageLoad:
    """What happened while a page loaded."""

    url: str
    console_errors: list[str] = field(default_factory=list)  # console.error, uncaught exceptions, browser log errors
    requests: list[str] = field(default_factory=list)  # every URL the page asked for (the page itself included)
    evaluated: Any = None  # the value of the expression passed to load_page
    screenshot: bytes = b""  # PNG of the viewport

    @property
    def outside_requests(self) -> list[str]:
        """Requests for anything but the page itself and ``data:`` URIs: none for a self-contained page."""
        return [u for u in self.requests if u != self.url and not u.startswith(LOCAL_SCHEMES)]


class _Pipe:
    """The DevTools protocol over Chromium's fd 3 (our commands) and fd 4 (its replies and events)."""

    def __init__(self, write_fd: int, read_fd: int, timeout: float) -> None:
        self.write_fd, self.read_fd, self.timeout = write_fd, read_fd, timeout
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        os.write(self.write_fd, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise BrowserError(f"Chromium refused {method}: {reply['error'].get('message')}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str) -> dict:
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            event = self._read()
            self.events.append(event)
            if event.get("method") == method:
                return event

    def drain(self, seconds: float) -> None:
        """Collect the events that arrive within ``seconds`` (late console messages, late requests)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if b"\0" not in self.buffer and not select.select([self.read_fd], [], [], left)[0]:
                return
            self.events.append(self._read())

    def _read(self) -> dict:
        deadline = time.monotonic() + self.timeout
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.read_fd], [], [], left)[0]:
                raise BrowserError(f"Chromium did not answer within {self.timeout:.0f} s.")
            chunk = os.read(self.read_fd, 1 << 20)
            if not chunk:
                raise BrowserError("Chromium closed the DevTools pipe (it crashed or could not start).")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)


def _high_fd(fd: int) -> int:
    """A close-on-exec copy of ``fd`` numbered 10 or more: placing the pipe ends on 3 and 4 in the child clobbers
    neither, and only those two reach Chromium."""
    copy = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return copy


def _console_text(event: dict) -> str | None:
    method, params = event.get("method"), event.get("params") or {}
    if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
        return (
            "console."
            + params["type"]
            + ": "
            + " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
        )
    if method == "Runtime.exceptionThrown":
        details = params.get("exceptionDetails") or {}
        return "exception: " + str((details.get("exception") or {}).get("description") or details.get("text"))
    if method == "Log.entryAdded" and (params.get("entry") or {}).get("level") == "error":
        entry = params["entry"]
        return f"{entry.get('source')}: {entry.get('text')} {entry.get('url') or ''}".strip()
    return None


def load_page(
    path: Path | str,
    *,
    evaluate: str | None = None,
    width: int = 1280,
    height: int = 900,
    full_page: bool = False,
    timeout: float = 60.0,
    chromium: str | None = None,
) -> PageLoad:
    """Open ``path`` (a local file) headless, wait for its load event, and return what happened.

    ``evaluate``: a JavaScript expression evaluated after loading (its JSON value is returned). ``full_page``: the
    screenshot covers the whole page, not only the ``width`` x ``height`` viewport.
    """
    executable = chromium or find_chromium()
    if executable is None:
        raise BrowserError("No Chromium found; install it (apt-get install chromium) or set COCA_BENCH_CHROMIUM.")
    url = Path(path).resolve().as_uri()
    command_read, command_write = (_high_fd(fd) for fd in os.pipe())
    reply_read, reply_write = (_high_fd(fd) for fd in os.pipe())

    def wire_pipes() -> None:  # in the child, before exec; dup2 makes 3 and 4 inheritable
        os.dup2(command_read, 3)
        os.dup2(reply_write, 4)

    with tempfile.TemporaryDirectory(prefix="coca_bench_chromium_") as profile:
        args = [
            executable, "--headless", "--disable-gpu", "--no-sandbox", "--remote-debugging-pipe",
            f"--user-data-dir={profile}", "--no-first-run", "--no-default-browser-check", "--disable-extensions",
            "--disable-background-networking", "--disable-component-update", "--disable-sync", "--mute-audio",
            '--host-resolver-rules=MAP * ~NOTFOUND', "--hide-scrollbars", "about:blank",
        ]  # fmt: skip
        process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            close_fds=False, preexec_fn=wire_pipes,  # Python's own fds are not inheritable: only 3 and 4 pass
        )  # fmt: skip
        os.close(command_read)
        os.close(reply_write)
        pipe = _Pipe(command_write, reply_read, timeout)
        try:
            return _drive(pipe, url, evaluate, width, height, full_page)
        finally:
            try:
                pipe.send("Browser.close")
            except (BrowserError, OSError):
                pass
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            os.close(command_write)
            os.close(reply_read)


def _drive(pipe: _Pipe, url: str, evaluate: str | None, width: int, height: int, full_page: bool) -> PageLoad:
    target = pipe.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = pipe.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    for domain in ("Page", "Runtime", "Log", "Network"):
        pipe.send(f"{domain}.enable", session=session)
    pipe.send(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        session=session,
    )
    pipe.events.clear()  # what about:blank did is not the page's doing
    pipe.send("Page.navigate", {"url": url}, session=session)
    pipe.wait_for("Page.loadEventFired")
    pipe.drain(0.5)
    result = PageLoad(url=url)
    if evaluate is not None:
        reply = pipe.send("Runtime.evaluate", {"expression": evaluate, "returnByValue": True}, session=session)
        if "exceptionDetails" in reply:
            raise BrowserError(f"The expression failed in the page: {reply['exceptionDetails'].get('text')}")
        result.evaluated = (reply.get("result") or {}).get("value")
    shot: dict[str, Any] = {"format": "png"}
    if full_page:
        size = pipe.send("Page.getLayoutMetrics", session=session)["cssContentSize"]
        shot.update(
            captureBeyondViewport=True, clip={"x": 0, "y": 0, "width": width, "height": size["height"], "scale": 1}
        )
    result.screenshot = base64.b64decode(pipe.send("Page.captureScreenshot", shot, session=session)["data"])
    pipe.drain(0.2)
    for event in pipe.events:
        if event.get("sessionId") not in (None, session):
            continue
        if event.get("method") == "Network.requestWillBeSent":
            result.requests.append(event["params"]["request"]["url"])
        elif (text := _console_text(event)) is not None:
            result.console_errors.append(text)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """A screenshot of a page's viewport; ``--width`` downscales it to a 256-colour PNG (docs/report.png)."""
    import argparse
    import io

    parser = argparse.ArgumentParser(prog="python tests/browser.py", description=main.__doc__)
    parser.add_argument("page", type=Path, help="an HTML file, e.g. results/report.html")
    parser.add_argument("png", type=Path, help="where to write the screenshot")
    parser.add_argument("--viewport", default="1280x900", metavar="WxH", help="browser viewport (default 1280x900)")
    parser.add_argument("--width", type=int, default=None, metavar="N", help="downscale to N px wide, 256 colours")
    args = parser.parse_args(argv)
    width, _, height = args.viewport.partition("x")
    page = load_page(args.page, width=int(width), height=int(height))
    data = page.screenshot
    if args.width:
        from PIL import Image

        image = Image.open(io.BytesIO(data)).convert("RGB")
        image = image.resize((args.width, round(image.height * args.width / image.width)), Image.Resampling.LANCZOS)
        palette = image.quantize(colors=256, method=Image.Quantize.FASTOCTREE)
        buffer = io.BytesIO()
        image.quantize(palette=palette, dither=Image.Dither.FLOYDSTEINBERG).save(buffer, format="PNG", optimize=True)
        data = buffer.getvalue()
    args.png.write_bytes(data)
    for problem in page.console_errors + [f"request: {u}" for u in page.outside_requests]:
        print(problem, file=sys.stderr)
    return 1 if page.console_errors or page.outside_requests else 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["BrowserError", "PageLoad", "find_chromium", "load_page"]
