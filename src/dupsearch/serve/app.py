"""The HTTP service over a catalogue index: ``create_app(index_or_path, ...)`` -> FastAPI app.

Endpoints (JSON in and out; see /docs for the schemas):

    POST   /v1/match                      one listing, or {"listings": [...]}: their matches
    PUT    /v1/listings/{item_id}         add or replace a listing; answers with its matches
    POST   /v1/listings                   {"listings": [...]}: add or replace many in one commit (all
                                          or none); answers with each one's matches (top=0: none)
    DELETE /v1/listings/{item_id}         remove a listing (404 when absent)
    GET    /v1/listings/{item_id}/duplicates   matches of a listing in the index (404 when absent)
    GET    /healthz                       liveness: 200 with the listing count and whether the index
                                          is warm yet (no token needed)
    GET    /metrics                       Prometheus text format (read token)
    GET    /docs, /openapi.json           the API's documentation (no token needed)

The service is a thin layer: every answer comes from ``Index.match``/``upsert``/``remove``/
``duplicates``. What it adds:

* auth (``auth.py``): a bearer token with scope read or write (write may also read); checked
  before the body is read. 401 (with ``WWW-Authenticate: Bearer``) for a missing or unknown
  token, 403 for a read token on a write endpoint.
* limits: a body over ``max_body_bytes`` is refused with 413 before it is parsed (on its
  Content-Length, and while it streams in when it has none); a batch of more than ``max_batch``
  listings is 413 too. Schema errors are 422 with ``detail[].loc`` naming the field; a
  ``DataError`` from the index is a 422 in the same shape.
* a timeout per request: index work runs in threads and the request waits ``timeout_s`` for it
  (``asyncio.wait_for``); past that it answers 504 (or 503 for a write that had not started and
  was withdrawn, so never applied) with a JSON message.
* one writer with group commit: PUTs, bulk POSTs and DELETEs are queued; a single writer task takes
  whatever is queued (up to ``max_group`` listings of one kind; a bulk POST larger than that goes
  alone, whole), commits them with one ``Index.upsert`` or
  ``Index.remove`` call, and then answers each request with its own rows. A write is answered
  200 only after the index call returned (the index is durable by then). Under load the queue
  fills while a commit runs, so each fsync and manifest switch is shared by many requests.
  Reads run in a thread pool, concurrently with each other but not with a commit on the same
  index handle (a read-write lock: the handle's tables change in place when it commits).
* graceful shutdown: uvicorn stops accepting on SIGTERM and lets requests in flight finish; the
  app's shutdown then drains the write queue, waits on the index-write lock, and closes the index.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Callable, Iterable, Literal, Optional, Union

import pandas as pd
from fastapi import Body, Depends, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.security import HTTPBearer
from pydantic import AfterValidator, BaseModel, ConfigDict, Discriminator, Field, Tag
from starlette.routing import Match as RouteMatch

import dupsearch
from dupsearch.errors import DataError, DupsearchError
from dupsearch.serve import DEFAULT_MAX_BATCH, DEFAULT_MAX_BODY_BYTES, DEFAULT_TIMEOUT_S
from dupsearch.serve.auth import TokenStore
from dupsearch.serve.metrics import CONTENT_TYPE, ServiceMetrics, merge_expositions

log = logging.getLogger("dupsearch.serve")

DEFAULT_MAX_GROUP = 256
GATHER_MAX_S = 0.06  # the longest a group (of matches, of writes) waits for the last group's clients (_gather),
GATHER_SHARE = 0.25  # and at most this share of the last group's time
DEFAULT_READ_THREADS = 4
METRICS_SNAPSHOT_S = 1.0  # with worker processes: how often each writes its metrics for the others' scrapes
MAX_TOP = 100
MAX_ID_CHARS = 256


class ServeError(DupsearchError):
    """A service that cannot start as configured."""


# --------------------------------------------------------------------------- request/response schemas


def _item_id(value: str) -> str:
    value = value.strip()  # the index stores ids stripped
    if not value:
        raise ValueError("item_id is empty")
    return value


# (pydantic itself refuses text that is not valid Unicode, e.g. a lone surrogate "\ud800")
ItemId = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS), AfterValidator(_item_id)]


class Listing(BaseModel):
    """One listing. Only item_id is required; text fields default to empty, price to unknown."""
    model_config = ConfigDict(extra="forbid")

    item_id: ItemId
    title: str = ""
    description: str = ""
    category_l1: str = ""
    category_l2: str = ""
    category_l3: str = ""
    category_l4: str = ""
    attributes: Union[dict[str, str], str] = Field(
        default_factory=dict, description="name -> value, or the same as a JSON object in a string")
    price: Optional[float] = Field(None, allow_inf_nan=False, description="null when unknown")
    images: list[str] = Field(default_factory=list,
                               description="paths of the listing's photos, as the server sees them")
    seller_id: str = ""
    city: str = ""


class ListingUpsert(Listing):
    """A listing to add or replace; its item_id, when given, must be the one in the path."""
    item_id: Optional[ItemId] = None  # type: ignore[assignment]


class MatchBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    listings: list[Listing] = Field(description="the listings to match (at most the server's batch limit)")


class ListingBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    listings: list[Listing] = Field(description="the listings to add or replace, each item_id once (at most the "
                                                "server's batch limit)")


def _match_body_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        return "batch" if "listings" in value else "listing"
    if isinstance(value, MatchBatch):
        return "batch"
    if isinstance(value, Listing):
        return "listing"
    return None


MatchRequest = Annotated[
    Union[Annotated[Listing, Tag("listing")], Annotated[MatchBatch, Tag("batch")]],
    Discriminator(_match_body_kind, custom_error_type="body_shape",
                  custom_error_message='expected a JSON object: one listing, or {"listings": [...]} '
                                       "(sent with Content-Type: application/json)"),
]


TopParam = Annotated[int, Query(ge=1, le=MAX_TOP, description="matches per listing, at most")]
BulkTopParam = Annotated[int, Query(ge=0, le=MAX_TOP, description="matches per listing, at most; 0: none "
                                                                   "(the listings are not matched: faster)")]
IdParam = Annotated[str, PathParam(min_length=1, max_length=MAX_ID_CHARS)]


class MatchOut(BaseModel):
    match_id: str
    probability: float
    blockers: list[str] = Field(description="the blockers that proposed the pair")
    rank: int = Field(description="1 = the most probable duplicate")


class ListingMatches(BaseModel):
    item_id: str
    matches: list[MatchOut]


class MatchResponse(BaseModel):
    results: list[ListingMatches]


class RemoveResponse(BaseModel):
    item_id: str
    removed: bool


class Health(BaseModel):
    status: Literal["ok"]
    listings: int
    warm: bool = Field(description="the start-up warm-up of the index's memory-mapped files has finished "
                                   "(until then the first matches read from disk and are slower)")


class ErrorMessage(BaseModel):
    detail: str


def _errors(*codes: int) -> dict:
    return {code: {"model": ErrorMessage} for code in codes}


# --------------------------------------------------------------------------- index results -> JSON


def _blocker_names(value: Any) -> list[str]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    if isinstance(value, str):  # the index joins them: "seller_id+category_l2|ann_text"
        return [name for name in value.split("|") if name]
    return [str(name) for name in value]


def _finite(value: Any) -> float:
    number = float(value)
    if not math.isfinite(number):  # strict JSON has no NaN: an index that gives one is a bug
        raise DupsearchError(f"the index returned a probability of {number}")
    return number


def _matches_by_query(frame: pd.DataFrame, max_rank: dict[str, int] | None = None) -> dict[str, list[dict]]:
    """MATCH_COLUMNS rows -> {query item_id: [match dicts by rank]} (ranks above max_rank[id] dropped)."""
    out: dict[str, list[dict]] = collections.defaultdict(list)
    if frame is None or len(frame) == 0:
        return out
    columns = [frame[c].tolist() for c in ("item_id", "rank", "match_id", "probability", "blockers")]
    for item_id, rank, match_id, probability, blockers in zip(*columns):
        item_id, rank = str(item_id), int(rank)
        if max_rank is not None and rank > max_rank.get(item_id, MAX_TOP):
            continue
        out[item_id].append({"match_id": str(match_id), "probability": _finite(probability),
                             "blockers": _blocker_names(blockers), "rank": rank})
    for rows in out.values():
        rows.sort(key=lambda row: row["rank"])
    return out


def _listings_frame(listings: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(listings, columns=list(Listing.model_fields))


# --------------------------------------------------------------------------- errors as responses


class HTTPProblem(Exception):
    """An answer other than 200, with a JSON ``{"detail": message}`` body."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


