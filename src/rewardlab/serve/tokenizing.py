"""Tokenization off the event loop: one worker thread owns the tokenizer (a Hugging Face tokenizer is not safe to
call from several threads at once), so no request handler ever waits on a lock in the event loop's thread.

:meth:`TokenizerWorker.submit` queues a request's (prompt, response) items and returns a future of their encoded
features. The worker encodes ``chunk`` items at a time, round-robin over the waiting requests, with single-chunk
(small) requests first: a small request that arrives while a large one is being tokenized waits for at most about
one chunk, not for the whole large request, and the event loop stays free to read requests and write answers.
"""

from __future__ import annotations

import collections
import threading
from concurrent.futures import Future
from typing import Callable


class TokenizerStopped(Exception):
    """The worker is shutting down and takes no new work."""


class _Pending:
    def __init__(self, items: list, future: Future, chunk: int):
        self.items, self.future, self.out, self.next = items, future, [], 0
        self.chunk = chunk

    def step(self, encode: Callable) -> bool:
        """Encode the next chunk; True when the request is complete."""
        part = self.items[self.next : self.next + self.chunk]
        self.out += [encode(p, r) for p, r in part]
        self.next += len(part)
        return self.next >= len(self.items)


class TokenizerWorker:
    def __init__(self, encode: Callable, chunk: int = 8):
        self.encode, self.chunk = encode, chunk
        self._small: collections.deque[_Pending] = collections.deque()
        self._large: collections.deque[_Pending] = collections.deque()
        self._cv = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="rewardlab-tokenizer", daemon=True)

    def start(self) -> "TokenizerWorker":
        self._thread.start()
        return self

    def submit(self, items: list) -> Future:
        """Queue ``items`` ((prompt, response) pairs); the future resolves to their features, in order."""
        future: Future = Future()
        with self._cv:
            if self._stopping:
                raise TokenizerStopped("the server is shutting down")
            pending = _Pending(items, future, self.chunk)
            (self._small if len(items) <= self.chunk else self._large).append(pending)
            self._cv.notify()
        return future

    def stop(self, timeout: float | None = None) -> None:
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _take(self) -> tuple[_Pending | None, collections.deque | None]:
        with self._cv:
            while not self._small and not self._large and not self._stopping:
                self._cv.wait()
            queue = self._small if self._small else (self._large if self._large else None)
            return (queue.popleft(), queue) if queue is not None else (None, None)

    def _run(self) -> None:
        while True:
            pending, queue = self._take()
            if pending is None:
                return
            try:
                done = pending.step(self.encode)
            except BaseException as e:  # this request's error; the worker keeps serving
                pending.future.set_exception(e)
                continue
            if done:
                pending.future.set_result(pending.out)
            else:
                with self._cv:
                    queue.append(pending)  # round-robin: the next large request's chunk comes first
