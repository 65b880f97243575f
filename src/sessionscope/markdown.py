"""Message markdown to HTML that can never run script, and never stalls the server.

markdown-it renders and nh3 sanitizes. markdown-it's time grows faster than the text for some
shapes (20 KB of "![" takes 2 s, 1 MB of it minutes), so the server renders only through
`render_many` / `add_html`, which never run on the event loop and are bounded in time:

- `await render_many(texts)`: one HTML string per text, in order (None stays None). Each text
  is rendered in a worker process (a process, not a thread: a render past its budget is killed,
  not left burning CPU and the GIL). Texts over MAX_RENDER_CHARS, and any not rendered within
  RENDER_BUDGET_S of the call, come back as `plain_html(text)`: the text escaped in a `<pre>`.
  What a worker rendered is kept by the text's hash (RENDERED_MEMORY_CHARS in all), so a page
  read again is not rendered again.
- `await add_html(items)`: the wire items of session.status (store.wire) get `content_html`
  (assistant messages; None for other roles) and compactions `summary_html`, through one
  render_many call. This is what the RPC result layer calls.
- `render_markdown(text)`: the unbounded renderer itself, for the workers and offline use.
- `plain_html(text)`: the fallback, also usable on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import html as html_lib
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import nh3
from markdown_it import MarkdownIt

_ALLOWED_TAGS = {
    "p", "br", "hr", "em", "strong", "del", "code", "pre", "blockquote", "ul", "ol", "li",
    "h1", "h2", "h3", "h4", "h5", "h6", "a", "table", "thead", "tbody", "tr", "th", "td",
}
_ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "code": {"class"}, "th": {"align"}, "td": {"align"}}

# Past this size a message is shown as plain text without trying (most shapes render 100 KB in
# well under a second, but none needs rendering to be read).
MAX_RENDER_CHARS = 100_000
# A whole render_many call: what is not rendered by then is shown as plain text.
RENDER_BUDGET_S = 1.0
# Worker processes (each its own interpreter, ~30 MB); concurrent reads beyond them queue.
WORKERS = 2
# Texts that overran the budget are remembered (by hash) and shown as plain text at once after:
# a hostile message read again and again costs one budget, not one each read.
OVERRAN_MEMORY = 4096
# Rendered HTML is kept (by the text's hash) up to this many characters in all: a page read again
# (the dashboard polling a session, an operator paging back) costs no worker round trip.
RENDERED_MEMORY_CHARS = 16_000_000
# A call whose texts hold at most this many characters in all first looks for them in the kept
# renders on the event loop (a hash each, bounded by this), not on a thread.
INLINE_LOOKUP_CHARS = 64_000
FLUSH_S = 0.02
FLUSH_BEFORE_CHARS = 2_000
# Worker CPU priority (nice increment); 0 keeps the server's own.
NICE = int(os.environ.get("SESSIONSCOPE_RENDER_NICE", "5"))
# Starting a worker (importing markdown-it) is not rendering: it does not count against a budget.
START_TIMEOUT_S = 30.0


@functools.cache
def _parser() -> MarkdownIt:
    # html=False: raw HTML in a message shows as text instead of reaching the sanitizer at all.
    return MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table").enable("strikethrough")


def render_markdown(text: str) -> str:
    """Unbounded in time: call render_many from the server."""
    html = _parser().render(text or "")
    return nh3.clean(
        html,
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )


def plain_html(text: str) -> str:
    """The fallback: the text exactly as written, escaped, whitespace kept."""
    return "<pre>" + html_lib.escape(text, quote=False) + "</pre>"


# ---- worker processes ----------------------------------------------------------------------------

def serve_worker(read_fd: int, write_fd: int) -> None:
    """A worker process's main: render each text of each request as it comes, answering one by
    one, so the parent keeps whatever finished before its deadline. At a lower CPU priority: the
    server's own process comes first on a busy machine."""
    with contextlib.suppress(OSError, AttributeError):
        os.nice(NICE)
    requests, answers = Connection(read_fd, writable=False), Connection(write_fd, readable=False)
    _parser()
    answers.send("ready")
    while True:
        try:
            texts = requests.recv()
        except (EOFError, OSError):
            return
        # Answers go back in runs (every FLUSH_S): one pipe trip per run, not per message.
        run: list[str] = []
        flushed = time.monotonic()
        for text in texts:
            if run and len(text) > FLUSH_BEFORE_CHARS:  # it may be slow: send what is done first
                answers.send(run)
                run, flushed = [], time.monotonic()
            run.append(render_markdown(text))
            if time.monotonic() - flushed >= FLUSH_S:
                answers.send(run)
                run, flushed = [], time.monotonic()
        if run:
            answers.send(run)


