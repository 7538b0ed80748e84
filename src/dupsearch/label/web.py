"""The labelling session on a local page (`dupsearch label --web`): 127.0.0.1 only, the two
listings side by side with their photos, the same keys as the terminal (or buttons).

A small standard-library HTTP server: the page, a JSON question, a JSON key press, and the
photos of the two listings on show (only paths those listings name are ever served). Requests
are handled one at a time against the session, which saves after every answer; `q` (or the
quit button) ends the server and the command.
"""

from __future__ import annotations

import json
import mimetypes
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qs, urlparse

from dupsearch.cluster.page import JS_HELPERS
from dupsearch.label.session import KEYS, Session

MAX_BODY = 1024


def _photo_urls(q: dict) -> dict:
    for side in ("a", "b"):
        v = q[side]
        v["photos"] = [f"/photo?side={side}&n={k}" for k, p in enumerate(v["images"]) if "://" not in p]
    return q


def make_server(session: Session, port: int = 0, say: Callable[[str], None] = print) -> ThreadingHTTPServer:
    lock = threading.Lock()
    state = {"line": None, "question": None}

    def question() -> dict:
        q = session.question()
        state["question"] = q
        if q is None:
            return {"done": True, "line": state["line"], **session.counts()}
        return {"done": False, "line": state["line"], **_photo_urls(q)}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt, *args):  # the terminal shows answers, not request lines
            pass

        def _send(self, code: int, body: bytes, ctype: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def _json(self, obj, code: int = 200) -> None:
            self._send(code, json.dumps(obj, ensure_ascii=False, allow_nan=False).encode(), "application/json")

        def do_GET(self):  # noqa: N802 (http.server's name)
            url = urlparse(self.path)
            if url.path == "/":
                self._send(200, _PAGE.replace("__HELPERS__", JS_HELPERS).encode(), "text/html; charset=utf-8")
            elif url.path == "/api/question":
                with lock:
                    self._json(question())
            elif url.path == "/photo":
                self._photo(parse_qs(url.query))
            else:
                self._json({"error": "not found"}, 404)

        def _photo(self, qs) -> None:
            with lock:
                q = state["question"]
            side, n = (qs.get("side") or [""])[0], (qs.get("n") or [""])[0]
            if q is None or side not in ("a", "b") or not n.isdigit() or int(n) >= len(q[side]["images"]):
                return self._json({"error": "no such photo"}, 404)
            path = Path(q[side]["images"][int(n)])  # a path the listing on show names, nothing else
            if not path.is_file():
                return self._json({"error": "photo file missing"}, 404)
            self._send(200, path.read_bytes(), mimetypes.guess_type(path.name)[0] or "application/octet-stream")

        def do_POST(self):  # noqa: N802
            if urlparse(self.path).path != "/api/key":
                return self._json({"error": "not found"}, 404)
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                return self._json({"error": "body too large"}, 413)
            try:
                key = str(json.loads(self.rfile.read(length) or b"{}")["key"])
            except (ValueError, KeyError, TypeError):
                return self._json({"error": "send {\"key\": one of " + ", ".join(KEYS) + "}"}, 422)
            with lock:
                state["line"] = session.press(key)
                if state["line"]:
                    say(state["line"])
                if session.finished:
                    self._json({"done": True, "line": "saved; you can close this page", **session.counts()})
                    threading.Thread(target=server.shutdown, daemon=True).start()
                    return
                self._json(question())

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    return server


def serve_session(session: Session, port: int = 0, say: Callable[[str], None] = print) -> dict:
    """Serve the session until quit; returns the counts."""
    server = make_server(session, port, say)
    say(f"labelling page: http://127.0.0.1:{server.server_address[1]}/  (q or the quit button ends it)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return session.counts()


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>dupsearch: label pairs</title><link rel="icon" href="data:,">
<style>
body{font-family:system-ui,sans-serif;margin:0;background:#f4f5f7;color:#222}
header{background:#fff;padding:0.7em 1.2em;border-bottom:1px solid #ddd}
main{display:flex;gap:1em;padding:1em 1.2em}
.listing{flex:1;background:#fff;border:1px solid #ddd;border-radius:6px;padding:0.8em}
.listing h2{font-size:1.1em;margin:0 0 0.3em}.price{font-weight:bold;color:#0a7a32}.meta{color:#666;font-size:0.9em}
.listing img{max-width:14em;max-height:14em;margin:3px;border-radius:4px}
dl{display:grid;grid-template-columns:auto 1fr;gap:0 0.6em}dt{color:#666}dd{margin:0}
.desc{white-space:pre-wrap}
footer{padding:0 1.2em 1em}button{font-size:1em;padding:0.4em 1em;margin-right:0.4em;cursor:pointer}
#line{color:#2860c8;margin-top:0.5em}
</style></head><body>
<header><strong>Same item?</strong> <span id="score" class="meta"></span><div id="counts" class="meta"></div></header>
<main><section class="listing" id="a"></section><section class="listing" id="b"></section></main>
<footer>
<button data-key="y">y: duplicates</button><button data-key="n">n: not</button>
<button data-key="u">u: unsure</button><button data-key="b">b: back</button><button data-key="q">q: quit</button>
<div id="line"></div></footer>
<script>
"use strict";
__HELPERS__
function fill(box, v) {
  box.replaceChildren(el("h2", {}, v.title || "(no title)"));
  if (v.price !== null) box.append(el("div", {class: "price"}, v.price.toLocaleString()));
  box.append(el("div", {class: "meta"}, "id " + v.item_id + " · " + v.city + " · seller " + v.seller));
  box.append(el("div", {class: "meta"}, v.category));
  const ph = el("div", {});
  for (const p of v.photos) ph.append(el("img", {src: p, alt: "photo"}));
  box.append(ph);
  const dl = el("dl", {});
  for (const [k, x] of v.attributes) { dl.append(el("dt", {}, k)); dl.append(el("dd", {}, x)); }
  box.append(dl, el("div", {class: "desc"}, v.description));
}
function show(q) {
  $("line").textContent = q.line || "";
  $("counts").textContent = "answered " + q.answers + " (y " + q.y + ", n " + q.n + ", u " + q.u + ")" +
    (q.model ? " · " + q.model : "") + (q.next_retrain ? " · retraining in " + q.next_retrain : "");
  if (q.done) {
    $("a").replaceChildren("done"); $("b").replaceChildren("");
    $("score").textContent = "";
    for (const b of document.querySelectorAll("button")) b.disabled = true;
    return;
  }
  $("score").textContent = "model score " + q.score.toFixed(3) + " (threshold " + q.threshold.toFixed(3) + ")";
  fill($("a"), q.a); fill($("b"), q.b);
}
async function press(key) {
  const r = await fetch("/api/key", {method: "POST", headers: {"Content-Type": "application/json"},
                                      body: JSON.stringify({key})});
  show(await r.json());
}
for (const b of document.querySelectorAll("button")) b.onclick = () => press(b.dataset.key);
document.addEventListener("keydown", (e) => { if ("ynubq".includes(e.key) && e.key.length === 1) press(e.key); });
fetch("/api/question").then((r) => r.json()).then(show);
</script></body></html>
"""
