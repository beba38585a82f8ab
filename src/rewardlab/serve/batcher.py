"""The batching worker: concurrent requests in, one forward, each request's own rewards out.

Request handlers tokenize their texts (under a lock: a Hugging Face tokenizer is not safe to call from
several threads at once) and :meth:`Batcher.submit` the encoded features. One worker thread owns the model:
it takes the oldest queued job, waits up to ``max_wait_ms`` (counted from when that job was queued) for more
jobs while the gathered texts stay within ``max_batch_texts`` and ``max_batch_tokens``, then scores all of
them together (length-sorted, cut into sub-batches whose padded size fits the token budget) and answers
every job with its own slice. Jobs that queue up while a forward runs are taken at once by the next one, so
under load batches fill without waiting. With ``batching=False`` each job gets its own forward (the baseline).

A request larger than the budget is split into pieces of at most one forward's tokens and ``max_batch_texts``
texts, and the worker takes pieces round-robin over the waiting requests; a request of one piece (a small one)
goes before the pieces of large ones. With ``max_forward_ms`` a forward's tokens are also capped by the measured
seconds per token, so a small request that arrives while large ones stream waits for about one short forward,
not for a whole large request (perf/loadtest.py --scenario mixed). ``stop()`` lets the worker finish every queued job before it exits. With ``packing=True`` the
gathered (prompt, response) pairs go through :func:`rewardlab.models.packing.score_packed` (padding-free rows; a
prompt shared by several responses computed once) instead of padded sub-batches.
"""

from __future__ import annotations

import collections
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

import torch

from rewardlab.core.finite import check_rewards
from rewardlab.models.packing import score_packed

FORWARD_SAMPLE_TOKENS = 256  # forwards at least this large measure the seconds per token (smaller: overhead)


class QueueFull(Exception):
    """The queue already holds ``max_queue_texts`` texts: the caller answers 503."""


class Stopped(Exception):
    """The batcher is shutting down and takes no new work."""