def _problem(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status, headers=headers)


def _data_error_response(error: DataError, loc_prefix: tuple) -> JSONResponse:
    """A DataError from the index in FastAPI's validation-error shape, ``loc`` naming the field."""
    loc = list(loc_prefix)
    if error.row is not None and loc_prefix[-1:] == ("listings",):
        loc.append(error.row - 1)  # DataError rows are 1-based rows of the batch
    if error.column is not None:
        loc.append(error.column)
    message = str(error)
    return JSONResponse({"detail": [{"loc": loc, "msg": message, "type": "data_error"}]}, status_code=422)


# --------------------------------------------------------------------------- the writer


async def _gather(pending: collections.deque, expect: int, wait_s: float, closing: Callable[[], bool]) -> None:
    """Wait until ``expect`` items are queued in ``pending``, at most ``wait_s`` (the match
    batcher's and the writer's groups). Right after a group is answered, its clients' next
    requests are still on their way: a group taken at once holds only what queued meanwhile, and
    each group pays a whole call's fixed cost. So wait for as many as were in flight at the last
    group's end (its size and the queue then), at most a share of that group's time; a lone
    client never waits (its next request finds the queue as expected)."""
    deadline = time.perf_counter() + wait_s
    while len(pending) < expect and time.perf_counter() < deadline and not closing():
        await asyncio.sleep(0.001)


