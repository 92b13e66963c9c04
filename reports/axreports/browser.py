"""A headless-chromium driver for the report tests, standard library only:
it speaks the DevTools protocol over --remote-debugging-pipe (fd 3 carries
commands to the browser, fd 4 its answers and events, each message JSON
ending in a NUL byte), loads a page, collects every console error, uncaught
exception and failed load, evaluates an expression, and takes a full-page
screenshot.

Run as a script to screenshot a report:
    python3 reports/axreports/browser.py DIR/index.html OUT.png
"""

import base64
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run", "--no-default-browser-check", "--hide-scrollbars",
    "--mute-audio", "--remote-debugging-pipe",
]


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class BrowserError(Exception):
    pass


class Browser:
    """One chromium process driven over the DevTools pipe."""

    def __init__(self, binary=None, timeout=60):
        self.binary = binary or find_chromium()
        if not self.binary:
            raise BrowserError("chromium not found (scripts/setup chromium installs it)")
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="axbench-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def child_fds():
            # the browser expects its command pipe on fd 3, answers on fd 4;
            # move both out of the way first so the dup2s cannot clobber them
            a, b = os.dup(to_browser_r), os.dup(from_browser_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [self.binary, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.stderr,
            preexec_fn=child_fds, close_fds=False, start_new_session=True)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buf = b""
        self._next_id = 0
        self.events = []

    def _send(self, method, params=None, session=None):
        self._next_id += 1
        msg = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_browser, json.dumps(msg).encode() + b"\0")
        return self._next_id

    def _read_message(self, deadline):
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError("no answer from chromium before the timeout")
            ready, _, _ = select.select([self._from_browser], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise BrowserError("chromium closed the DevTools pipe: " + self.stderr_text()[-2000:])
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method, params=None, session=None):
        """Send a command and wait for its answer; events that arrive
        meanwhile are kept in self.events."""
        want = self._send(method, params, session)
        deadline = time.monotonic() + self.timeout
        while True:
            msg = self._read_message(deadline)
            if msg.get("id") == want:
                if "error" in msg:
                    raise BrowserError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def wait_event(self, method, session=None, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        for ev in self.events:
            if ev["method"] == method and (session is None or ev.get("sessionId") == session):
                return ev
        while True:
            msg = self._read_message(deadline)
            if "method" in msg:
                self.events.append(msg)
                if msg["method"] == method and (session is None or msg.get("sessionId") == session):
                    return msg

    def drain(self, seconds):
        """Collect events for a while (late console errors)."""
        deadline = time.monotonic() + seconds
        try:
            while True:
                msg = self._read_message(deadline)
                if "method" in msg:
                    self.events.append(msg)
        except BrowserError as e:
            if "timeout" not in str(e):
                raise

    def stderr_text(self):
        self.stderr.seek(0)
        return self.stderr.read().decode("utf-8", "replace")

    def close(self):
        try:
            if self.proc.poll() is None:
                try:
                    self._send("Browser.close")
                    self.proc.wait(timeout=10)
                except (OSError, subprocess.TimeoutExpired):
                    # a hung browser: it runs in its own process group
                    # (start_new_session), so its helpers go with it
                    try:
                        os.killpg(self.proc.pid, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        self.proc.kill()
                    self.proc.wait()
        finally:
            for fd in (self._to_browser, self._from_browser):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self.stderr.close()
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def console_problems(events, session):
    """Console errors, uncaught exceptions and failed loads among events."""
    out = []
    for ev in events:
        if ev.get("sessionId") != session:
            continue
        m, p = ev["method"], ev.get("params", {})
        if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            out.append("console." + p["type"] + ": " + " ".join(
                str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))
        elif m == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            out.append("exception: " + str(d.get("exception", {}).get("description")
                                           or d.get("text")))
        elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            e = p["entry"]
            out.append(f"log ({e.get('source')}): {e.get('text')} {e.get('url', '')}".strip())
    return out


PAGE_FACTS = """JSON.stringify({
  title: document.title,
  sections: Array.from(document.querySelectorAll('section[id]')).map(s => ({
    id: s.id, heading: (s.querySelector('h2') || {}).textContent || '',
    height: s.getBoundingClientRect().height})),
  images: Array.from(document.images).map(i => ({alt: i.alt,
    ok: i.complete && i.naturalWidth > 0, w: i.naturalWidth, h: i.naturalHeight})),
  height: document.documentElement.scrollHeight
})"""


def inspect_page(path, screenshot=None, width=1280, timeout=60):
    """Load a local HTML file; return {'problems': [...], 'facts': {...}}
    and write a full-page PNG to `screenshot` if given."""
    url = Path(path).resolve().as_uri()
    with Browser(timeout=timeout) as b:
        target = b.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = b.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            b.call(f"{domain}.enable", session=session)
        b.call("Emulation.setDeviceMetricsOverride", {"width": width, "height": 900,
                                                      "deviceScaleFactor": 1, "mobile": False},
               session=session)
        b.call("Page.navigate", {"url": url}, session=session)
        b.wait_event("Page.loadEventFired", session=session)
        b.drain(0.5)
        res = b.call("Runtime.evaluate", {"expression": PAGE_FACTS, "returnByValue": True},
                     session=session)
        facts = json.loads(res["result"]["value"])
        if screenshot:
            height = min(int(facts["height"]) + 20, 16000)
            b.call("Emulation.setDeviceMetricsOverride", {"width": width, "height": height,
                                                          "deviceScaleFactor": 1,
                                                          "mobile": False}, session=session)
            shot = b.call("Page.captureScreenshot", {"format": "png",
                                                     "captureBeyondViewport": True},
                          session=session)
            Path(screenshot).write_bytes(base64.b64decode(shot["data"]))
        b.drain(0.2)
        return {"problems": console_problems(b.events, session), "facts": facts}


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print("usage: browser.py PAGE.html OUT.png", file=sys.stderr)
        sys.exit(2)
    out = inspect_page(sys.argv[1], sys.argv[2])
    print(json.dumps(out, indent=1))
    sys.exit(1 if out["problems"] else 0)