class _Request:
    """One submitted request, answered when all its pieces are scored (only the worker thread writes here)."""

    def __init__(self, future: Future, n_pieces: int):
        self.future, self.results, self.left = future, [None] * n_pieces, n_pieces

    def done(self, index: int, rewards: list[float]) -> None:
        self.results[index] = rewards
        self.left -= 1
        if self.left == 0 and not self.future.done():
            self.future.set_result([r for part in self.results for r in part])

    def fail(self, error: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(error)


@dataclass
class _Job:
    """One piece of a request: at most one forward's budget of its texts."""

    feats: list[dict]
    request: _Request
    index: int
    enqueued: float
    items: list | None = None  # the (prompt, response) pairs, for the packed path
    n_tokens: int = field(init=False)

    def __post_init__(self):
        self.n_tokens = sum(len(f["input_ids"]) for f in self.feats)

    @property
    def future(self) -> Future:
        return self.request.future


@dataclass
class BatchStats:
    """What one forward did; handed to the ``on_batch`` callback (metrics)."""

    n_jobs: int
    n_texts: int
    n_tokens: int  # real tokens
    n_padded: int  # tokens including padding, summed over sub-batches
    n_forwards: int
    queue_wait_s: list[float]
    forward_s: float


class Batcher:
    def __init__(
        self,
        rm,
        *,
        batching: bool = True,
        max_batch_tokens: int = 16384,
        max_batch_texts: int = 256,
        max_wait_ms: float = 5.0,
        max_queue_texts: int = 8192,
        on_batch=None,
        packing: bool = False,
        token_budget: int | None = None,
        max_forward_ms: float = 0.0,
    ):
        self.rm = rm
        # 0: no cap; else a forward takes at most about this long (its tokens capped by the measured seconds per
        # token), so a small request waits at most about one such forward while large ones stream
        self.max_forward_s = max_forward_ms / 1000.0
        self._s_per_token: float | None = None  # measured on forwards of at least FORWARD_SAMPLE_TOKENS tokens
        # single-piece (small) requests are served before the pieces of large ones
        self._small: collections.deque[collections.deque[_Job]] = collections.deque()
        self.packing, self.token_budget = packing, token_budget
        self.batching = batching
        self.max_batch_tokens, self.max_batch_texts = max_batch_tokens, max_batch_texts
        self.max_wait = max_wait_ms / 1000.0
        self.max_queue_texts = max_queue_texts
        self.on_batch = on_batch
        # one deque of pieces per waiting request, served round-robin
        self._queue: collections.deque[collections.deque[_Job]] = collections.deque()
        self._queued_texts = 0
        self._cv = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="rewardlab-batcher", daemon=True)
        self.device = next(rm.model.parameters()).device

    # ---- public ---------------------------------------------------------------------------------
    def start(self) -> "Batcher":
        self.rm.eval()
        self._thread.start()
        return self

    def submit(self, feats: list[dict], items: list | None = None) -> Future:
        """Queue encoded texts (and, for the packed path, their (prompt, response) pairs); the future resolves
        to their rewards (raw, in order)."""
        fut: Future = Future()
        if not feats:
            fut.set_result([])
            return fut
        with self._cv:
            if self._stopping:
                raise Stopped("the server is shutting down")
            if self._queued_texts + len(feats) > self.max_queue_texts and (self._queue or self._small):
                raise QueueFull(
                    f"{self._queued_texts} texts are already waiting (max_queue_texts "
                    f"{self.max_queue_texts}); retry later"
                )
            now = time.perf_counter()
            cuts = self._pieces(feats)
            request = _Request(fut, len(cuts))
            pieces = collections.deque(
                _Job(feats[a:b], request, i, now, items[a:b] if items is not None else None)
                for i, (a, b) in enumerate(cuts)
            )
            (self._small if len(cuts) == 1 else self._queue).append(pieces)
            self._queued_texts += len(feats)
            self._cv.notify()
        return fut

    def _pieces(self, feats: list[dict]) -> list[tuple[int, int]]:
        """``[(start, end), ...]``: consecutive runs of ``feats`` within one forward's budget (a text longer than
        the budget is a piece alone)."""
        cuts, start, tokens = [], 0, 0
        budget = self.forward_tokens()
        for i, f in enumerate(feats):
            n = len(f["input_ids"])
            if i > start and (tokens + n > budget or i - start >= self.max_batch_texts):
                cuts.append((start, i))
                start, tokens = i, 0
            tokens += n
        return cuts + [(start, len(feats))]

    def forward_tokens(self) -> int:
        """The most tokens one forward takes: ``max_batch_tokens``, or fewer where ``max_forward_ms`` and the
        measured seconds per token say a forward of that many would take longer."""
        if not self.max_forward_s or not self._s_per_token:
            return self.max_batch_tokens
        return max(1, min(self.max_batch_tokens, int(self.max_forward_s / self._s_per_token)))

    def _next_queue(self) -> collections.deque | None:
        return self._small if self._small else (self._queue if self._queue else None)

    def _peek(self) -> _Job | None:
        queue = self._next_queue()
        return queue[0][0] if queue is not None else None

    def _pop_piece(self) -> _Job:
        """The next piece: the oldest small (single-piece) request first, else the next piece of the first waiting
        large request, which then goes to the back if it has more (round-robin)."""
        queue = self._next_queue()
        pieces = queue.popleft()
        job = pieces.popleft()
        if pieces:
            queue.append(pieces)
        return job

    def queued_texts(self) -> int:
        return self._queued_texts

    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float | None = None) -> None:
        """Take no new work, finish what is queued, then end the worker."""
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    # ---- worker ---------------------------------------------------------------------------------
    def _take(self) -> list[_Job] | None:
        with self._cv:
            while self._peek() is None and not self._stopping:
                self._cv.wait()
            if self._peek() is None:
                return None  # stopping and drained
            jobs = [self._pop_piece()]
            if self.batching:
                texts, tokens = len(jobs[0].feats), jobs[0].n_tokens
                budget = self.forward_tokens()
                deadline = jobs[0].enqueued + self.max_wait
                while True:
                    while (nxt := self._peek()) is not None:
                        if texts + len(nxt.feats) > self.max_batch_texts or tokens + nxt.n_tokens > budget:
                            break
                        jobs.append(self._pop_piece())
                        texts, tokens = texts + len(nxt.feats), tokens + nxt.n_tokens
                    full = self._peek() is not None or texts >= self.max_batch_texts or tokens >= budget
                    left = deadline - time.perf_counter()
                    if full or left <= 0 or self._stopping:
                        break
                    self._cv.wait(left)
            self._queued_texts -= sum(len(j.feats) for j in jobs)
            return jobs

    def _run(self) -> None:
        while True:
            jobs = self._take()
            if jobs is None:
                return
            jobs = [j for j in jobs if not j.future.done()]  # a request whose other piece already failed
            if not jobs:
                continue
            try:
                self._score(jobs)
            except BaseException as e:  # answer every waiting request; keep serving
                for j in jobs:
                    j.request.fail(e)

    def _sub_batches(self, order: list[int], lengths: list[int]) -> list[list[int]]:
        """Cut length-sorted indices so each sub-batch's padded size fits the token budget."""
        out, cur = [], []
        for i in order:
            width = max(lengths[i], max((lengths[j] for j in cur), default=0))
            if cur and ((len(cur) + 1) * width > self.max_batch_tokens or len(cur) + 1 > self.max_batch_texts):
                out.append(cur)
                cur = []
            cur.append(i)
        if cur:
            out.append(cur)
        return out

    @torch.inference_mode()
    def _score(self, jobs: list[_Job]) -> None:
        t0 = time.perf_counter()
        feats = [f for j in jobs for f in j.feats]
        lengths = [len(f["input_ids"]) for f in feats]
        order = sorted(range(len(feats)), key=lambda i: lengths[i])
        rewards = [0.0] * len(feats)
        padded = 0
        subs = self._sub_batches(order, lengths)
        if self.packing and all(j.items is not None for j in jobs):
            # rewardlab.models.packing: padding-free rows, a prompt shared by several responses computed once
            rewards = score_packed(self.rm, [it for j in jobs for it in j.items], self.token_budget)
            subs = []
            padded = sum(lengths)
        for idx in subs:
            batch = {k: v.to(self.device) for k, v in self.rm.collate([feats[i] for i in idx]).items()}
            padded += batch["input_ids"].numel()
            for i, r in zip(idx, self.rm(**batch).tolist()):
                rewards[i] = r
        check_rewards(rewards, "scoring")  # an error for these requests, never a null reward
        t1 = time.perf_counter()
        if padded >= FORWARD_SAMPLE_TOKENS:  # seconds per token, smoothed: the forward cap follows the machine
            rate = (t1 - t0) / padded
            self._s_per_token = rate if self._s_per_token is None else 0.7 * self._s_per_token + 0.3 * rate
        pos = 0
        for j in jobs:
            j.request.done(j.index, rewards[pos : pos + len(j.feats)])
            pos += len(j.feats)
        if self.on_batch is not None:
            self.on_batch(
                BatchStats(
                    n_jobs=len(jobs),
                    n_texts=len(feats),
                    n_tokens=sum(lengths),
                    n_padded=padded,
                    n_forwards=len(subs),
                    queue_wait_s=[t0 - j.enqueued for j in jobs],
                    forward_s=t1 - t0,
                )
            )