class MatchBatcher:
    """Single-listing matches that arrive together are answered by one ``Index.match`` call.

    Per listing, matching is independent of the other listings in the call (its candidates, its
    store rows, its scores), so batching changes no answer; it shares the fixed cost of a call
    (building stores, one booster call) among the requests: with 20 clients on 2 cores, a call
    of 20 listings costs about twice one of a single listing. While a call runs, new requests
    queue and go in the next one (at most ``max_listings``), after waiting briefly for the
    requests of the last batch's clients (``_gather``; 20 clients over HTTP, a million listings,
    two workers on 2 cores: 182 -> 276 matches/s, and 604 -> 892 listings/s in two concurrent
    batches). A batch that fails on one listing's data is retried one listing at a time, so each
    request gets its own answer or error.
    """

    def __init__(self, index, run_read: Callable[[Callable[[], Any]], Any], max_listings: int = 64,
                 metrics: ServiceMetrics | None = None):
        self.index, self.run_read, self.max_listings, self.metrics = index, run_read, max_listings, metrics
        self._pending: collections.deque = collections.deque()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._expect, self._last_call_s = 0, 0.0  # see _gather

    def start(self) -> None:
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="dupsearch-match-batcher")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        while self._pending:
            _, _, future = self._pending.popleft()
            if not future.done():
                future.set_exception(ShuttingDown())

    def submit(self, record: dict, top: int) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        self._pending.append((record, top, future))
        self._wake.set()
        return future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                await _gather(self._pending, min(self._expect, self.max_listings),
                              min(GATHER_MAX_S, GATHER_SHARE * self._last_call_s), lambda: False)
                group = []
                while self._pending and len(group) < self.max_listings:
                    item = self._pending.popleft()
                    if not item[2].done():  # a request that timed out while queued is skipped
                        group.append(item)
                if group:
                    started = time.perf_counter()
                    await self._answer(group)
                    self._last_call_s = time.perf_counter() - started
                    self._expect = len(group) + len(self._pending)

    async def _answer(self, group: list) -> None:
        # positional ids: two requests may name the same item_id
        records = [{**record, "item_id": f"q{i}"} for i, (record, _, _) in enumerate(group)]
        if self.metrics is not None:
            self.metrics.match_batch_size.observe(len(group))
        top = max(t for _, t, _ in group)
        try:
            found = await self.run_read(lambda: self.index.match(_listings_frame(records), top=top))
        except DataError as exc:
            if len(group) == 1:
                outcome: list = [exc]
            else:
                for item in group:
                    await self._answer([item])
                return
        except BaseException as exc:  # noqa: BLE001 - every waiting request gets the error
            outcome = [exc] * len(group)
        else:
            rows = _matches_by_query(found, {f"q{i}": t for i, (_, t, _) in enumerate(group)})
            outcome = [rows.get(f"q{i}", []) for i in range(len(group))]
        for (_, _, future), result in zip(group, outcome):
            if future.done():
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)


class ReadWriteLock:
    """Many readers or one writer; a waiting writer holds back new readers (no starvation).

    An ``Index`` handle updates its row tables, segment list and (after a merge) its row numbers
    in place when it commits, so a read on the same handle must not overlap a write: reads hold
    the lock shared, the writer's commits hold it exclusively.
    """

    def __init__(self):
        self._cond = threading.Condition()
        self._readers = 0
        self._writing = False
        self._writers_waiting = 0

    @contextlib.contextmanager
    def reading(self):
        with self._cond:
            while self._writing or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextlib.contextmanager
    def writing(self):
        with self._cond:
            self._writers_waiting += 1
            try:
                while self._writing or self._readers:
                    self._cond.wait()
            finally:
                self._writers_waiting -= 1
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()


class ShuttingDown(Exception):
    """The writer takes no new writes: the server is stopping."""


@dataclass(eq=False)
class _Write:
    kind: str  # "upsert" or "remove"
    item_ids: tuple[str, ...]
    listings: list[dict] | None  # an upsert's records, one per item_id
    top: int  # 0: answer without matches
    future: asyncio.Future
    many: bool = False  # a bulk upsert: its outcome is a list per listing
    taken: bool = False  # the writer has it: it can no longer be withdrawn