_WORKER_CODE = "import sys; from sessionscope.markdown import serve_worker; serve_worker(*map(int, sys.argv[1:]))"


class _Worker:
    """One worker: a fresh interpreter (not multiprocessing's spawn, which would re-run the
    server's own __main__), talking over two pipes."""

    def __init__(self) -> None:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        package_root = str(Path(__file__).resolve().parents[1])
        env = os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [package_root,
                                                                          os.environ.get("PYTHONPATH")]))}
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _WORKER_CODE, str(to_child_r), str(from_child_w)],
                pass_fds=(to_child_r, from_child_w), env=env, stdin=subprocess.DEVNULL, close_fds=True)
        finally:
            os.close(to_child_r)
            os.close(from_child_w)
        self.requests = Connection(to_child_w, readable=False)
        self.answers = Connection(from_child_r, writable=False)
        if not self.answers.poll(START_TIMEOUT_S) or self.answers.recv() != "ready":
            self.kill()
            raise RuntimeError("markdown worker did not start")

    def alive(self) -> bool:
        return self.process.poll() is None

    def render(self, texts: list[str], deadline: float) -> tuple[list[str], bool]:
        """The texts rendered before `deadline` (a prefix), and whether all were."""
        self.requests.send(texts)
        done: list[str] = []
        while len(done) < len(texts):
            left = deadline - time.monotonic()
            if left <= 0 or not self.answers.poll(left):
                return done, False
            done.extend(self.answers.recv())
        return done, True

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=5)
        self.requests.close()
        self.answers.close()


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class _Pool:
    """Idle workers; a worker that overran its budget is killed and replaced on next use."""

    def __init__(self, size: int) -> None:
        self.slots: queue.Queue[_Worker | None] = queue.Queue()
        for _ in range(size):
            self.slots.put(None)
        self.overran: dict[bytes, None] = {}  # insertion-ordered: the oldest is forgotten first
        self.rendered: dict[bytes, str] = {}  # the same order; see RENDERED_MEMORY_CHARS
        self.rendered_chars = 0
        self.lock = threading.Lock()

    def _remember(self, text: str) -> None:
        with self.lock:
            self.overran[_digest(text)] = None
            while len(self.overran) > OVERRAN_MEMORY:
                del self.overran[next(iter(self.overran))]

    def _keep(self, key: bytes, html: str) -> None:
        with self.lock:
            if key in self.rendered:
                return
            self.rendered[key] = html
            self.rendered_chars += len(html)
            while self.rendered_chars > RENDERED_MEMORY_CHARS:
                self.rendered_chars -= len(self.rendered.pop(next(iter(self.rendered))))

    def _known(self, texts: list[str], keys: list[bytes]) -> list[str | None]:
        with self.lock:
            return [plain_html(t) if k in self.overran else self.rendered.get(k)
                    for t, k in zip(texts, keys, strict=True)]

    def known(self, texts: list[str]) -> list[str] | None:
        """The HTML of every text when each was rendered (or overran) before, else None."""
        known = self._known(texts, [_digest(t) for t in texts])
        return None if None in known else known  # type: ignore[return-value]

    def render(self, texts: list[str], budget_s: float) -> list[str]:
        """HTML per text: kept renders first, known overrunners as plain text, the rest rendered
        (and kept when a worker rendered them, not when they fell back to plain text)."""
        keys = [_digest(t) for t in texts]
        known = self._known(texts, keys)
        todo = [i for i, html in enumerate(known) if html is None]
        if todo:
            rendered, whole = self._render([texts[i] for i in todo], budget_s)
            for n, (i, html) in enumerate(zip(todo, rendered, strict=True)):
                known[i] = html
                if n < whole:
                    self._keep(keys[i], html)
        return [html or "" for html in known]

    def _render(self, texts: list[str], budget_s: float) -> tuple[list[str], int]:
        """(HTML per text, how many of the first ones a worker rendered: the rest are plain text)."""
        deadline = time.monotonic() + budget_s
        worker = self.slots.get()  # waits for a free worker: that wait counts against the budget
        try:
            if worker is None or not worker.alive():
                worker = _Worker()
                deadline = max(deadline, time.monotonic() + budget_s / 2)
            left = deadline - time.monotonic()
            if left <= 0:
                return [plain_html(t) for t in texts], 0
            done, whole = worker.render(texts, deadline)
            if not whole:
                worker.kill()
                worker = None
                self._remember(texts[len(done)])
            return done + [plain_html(t) for t in texts[len(done):]], len(done)
        except (OSError, EOFError, RuntimeError):
            if worker is not None:
                worker.kill()
            worker = None
            return [plain_html(t) for t in texts], 0
        finally:
            self.slots.put(worker)


