"""Headless Chromium for the page tests, driven over the DevTools protocol (websocket-client, a visdom dependency).

`Chromium().inspect(path)` loads a local HTML file, waits for its load event and for every image to finish or fail,
and returns what the page shows: each image's src and naturalWidth, the ids of its tables, its body text, and
whether a script ran that the page should never have run.
"""
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

INSPECT = """
new Promise(resolve => {
  const report = () => resolve(JSON.stringify({
    title: document.title,
    images: Array.from(document.images).map(i => ({src: i.getAttribute('src'), alt: i.alt,
                                                   naturalWidth: i.naturalWidth, complete: i.complete})),
    tables: Array.from(document.querySelectorAll('table')).map(t => t.id),
    rows: Object.fromEntries(Array.from(document.querySelectorAll('table[id]')).map(
      t => [t.id, Array.from(t.rows).map(r => Array.from(r.cells).map(c => c.innerText.trim()))])),
    text: document.body.innerText,
    pwned: window.pwned === 1,
    elements: document.getElementsByTagName('*').length,
  }));
  const settle = () => Promise.all(Array.from(document.images).map(i => i.complete ? 0 :
      new Promise(r => { i.addEventListener('load', r); i.addEventListener('error', r); }))).then(report);
  if (document.readyState === 'complete') settle(); else window.addEventListener('load', settle);
})
"""


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
    def __init__(self):
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
        self._id = 0
        self.call("Page.enable")
        self.call("Runtime.enable")

    def call(self, method, **params):
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def inspect(self, path):
        url = Path(os.path.abspath(path)).as_uri()
        self.call("Page.navigate", url=url)
        deadline = time.time() + 30
        while time.time() < deadline:  # the navigation commits asynchronously
            href = self.call("Runtime.evaluate", expression="location.href", returnByValue=True)["result"]["value"]
            if href == url:
                break
            time.sleep(0.05)
        result = self.call("Runtime.evaluate", expression=INSPECT, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return json.loads(result["result"]["value"])

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