class GroupCommitWriter:
    """The process's only index writer: queued writes are committed in groups, in order.

    A group is a run of queued writes of one kind (upsert or remove), at most ``max_group``
    listings (a bulk write larger than that goes alone, whole), with no item_id twice (a second
    write of an id waits for the next group, so the later one wins), and upserts answered without
    matches (``top=0``) apart from those answered with them. Each group is one ``Index.upsert`` /
    ``Index.remove`` call in the writer's thread, holding ``lock`` exclusively. When idle for
    ``refresh_s`` the writer picks up generations that another process committed
    (``Index.refresh``), so reads do not stay stale.
    """

    def __init__(self, index, metrics: ServiceMetrics, lock: ReadWriteLock, max_group: int = DEFAULT_MAX_GROUP,
                 refresh_s: float = 2.0, gather_s: float = GATHER_MAX_S, gather_share: float = GATHER_SHARE):
        self.index, self.metrics, self.lock, self.max_group = index, metrics, lock, max_group
        self.refresh_s, self.gather_s, self.gather_share = refresh_s, gather_s, gather_share
        self._pending: collections.deque[_Write] = collections.deque()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dupsearch-writer")
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._closing = False
        self._expect, self._last_commit_s = 0, 0.0  # see _gather

    def __len__(self) -> int:
        """Listings queued (a bulk write counts each of its listings)."""
        return sum(len(write.item_ids) for write in self._pending)

    def start(self) -> None:
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="dupsearch-writer")

    def submit(self, kind: str, item_id: str, listing: dict | None = None, top: int = 10) -> _Write:
        return self._queue(_Write(kind, (item_id,), None if listing is None else [listing], top,
                                  asyncio.get_running_loop().create_future()))

    def submit_many(self, listings: list[dict], top: int = 10) -> _Write:
        """A bulk upsert (item_ids distinct): committed in one group, all or none; its outcome is
        each listing's matches, in order."""
        return self._queue(_Write("upsert", tuple(r["item_id"] for r in listings), listings, top,
                                  asyncio.get_running_loop().create_future(), many=True))

    def _queue(self, write: _Write) -> _Write:
        if self._closing or self._task is None:
            raise ShuttingDown()
        self._pending.append(write)
        self._wake.set()
        return write

    def withdraw(self, write: _Write) -> bool:
        """Take a write out of the queue if the writer has not started it (True: never applied)."""
        if write.taken:
            return False
        try:
            self._pending.remove(write)
        except ValueError:
            return False
        return True

    async def close(self) -> None:
        """Commit what is queued, then stop; afterwards no index write is running."""
        self._closing = True
        if self._task is not None:
            self._wake.set()
            await self._task
        self._thread.shutdown(wait=True)
        with self.lock.writing():  # a commit still running in a thread finishes before the index closes
            pass

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self.refresh_s)
            except asyncio.TimeoutError:
                await loop.run_in_executor(self._thread, self._refresh)
                continue
            self._wake.clear()
            while self._pending:
                await self._gather()
                group = self._take_group()
                started = time.perf_counter()
                try:
                    outcomes = await loop.run_in_executor(self._thread, self._commit, group)
                except Exception as exc:  # noqa: BLE001 - every waiting request gets the error
                    outcomes = [exc] * len(group)
                self._last_commit_s = time.perf_counter() - started
                self.metrics.commit_seconds.observe(self._last_commit_s, group[0].kind)
                for write, outcome in zip(group, outcomes):
                    if write.future.done():
                        continue
                    if isinstance(outcome, BaseException):
                        write.future.set_exception(outcome)
                    else:
                        write.future.set_result(outcome)
                self._expect = len(group) + len(self._pending)
            if self._closing and not self._pending:
                return

    async def _gather(self) -> None:
        """``_gather`` for commits: without it 20 writers on a million-listing index settled
        into groups of 1 and 19, or twice 10 (51-56 upserts/s; with it 78)."""
        await _gather(self._pending, self._expect, min(self.gather_s, self.gather_share * self._last_commit_s),
                      lambda: self._closing)

    def _take_group(self) -> list[_Write]:
        first = self._pending.popleft()
        group, ids = [first], set(first.item_ids)
        # writes answered without matches (top=0) go apart: in a group they would be matched too
        while (self._pending and len(ids) + len(self._pending[0].item_ids) <= self.max_group
               and self._pending[0].kind == first.kind and ids.isdisjoint(self._pending[0].item_ids)
               and (self._pending[0].top == 0) == (first.top == 0)):
            write = self._pending.popleft()
            group.append(write)
            ids.update(write.item_ids)
        for write in group:
            write.taken = True
        return group

    def _refresh(self) -> None:
        try:
            with self.lock.writing():
                self.index.refresh()
        except Exception as exc:  # noqa: BLE001 - a failed refresh leaves the current generation
            log.warning("could not pick up the index's new generation: %s", exc)
        _warm(self.index)  # segments written since (ours or another writer's)

    def _commit(self, group: list[_Write]) -> list[Any]:
        """In the writer's thread: one index call for the group; an outcome per write."""
        with self.lock.writing():
            if group[0].kind == "remove":
                return self._remove(group)
            try:
                return self._upsert(group)
            except DataError as exc:
                if len(group) == 1:
                    return [exc]
            # one bad listing must not fail the others: commit each alone
            outcomes = []
            for write in group:
                try:
                    outcomes += self._upsert([write])
                except DataError as exc:
                    outcomes.append(exc)
            return outcomes

    def _upsert(self, group: list[_Write]) -> list[Any]:
        frame = _listings_frame([record for write in group for record in write.listings])
        top = max(write.top for write in group)
        result = self.index.upsert(frame, top=top or None)  # top 0 for all: nothing to match
        self.metrics.upserts.inc(by=len(frame))
        self.metrics.commits.inc("upsert")
        self.metrics.batch_size.observe(len(frame), "upsert")
        rows = _matches_by_query(result, {i: write.top for write in group for i in write.item_ids})
        return [[rows.get(i, []) for i in write.item_ids] if write.many else rows.get(write.item_ids[0], [])
                for write in group]

    def _remove(self, group: list[_Write]) -> list[bool]:
        present = self.index.contains([write.item_ids[0] for write in group]).tolist()
        ids = [write.item_ids[0] for write, here in zip(group, present) if here]
        if ids:
            self.index.remove(ids)
            self.metrics.removes.inc(by=len(ids))
        self.metrics.commits.inc("remove")
        self.metrics.batch_size.observe(len(group), "remove")
        return present


