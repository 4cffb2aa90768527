"""Headless Chromium for the page tests, driven over the DevTools protocol (websocket-client, a visdom dependency).

`Chromium().inspect(path)` loads a local HTML file, waits for its load event and for the network to fall quiet
(lazy images that are off screen are not waited for), and returns what the page shows: each image's src and
naturalWidth, the ids of its tables and their rows, its body text, and whether a script ran that the page should
never have run. While a page is open the browser records what it printed as errors (console errors, uncaught
exceptions, failed loads: `errors`) and every URL it requested (`requests`); `assert_clean()` checks that there
was no error and no request outside file://. `evaluate`, `key`, `click`, `wheel`, `move` and `screenshot` drive and
capture the page the way a user would (real input events, not synthetic DOM events).
"""
import base64
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")  # anything else left the machine (or tried to)

INSPECT = """
(() => {
  const visible = el => { const r = el.getBoundingClientRect(); return r.bottom > 0 && r.top < innerHeight; };
  return JSON.stringify({
    title: document.title,
    images: Array.from(document.images).map(i => ({src: i.getAttribute('src'), alt: i.alt,
                                                   naturalWidth: i.naturalWidth, complete: i.complete,
                                                   loading: i.loading, visible: visible(i)})),
    tables: Array.from(document.querySelectorAll('table')).map(t => t.id),
    rows: Object.fromEntries(Array.from(document.querySelectorAll('table[id]')).map(
      t => [t.id, Array.from(t.rows).map(r => Array.from(r.cells).map(c => c.innerText.trim()))])),
    text: document.body.innerText,
    pwned: window.pwned === 1,
    elements: document.getElementsByTagName('*').length,
  });
})()
"""

KEYS = {"ArrowLeft": 37, "ArrowUp": 38, "ArrowRight": 39, "ArrowDown": 40, "Escape": 27, "Enter": 13,
        "PageUp": 33, "PageDown": 34, "Home": 36, "End": 35}