_pool_lock = threading.Lock()
_pool: _Pool | None = None


def _the_pool() -> _Pool:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = _Pool(WORKERS)
        return _pool


async def render_many(texts: Sequence[str | None], budget_s: float | None = None) -> list[str | None]:
    """HTML for each text, rendered off the event loop within `budget_s` (default
    RENDER_BUDGET_S; see the module notes)."""
    budget_s = RENDER_BUDGET_S if budget_s is None else budget_s
    present = [t for t in texts if t is not None]
    if not present:
        return list(texts)
    if sum(map(len, present)) <= INLINE_LOOKUP_CHARS:
        # A page read again (the dashboard polling a session) is all in the kept renders; for
        # short texts, hashing them here costs less than the trip to a thread.
        known = _the_pool().known(present)
        if known is not None:
            rendered = iter(known)
            return [None if t is None else next(rendered) for t in texts]
    # Escaping a megabyte is work that grows with the input too: it happens in the thread.
    return await asyncio.to_thread(_render_many, list(texts), budget_s)


def _render_many(texts: list[str | None], budget_s: float) -> list[str | None]:
    out: list[str | None] = [None if t is None else plain_html(t) if len(t) > MAX_RENDER_CHARS else ""
                             for t in texts]
    todo = [i for i, t in enumerate(texts) if t is not None and len(t) <= MAX_RENDER_CHARS]
    if todo:
        for i, value in zip(todo, _the_pool().render([texts[i] or "" for i in todo], budget_s), strict=True):
            out[i] = value
    return out


async def add_html(items: list[dict[str, Any]], budget_s: float | None = None) -> list[dict[str, Any]]:
    """Give session.status items their HTML: `content_html` on messages (assistant only, else
    None) and `summary_html` on compactions. Returns the same list."""
    sources: list[str | None] = []
    for item in items:
        if item.get("kind") == "message":
            sources.append(item.get("content") or "" if item.get("role") == "assistant" else None)
        elif item.get("kind") == "compaction":
            sources.append(item.get("summary") or "")
        else:
            sources.append(None)
    rendered = await render_many(sources, budget_s)
    for item, value in zip(items, rendered, strict=True):
        if item.get("kind") == "message":
            item["content_html"] = value
        elif item.get("kind") == "compaction":
            item["summary_html"] = value
    return items