# --------------------------------------------------------------------------- the gate (ASGI middleware)


class Gate:
    """Pure ASGI middleware, in front of every request: finds the route (for the metrics' route
    label and the scope it needs), checks the bearer token, and enforces the body limit by
    reading the body (at most ``max_body_bytes``) before the app parses it."""

    def __init__(self, app, *, routes: Callable[[], list], needs: dict[str, str], tokens: TokenStore | None,
                 max_body_bytes: int, metrics: ServiceMetrics):
        self.app, self.routes, self.needs, self.tokens = app, routes, needs, tokens
        self.max_body_bytes, self.metrics = max_body_bytes, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        route, full = self._route(scope)
        label = route.path if route is not None else "unmatched"
        status = [500]

        async def send_counted(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            refusal = self._refusal(scope, route if full else None)
            if refusal is None:
                body = await self._read_body(scope, receive)
                if isinstance(body, JSONResponse):
                    refusal = body
            if refusal is not None:
                await refusal(scope, receive, send_counted)
            else:
                await self.app(scope, _replay(body, receive), send_counted)
        finally:
            method = scope["method"]
            self.metrics.requests.inc(label, method, str(status[0]))
            self.metrics.latency.observe(time.perf_counter() - started, label, method)

    def _route(self, scope):
        partial = None
        for route in self.routes():
            match, _ = route.matches(scope)
            if match == RouteMatch.FULL:
                return route, True
            if match == RouteMatch.PARTIAL and partial is None:
                partial = route
        return partial, False

    def _refusal(self, scope, route) -> JSONResponse | None:
        needed = self.needs.get(route.name) if route is not None else None
        if needed is None or self.tokens is None:
            return None
        token = _bearer_token(scope)
        allowed = self.tokens.allows(token, needed)
        if allowed is None:
            what = "no bearer token" if token is None else "unknown bearer token"
            return _problem(401, f"{what}: send 'Authorization: Bearer <token>' with a {needed} token",
                            {"WWW-Authenticate": 'Bearer realm="dupsearch"'})
        if not allowed:
            return _problem(403, f"this token may only read; {scope['method']} {route.path} needs a write token")
        return None

    async def _read_body(self, scope, receive) -> bytes | JSONResponse:
        limit = self.max_body_bytes
        too_big = _problem(413, f"request body over {limit} bytes; send fewer listings per request")
        declared = _header(scope, b"content-length")
        if declared is not None:
            try:
                if int(declared) > limit:
                    return too_big
            except ValueError:
                return _problem(400, "Content-Length is not a number")
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:  # streamed (chunked) bodies have no Content-Length to check
                return too_big
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body and _is_json(_header(scope, b"content-type")):
            try:
                body.decode("utf-8")
            except UnicodeDecodeError as e:  # JSON between systems must be UTF-8 (RFC 8259)
                return JSONResponse({"detail": [{"loc": ["body", e.start], "msg": "JSON decode error: not UTF-8 text",
                                                 "type": "json_invalid"}]}, status_code=422)
        return body


def _replay(body: bytes, receive):
    """A receive() that gives the app the already-read body, then the connection's next events."""
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";")[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _bearer_token(scope) -> str | None:
    value = _header(scope, b"authorization")
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


# --------------------------------------------------------------------------- the app


def _tokens_of(tokens) -> TokenStore | None:
    if tokens is None or isinstance(tokens, TokenStore):
        return tokens
    if isinstance(tokens, str):
        tokens = tokens.split(",")
    return TokenStore.parse(tokens, "tokens")


def _warm(index) -> None:
    started = time.perf_counter()
    try:
        touched = index.warm()
    except Exception as exc:  # noqa: BLE001 - warming only saves time; matching works without it
        log.warning("could not warm the index: %s", exc)
        return
    if touched:
        log.info("index warmed: %.2f GiB in %.1f s", touched / 2**30, time.perf_counter() - started)


def create_app(index, *, tokens: TokenStore | Iterable[str] | str | None = None, no_auth: bool = False,
               max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, max_batch: int = DEFAULT_MAX_BATCH,
               timeout_s: float = DEFAULT_TIMEOUT_S, max_group: int = DEFAULT_MAX_GROUP,
               read_threads: int = DEFAULT_READ_THREADS, trust: bool = False, warm: bool = True,
               worker: int | None = None, metrics_dir: str | os.PathLike | None = None) -> FastAPI:
    """The service over ``index`` (an ``Index``, or the path of one: opened now, closed at shutdown;
    ``trust`` as ``Index.open``).

    ``tokens``: a TokenStore, or entries ``read:<token>`` / ``write:<token>`` (a list, or one
    comma-separated string). Without tokens the app refuses to exist unless ``no_auth=True``.
    ``warm``: touch the index's memory-mapped files in the background at start (``Index.warm``).
    ``worker``: this process's number among the server's worker processes (a ``worker`` label on
    every metric), None for a server of one process. ``metrics_dir``: a folder the workers share
    (the server's own): each writes its metrics there every ``METRICS_SNAPSHOT_S``, and ``/metrics``
    answers with its own and the others' latest, so one scrape sees every worker.
    """
    from dupsearch.index import Index, IndexBusyError, ListingNotFoundError

    store = None if no_auth else _tokens_of(tokens)
    if not no_auth and not store:
        raise ServeError("no API tokens configured: pass a token file (read:<token> / write:<token> lines) "
                         "or set DUPSEARCH_TOKENS, or run with no auth (--no-auth) for local use only")
    for name, value in (("max_body_bytes", max_body_bytes), ("max_batch", max_batch), ("max_group", max_group),
                        ("read_threads", read_threads)):
        if int(value) < 1:
            raise ServeError(f"{name} must be at least 1, got {value}")
    if not timeout_s > 0:
        raise ServeError(f"timeout_s must be positive, got {timeout_s}")

    owns_index = isinstance(index, (str, os.PathLike))
    idx = Index.open(index, trust=trust) if owns_index else index
    # another process (a second worker, `dupsearch index add`) may hold the index's lock: a write
    # waits for it as long as a request may take
    idx.lock_wait_s = float(timeout_s)

    def listings_now() -> float | None:
        try:
            return float(len(idx))
        except Exception:  # noqa: BLE001 - a scrape must not fail because the index is closing
            return None

    writer: GroupCommitWriter  # set below; metrics read its queue length
    metrics = ServiceMetrics(listings=listings_now, queued=lambda: float(len(writer)), worker=worker)
    lock = ReadWriteLock()
    writer = GroupCommitWriter(idx, metrics, lock, max_group=max_group)
    readers = ThreadPoolExecutor(max_workers=read_threads, thread_name_prefix="dupsearch-read")

    def pick_up_writes() -> None:
        """Before a read: a generation another process committed (another worker of this
        server) is picked up first, so that a write acknowledged by any worker is seen by every
        later read. One stat when nothing changed."""
        if idx.stale():
            with lock.writing():
                idx.refresh()

    async def run_read(work: Callable[[], Any]) -> Any:
        def read():
            pick_up_writes()
            with lock.reading():
                return work()
        return await asyncio.get_running_loop().run_in_executor(readers, read)

    batcher = MatchBatcher(idx, run_read, metrics=metrics)
    warmed = threading.Event()  # /healthz says when the start-up warm-up is done

    snapshot = (Path(metrics_dir) / f"worker-{worker}.prom") if metrics_dir is not None and worker else None

    snapshot_failed = threading.Event()  # warned once, not every second

    def write_snapshot(text: str | None = None) -> str:
        text = metrics.render() if text is None else text
        try:  # replaced whole: a scrape in another worker never reads half a file
            tmp = snapshot.with_name(f".{snapshot.name}.{os.getpid()}.tmp")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, snapshot)
        except OSError as exc:
            if not snapshot_failed.is_set():
                snapshot_failed.set()
                log.warning("could not write this worker's metrics for the others: %s", exc)
        return text

    async def snapshots() -> None:
        while True:
            write_snapshot()
            await asyncio.sleep(METRICS_SNAPSHOT_S)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        writer.start()
        batcher.start()
        snapshot_task = asyncio.get_running_loop().create_task(snapshots()) if snapshot is not None else None
        if warm:  # in the background: requests are served meanwhile (at first a little slower)
            def warm_up():
                try:
                    _warm(idx)
                finally:
                    warmed.set()
            threading.Thread(target=warm_up, name="dupsearch-warm", daemon=True).start()
        else:
            warmed.set()
        try:
            yield
        finally:
            if snapshot_task is not None:
                snapshot_task.cancel()
            await batcher.close()
            await writer.close()  # acknowledged or queued writes are committed before exit
            readers.shutdown(wait=True, cancel_futures=True)
            if owns_index:
                idx.close()

    app = FastAPI(title="dupsearch", version=dupsearch.__version__, lifespan=lifespan,
                  description="Duplicate listings: match new listings against a catalogue index, "
                              "and keep the index up to date.")

    # The token is checked by the Gate (before the body is read); these only document it.
    bearer = HTTPBearer(auto_error=False, description="a read or write token")
    read_auth = [] if store is None else [Depends(bearer)]
    write_auth = read_auth

    async def in_thread(route: str, work: Callable[[], Any]) -> Any:
        abandoned = threading.Event()

        def read():
            pick_up_writes()
            with lock.reading():
                if abandoned.is_set():  # the request timed out while this waited for the writer
                    return None
                return work()

        future = asyncio.get_running_loop().run_in_executor(readers, read)
        try:
            return await asyncio.wait_for(future, timeout_s)
        except asyncio.TimeoutError:
            abandoned.set()
            metrics.timeouts.inc(route)
            raise HTTPProblem(504, f"the index did not answer within {timeout_s:g} s; retry later") from None

    async def write(route: str, kind: str, item_id: str | None, listing: dict | None = None, top: int = 10,
                    many: list[dict] | None = None):
        try:
            pending = writer.submit_many(many, top) if many is not None else writer.submit(kind, item_id, listing, top)
        except ShuttingDown:
            raise HTTPProblem(503, "the server is shutting down; retry on its successor",
                              {"Retry-After": "1"}) from None
        try:
            return await asyncio.wait_for(asyncio.shield(pending.future), timeout_s)
        except asyncio.TimeoutError:
            metrics.timeouts.inc(route)
            if writer.withdraw(pending):
                raise HTTPProblem(503, f"the write did not start within {timeout_s:g} s and was not "
                                  "applied; retry later", {"Retry-After": "1"}) from None
            raise HTTPProblem(504, f"the write did not finish within {timeout_s:g} s; it may still be "
                              "applied: check with GET /v1/listings/{id}/duplicates") from None

    # -- errors

    @app.exception_handler(HTTPProblem)
    async def on_problem(request: Request, exc: HTTPProblem):
        return _problem(exc.status, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError):
        # loc, msg and type only: echoing the input could put NaN (invalid JSON) into the answer
        detail = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
                  for e in exc.errors()]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(ListingNotFoundError)
    async def on_not_found(request: Request, exc: ListingNotFoundError):
        return _problem(404, str(exc))

    @app.exception_handler(IndexBusyError)
    async def on_busy(request: Request, exc: IndexBusyError):
        return _problem(503, f"{exc}; retry later", {"Retry-After": "1"})

    @app.exception_handler(DataError)
    async def on_data_error(request: Request, exc: DataError):
        return _data_error_response(exc, ("body",))

    @app.exception_handler(DupsearchError)
    async def on_dupsearch_error(request: Request, exc: DupsearchError):
        log.error("%s %s: %s", request.method, request.url.path, exc)
        return _problem(500, str(exc))

    @app.exception_handler(Exception)
    async def on_bug(request: Request, exc: Exception):
        log.exception("%s %s failed", request.method, request.url.path)
        return _problem(500, f"internal error ({type(exc).__name__}); see the server log")

    # -- routes

    def path_id(item_id: str) -> str:
        stripped = item_id.strip()  # ids are stored stripped, as in the body
        if not stripped:
            raise RequestValidationError([{"loc": ("path", "item_id"), "msg": "item_id is empty",
                                           "type": "value_error"}])
        return stripped

    @app.post("/v1/match", response_model=MatchResponse, dependencies=read_auth,
              responses=_errors(401, 413, 503, 504), summary="Match listings against the index")
    async def match(body: Annotated[MatchRequest, Body()], top: TopParam = 10):
        """One listing, or ``{"listings": [...]}``: each listing's most probable duplicates in the
        index. The index is not changed."""
        batch = body.listings if isinstance(body, MatchBatch) else [body]
        if len(batch) > max_batch:
            raise HTTPProblem(413, f"batch of {len(batch)} listings; at most {max_batch} per request")
        query_ids = [listing.item_id for listing in batch]
        if not batch:
            return JSONResponse({"results": []})
        if not isinstance(body, MatchBatch):  # one listing: answered together with its neighbours in time
            pending = batcher.submit(body.model_dump(), top)
            try:
                rows = await asyncio.wait_for(asyncio.shield(pending), timeout_s)
            except asyncio.TimeoutError:
                pending.cancel()
                metrics.timeouts.inc("/v1/match")
                raise HTTPProblem(504, f"the index did not answer within {timeout_s:g} s; retry later") from None
            except ShuttingDown:
                raise HTTPProblem(503, "the server is shutting down; retry on its successor",
                                  {"Retry-After": "1"}) from None
            except DataError as exc:
                return _data_error_response(exc, ("body",))
            return JSONResponse({"results": [{"item_id": body.item_id, "matches": rows}]})
        frame = _listings_frame([listing.model_dump() for listing in batch])
        try:
            found = await in_thread("/v1/match", lambda: idx.match(frame, top=top))
        except DataError as exc:
            return _data_error_response(exc, ("body", "listings") if isinstance(body, MatchBatch) else ("body",))
        rows = _matches_by_query(found)
        return JSONResponse({"results": [{"item_id": i, "matches": rows.get(i, [])} for i in query_ids]})

    @app.put("/v1/listings/{item_id}", response_model=ListingMatches, dependencies=write_auth,
             responses=_errors(401, 403, 413, 503, 504), summary="Add or replace a listing")
    async def upsert_listing(item_id: IdParam, listing: ListingUpsert, top: TopParam = 10):
        """Adds the listing (or replaces the one with its item_id) and answers with its matches
        among the other listings. Answered only once the index has committed it. Needs a write
        token."""
        item_id = path_id(item_id)
        if listing.item_id is not None and listing.item_id != item_id:
            raise RequestValidationError([{
                "loc": ("body", "item_id"), "type": "value_error",
                "msg": f"item_id {listing.item_id!r} in the body differs from {item_id!r} in the path"}])
        record = listing.model_dump()
        record["item_id"] = item_id
        matches = await write("/v1/listings/{item_id}", "upsert", item_id, record, top)
        return JSONResponse({"item_id": item_id, "matches": matches})

    @app.post("/v1/listings", response_model=MatchResponse, dependencies=write_auth,
              responses=_errors(401, 403, 413, 503, 504), summary="Add or replace listings in bulk")
    async def upsert_listings(body: ListingBatch, top: BulkTopParam = 10):
        """``{"listings": [...]}``: adds the listings (replacing those whose item_id is in the
        index) in one commit, all or none, and answers with each one's matches among the other
        listings, the batch's included (``top=0``: no matches, for loading a feed faster).
        Answered only once the index has committed them. Needs a write token."""
        if len(body.listings) > max_batch:
            raise HTTPProblem(413, f"batch of {len(body.listings)} listings; at most {max_batch} per request")
        seen: dict[str, int] = {}
        for at, listing in enumerate(body.listings):
            if listing.item_id in seen:
                raise RequestValidationError([{
                    "loc": ("body", "listings", at, "item_id"), "type": "value_error",
                    "msg": f"item_id {listing.item_id!r} is also listing {seen[listing.item_id]}: send each once"}])
            seen[listing.item_id] = at
        if not body.listings:
            return JSONResponse({"results": []})
        try:
            found = await write("/v1/listings", "upsert", None, top=top,
                                many=[listing.model_dump() for listing in body.listings])
        except DataError as exc:
            return _data_error_response(exc, ("body", "listings"))
        return JSONResponse({"results": [{"item_id": i, "matches": rows} for i, rows in zip(seen, found)]})

    @app.delete("/v1/listings/{item_id}", response_model=RemoveResponse, dependencies=write_auth,
                responses=_errors(401, 403, 404, 503, 504), summary="Remove a listing")
    async def remove_listing(item_id: IdParam):
        """Removes the listing; 404 when it is not in the index. Needs a write token."""
        item_id = path_id(item_id)
        present = await write("/v1/listings/{item_id}", "remove", item_id)
        if not present:
            raise HTTPProblem(404, f"no listing {item_id!r} in the index")
        return JSONResponse({"item_id": item_id, "removed": True})

    @app.get("/v1/listings/{item_id}/duplicates", response_model=ListingMatches, dependencies=read_auth,
             responses=_errors(401, 404, 503, 504), summary="Duplicates of a listing in the index")
    async def listing_duplicates(item_id: IdParam, top: TopParam = 10):
        """The most probable duplicates of a listing already in the index (itself left out)."""
        item_id = path_id(item_id)
        found = await in_thread("/v1/listings/{item_id}/duplicates", lambda: idx.duplicates(item_id, top=top))
        rows = _matches_by_query(found)
        return JSONResponse({"item_id": item_id, "matches": rows.get(item_id, [])})

    @app.get("/healthz", response_model=Health, summary="Liveness")
    async def healthz():
        if idx.stale():  # another worker's commit: the count after it
            await run_read(lambda: None)
        return JSONResponse({"status": "ok", "listings": len(idx), "warm": warmed.is_set()})

    @app.get("/metrics", response_class=PlainTextResponse, dependencies=read_auth,
             responses=_errors(401), summary="Prometheus metrics")
    async def metrics_text():
        if snapshot is None:
            return Response(metrics.render(), media_type=CONTENT_TYPE)
        # this worker's numbers now, saved first: a later scrape through another worker then
        # reads them at least this new (a counter seen to fall would read as a reset)
        texts = [write_snapshot()]
        for other in sorted(snapshot.parent.glob("worker-*.prom")):
            if other.name != snapshot.name:
                try:
                    texts.append(other.read_text(encoding="utf-8"))
                except OSError:  # a worker's file replaced or gone meanwhile: its series wait for the next scrape
                    pass
        return Response(merge_expositions(texts), media_type=CONTENT_TYPE)

    needs = {"match": "read", "listing_duplicates": "read", "metrics_text": "read",
             "upsert_listing": "write", "upsert_listings": "write", "remove_listing": "write"}
    app.add_middleware(Gate, routes=lambda: app.router.routes, needs=needs, tokens=store,
                       max_body_bytes=max_body_bytes, metrics=metrics)
    app.state.index, app.state.writer, app.state.metrics = idx, writer, metrics
    return app


__all__ = ["create_app", "GroupCommitWriter", "Listing", "ServeError", "DEFAULT_MAX_BODY_BYTES",
           "DEFAULT_MAX_BATCH", "DEFAULT_TIMEOUT_S"]