def find_chromium():
    for name in [os.environ.get("CHROMIUM", "")] + list(NAMES):
        path = shutil.which(name) if name else None
        if path:
            return path
    return None


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Chromium:
    def __init__(self, width=1280, height=900):
        binary = find_chromium()
        if binary is None:
            raise RuntimeError("no Chromium found: apt-get install -y chromium (or set CHROMIUM=/path/to/binary)")
        self.profile = tempfile.mkdtemp(prefix="revgan-chromium-")
        self.port = _free_port()
        self.proc = subprocess.Popen(
            [binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--no-first-run", f"--remote-debugging-port={self.port}", "--remote-allow-origins=*",
             f"--user-data-dir={self.profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.ws = None
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list", timeout=2) as r:
                    pages = [t for t in json.load(r) if t.get("type") == "page"]
                if pages:
                    break
            except OSError:
                pass
            if time.time() > deadline or self.proc.poll() is not None:
                self.close()
                raise RuntimeError("Chromium did not start its DevTools endpoint")
            time.sleep(0.2)
        import websocket
        self.ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=60, suppress_origin=True)
        self._quiet = websocket.WebSocketTimeoutException
        self._id = 0
        self.errors, self.requests, self.failed = [], [], []
        self._pending, self._loaded, self._last_event = set(), False, time.time()
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(domain + ".enable")
        self.resize(width, height)

    # -- protocol ----------------------------------------------------------------------------------------------------
    def _handle(self, msg):
        method, p = msg.get("method"), msg.get("params", {})
        self._last_event = time.time()
        if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            self.errors.append("console: " + " ".join(str(a.get("value", a.get("description", "")))
                                                      for a in p.get("args", [])))
        elif method == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            self.errors.append("exception: " + (d.get("exception", {}).get("description") or d.get("text", "")))
        elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            e = p["entry"]
            self.errors.append(f"log: {e.get('text')} {e.get('url', '')}".strip())
        elif method == "Network.requestWillBeSent":
            self.requests.append(p["request"]["url"])
            self._pending.add(p["requestId"])
        elif method in ("Network.loadingFinished", "Network.loadingFailed"):
            self._pending.discard(p.get("requestId"))
            if method == "Network.loadingFailed" and not p.get("canceled"):
                self.failed.append(p.get("errorText", ""))
        elif method == "Page.loadEventFired":
            self._loaded = True

    def _recv(self, timeout=None):
        self.ws.settimeout(timeout if timeout is not None else 60)
        try:
            msg = json.loads(self.ws.recv())
        except self._quiet:
            return None
        if "method" in msg:
            self._handle(msg)
        return msg

    def call(self, method, **params):
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            msg = self._recv()
            if msg is not None and msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def settle(self, quiet=0.3, timeout=30):
        """Waits until the page has loaded, no request is open, and nothing happened for ``quiet`` seconds."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            self._recv(timeout=0.05)
            if self._loaded and not self._pending and time.time() - self._last_event > quiet:
                return
        raise RuntimeError(f"the page did not settle in {timeout}s ({len(self._pending)} requests open)")

    # -- pages -------------------------------------------------------------------------------------------------------
    def resize(self, width, height):
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                  mobile=False)

    def open(self, path):
        """Loads a local file and waits until it settled; resets `errors`, `requests` and `failed`."""
        url = Path(os.path.abspath(path)).as_uri()
        self.errors, self.requests, self.failed, self._pending, self._loaded = [], [], [], set(), False
        self.call("Page.navigate", url=url)
        self.settle()
        href = self.evaluate("location.href")
        if href != url:
            raise RuntimeError(f"opened {href}, not {url}")
        return url

    def inspect(self, path=None, eager=False):
        """What the page at ``path`` (or the open page) shows. ``eager``: every lazy image is asked to load first,
        so that every image's naturalWidth says whether it can load."""
        if path is not None:
            self.open(path)
        if eager:
            self.evaluate("document.querySelectorAll('img[loading=lazy]').forEach(i => { i.loading = 'eager'; })")
            self.settle()
        return json.loads(self.evaluate(INSPECT))

    def evaluate(self, expression, settle=False):
        result = self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True,
                           userGesture=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        if settle:
            self.settle()
        return result["result"].get("value")

    def assert_clean(self):
        """No error printed, no failed load, and no request outside file:// since the page was opened."""
        assert not self.errors, f"the page reported errors: {self.errors}"
        assert not self.failed, f"loads failed: {self.failed}"
        outside = [u for u in self.requests if not u.startswith(LOCAL_SCHEMES)]
        assert not outside, f"requests outside file://: {outside}"

    # -- input, as a user gives it -----------------------------------------------------------------------------------
    def key(self, key, settle=True):
        code = KEYS.get(key, ord(key.upper()) if len(key) == 1 else 0)
        for kind in ("rawKeyDown", "keyUp"):
            self.call("Input.dispatchKeyEvent", type=kind, key=key, code=key if len(key) > 1 else "Key" + key.upper(),
                      windowsVirtualKeyCode=code, nativeVirtualKeyCode=code)
        if len(key) == 1:
            self.call("Input.dispatchKeyEvent", type="char", text=key, key=key)
        if settle:
            self.settle(quiet=0.15)

    def center(self, selector):
        """The viewport coordinates of the centre of the first element matching ``selector`` (scrolled into view)."""
        box = self.evaluate(f"""(() => {{ const e = document.querySelector({json.dumps(selector)});
            if (!e) return null; e.scrollIntoView({{block: 'center', inline: 'center'}});
            const r = e.getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2]; }})()""")
        if box is None:
            raise AssertionError(f"no element matches {selector}")
        return box

    def click(self, selector, settle=True):
        x, y = self.center(selector)
        self.move(x, y, settle=False)
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)
        if settle:
            self.settle(quiet=0.15)

    def move(self, x, y, settle=True):
        self.call("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)
        if settle:
            self.settle(quiet=0.1)

    def wheel(self, selector, dy, settle=True):
        x, y = self.center(selector)
        self.call("Input.dispatchMouseEvent", type="mouseWheel", x=x, y=y, deltaX=0, deltaY=dy)
        if settle:
            self.settle(quiet=0.15)

    def screenshot(self, path, full_page=False):
        """Saves what the viewport shows (or the whole page) as a PNG; returns its size in bytes."""
        params = {"format": "png"}
        if full_page:
            w, h = self.evaluate("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
            params.update(captureBeyondViewport=True, clip={"x": 0, "y": 0, "width": w, "height": min(h, 8000),
                                                            "scale": 1})
        data = base64.b64decode(self.call("Page.captureScreenshot", **params)["data"])
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        return len(data)

    def close(self):
        if self.ws is not None:
            self.ws.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
