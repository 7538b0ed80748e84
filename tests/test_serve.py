"""`dupsearch serve` over real HTTP: a real uvicorn process (``run_server``) over a real index.

A module fixture generates a small market (600 listings), trains a small model and builds an
index of the first 500 listings, once; the other 100 are the listings the tests match and add.
Each server gets its own copy of that index folder, so a test's writes never reach another's.

What must hold:

1. acknowledged writes survive ``kill -9``: a stream of concurrent upserts, the server killed
   in the middle; after a restart every upsert that was answered 200 is in the index, and the
   index opens clean with a consistent length;
2. a fuzzer (schemathesis, from /openapi.json, valid and invalid requests) finds no 5xx;
3. auth: no or unknown token 401 (with ``WWW-Authenticate: Bearer``), a read token on a write
   endpoint 403, checked before the body is read;
4. limits and validation: 413 for a body over the limit (by Content-Length and streamed), 413 for
   a batch over the limit, 422 for malformed JSON, 422 naming the field for a wrong type, a
   DataError from the index and a body id that is not the path id; answers are strict JSON;
5. a match over HTTP is ``Index.match`` (same ids, probabilities within 1e-9);
6. upsert, then its duplicates; delete, then 404;
7. /metrics is Prometheus text with the request counter; /healthz answers 200;
8. concurrent upserts are committed in groups (fewer index calls than upserts); a long stream
   of single writes (one commit each, through a merge of the index's segments) all succeed;
9. a request whose index work outlives the timeout gets a JSON 504;
10. SIGTERM with writes queued: they are committed and answered before the process exits;
11. tokens from a file or DUPSEARCH_TOKENS, hashed; no tokens and no --no-auth: refusal to start;
    no fastapi: MissingDependencyError naming the extra; ``import dupsearch`` imports no fastapi.
"""

from __future__ import annotations

import json
import math
import os
import queue
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from helpers import run_cli, small_market_and_model

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from dupsearch import read_listings  # noqa: E402
from dupsearch.index import Index  # noqa: E402

N_LISTINGS, N_INDEXED = 600, 500
API_COLUMNS = ["item_id", "title", "description", "category_l1", "category_l2", "category_l3",
               "category_l4", "attributes", "price", "images", "seller_id", "city"]
READ_TOKEN = "read-" + secrets.token_urlsafe(24)
WRITE_TOKEN = "write-" + secrets.token_urlsafe(24)
READ = {"Authorization": f"Bearer {READ_TOKEN}"}
WRITE = {"Authorization": f"Bearer {WRITE_TOKEN}"}
MAX_BODY = 64 * 1024
MAX_BATCH = 8
START_TIMEOUT = 60
FUZZ_EXAMPLES = int(os.environ.get("DUPSEARCH_FUZZ_EXAMPLES", "0"))


# --------------------------------------------------------------------------- the catalogue


@dataclass
class Catalogue:
    index: Path            # the built index: copied for each server, never served itself
    queries: list[dict]    # the listings left out of the index, as JSON request bodies


def as_json(row: dict) -> dict:
    """A listing as a request body (attributes a dict, images a list, no price -> null)."""
    price = row["price"]
    return {"item_id": str(row["item_id"]), "title": row["title"], "description": row["description"],
            **{c: row[c] for c in ("category_l1", "category_l2", "category_l3", "category_l4")},
            "attributes": {str(k): str(v) for k, v in dict(row["attributes"]).items()},
            "price": None if price is None or (isinstance(price, float) and math.isnan(price)) else float(price),
            "images": [str(i) for i in row["images"]], "seller_id": row["seller_id"], "city": row["city"]}


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory) -> Catalogue:
    root = tmp_path_factory.mktemp("serve")
    data, model, _ = small_market_and_model(root, N_LISTINGS, seed=3)
    listings, _ = read_listings(data / "listings.parquet")
    listings = listings[API_COLUMNS]
    Index.build(listings.iloc[:N_INDEXED], model, root / "index").close()
    queries = [as_json(r) for r in listings.iloc[N_INDEXED:].to_dict("records")]
    return Catalogue(root / "index", queries)


# --------------------------------------------------------------------------- a server process


class Server:
    """``run_server`` in a subprocess on a free port (port 0: the server says which it took)."""

    def __init__(self, index: Path, env_tokens: bool = True, **options):
        self.index = index
        options = {"port": 0, "log_level": "warning", **options}
        code = ("import json, sys; from dupsearch.serve import run_server; "
                "run_server(sys.argv[1], **json.loads(sys.argv[2]))")
        env = {k: v for k, v in os.environ.items() if k != "DUPSEARCH_TOKENS"}
        if env_tokens:
            env["DUPSEARCH_TOKENS"] = f"read:{READ_TOKEN},write:{WRITE_TOKEN}"
        self.proc = subprocess.Popen([sys.executable, "-c", code, str(index), json.dumps(options)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, env=env)
        self.log: list[str] = []
        lines: queue.Queue = queue.Queue()

        def drain():  # keep reading stderr, so a chatty server never blocks on a full pipe
            for line in self.proc.stderr:
                self.log.append(line)
                lines.put(line)
            lines.put(None)

        threading.Thread(target=drain, daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT
        self.url = None
        while self.url is None:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                self.kill()
                raise AssertionError("the server did not start:\n" + "".join(self.log))
            found = re.search(r"listening on (http://\S+)", line)
            if found:
                self.url = found.group(1)
        while True:  # the port is bound before uvicorn listens on it
            try:
                if httpx.get(self.url + "/healthz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and self.proc.poll() is None, "".join(self.log)
            time.sleep(0.05)

    def client(self, headers: dict | None = None, timeout: float = 60) -> "httpx.Client":
        return httpx.Client(base_url=self.url, headers=headers or {}, timeout=timeout)

    def stop(self) -> int:
        """SIGTERM (graceful: requests in flight finish, queued writes commit) and wait."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError("the server did not stop within 60 s of SIGTERM")
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()  # SIGKILL: no shutdown code runs
            self.proc.wait(timeout=30)


def fresh_index(catalogue: Catalogue, tmp_path: Path, name: str = "index") -> Path:
    target = tmp_path / name
    shutil.copytree(catalogue.index, target)
    return target


@pytest.fixture(scope="module")
def server(catalogue, tmp_path_factory):
    """One server for the read-mostly tests (they write only listings of their own)."""
    srv = Server(fresh_index(catalogue, tmp_path_factory.mktemp("shared")),
                 max_body_bytes=MAX_BODY, max_batch=MAX_BATCH)
    yield srv
    srv.stop()


def strict_json(response) -> object:
    """The body as JSON, refusing NaN/Infinity (which strict JSON does not have)."""
    def refuse(name):
        raise AssertionError(f"non-standard JSON constant {name} in {response.text[:200]}")
    return json.loads(response.text, parse_constant=refuse)


def error_locs(response) -> list[list]:
    assert response.status_code == 422, (response.status_code, response.text)
    return [e["loc"] for e in strict_json(response)["detail"]]


def renamed(listing: dict, item_id: str) -> dict:
    return {**listing, "item_id": item_id}


# --------------------------------------------------------------------------- 7. health and metrics


def test_healthz_and_metrics(server, catalogue):
    with server.client() as anonymous:
        health = anonymous.get("/healthz")
        assert health.status_code == 200 and strict_json(health)["status"] == "ok"
        assert strict_json(health)["listings"] >= N_INDEXED
        deadline = time.time() + 60  # the start-up warm-up runs in the background and ends
        while not strict_json(anonymous.get("/healthz"))["warm"]:
            assert time.time() < deadline, "the index's warm-up did not end within 60 s"
            time.sleep(0.1)
        assert anonymous.get("/metrics").status_code == 401  # metrics need a read token
        assert anonymous.get("/docs").status_code == 200
        paths = strict_json(anonymous.get("/openapi.json"))["paths"]
        assert {"/v1/match", "/v1/listings/{item_id}", "/v1/listings/{item_id}/duplicates", "/healthz",
                "/metrics"} <= set(paths)
    with server.client(READ) as reader:
        before = re.search(r"^dupsearch_match_batch_size_count (\d+)$", reader.get("/metrics").text, re.M)
        matched = reader.post("/v1/match", json=renamed(catalogue.queries[0], "metrics-1"))
        assert matched.status_code == 200
        metrics = reader.get("/metrics")
    assert metrics.status_code == 200
    # one single match more: one more batch of single matches, of at least one listing
    after = re.search(r"^dupsearch_match_batch_size_count (\d+)$", metrics.text, re.M)
    assert int(after.group(1)) == (int(before.group(1)) if before else 0) + 1
    assert re.search(r'^dupsearch_match_batch_size_bucket\{le="\+Inf"\} [1-9]', metrics.text, re.M)
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert "# TYPE dupsearch_http_requests_total counter" in text
    assert re.search(r'^dupsearch_http_requests_total\{route="/healthz",method="GET",status="200"\} [1-9]',
                     text, re.M)
    assert re.search(r"^dupsearch_index_listings \d+$", text, re.M)
    assert "# TYPE dupsearch_http_request_duration_seconds histogram" in text
    sample = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_]\w*="(?:[^"\\]|\\.)*",?)*\})? '
                        r"(-?[0-9.e+-]+|\+Inf|-Inf|NaN)$")
    for line in text.splitlines():
        assert line.startswith("# ") or sample.match(line), f"not Prometheus text: {line!r}"


# --------------------------------------------------------------------------- 3. auth


def test_tokens_and_scopes(server, catalogue):
    listing = renamed(catalogue.queries[0], "auth-1")
    with server.client() as anonymous:
        missing = anonymous.put("/v1/listings/auth-1", json=listing)
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"].startswith("Bearer")
        # checked before the body is read: a malformed body without a token is still a 401
        assert anonymous.post("/v1/match", content=b"{not json", headers={"content-type": "application/json"}
                              ).status_code == 401
        unknown = anonymous.post("/v1/match", json=listing, headers={"Authorization": "Bearer " + "x" * 40})
        assert unknown.status_code == 401 and unknown.headers["www-authenticate"].startswith("Bearer")
        basic = anonymous.post("/v1/match", json=listing, headers={"Authorization": f"Basic {READ_TOKEN}"})
        assert basic.status_code == 401
    with server.client(READ) as reader:
        assert reader.post("/v1/match", json=listing).status_code == 200
        forbidden = reader.put("/v1/listings/auth-1", json=listing)
        assert forbidden.status_code == 403 and "write token" in strict_json(forbidden)["detail"]
        assert reader.delete("/v1/listings/auth-1").status_code == 403
    with server.client(WRITE) as writer:  # write implies read
        assert writer.put("/v1/listings/auth-1", json=listing).status_code == 200
        assert writer.get("/v1/listings/auth-1/duplicates").status_code == 200
        assert writer.delete("/v1/listings/auth-1").status_code == 200


# --------------------------------------------------------------------------- 4. limits and validation


def test_body_and_batch_limits(server, catalogue):
    with server.client(READ) as reader:
        big = renamed(catalogue.queries[1], "big")
        big["description"] = "x" * (2 * MAX_BODY)
        declared = reader.post("/v1/match", json=big)  # refused on its Content-Length
        assert declared.status_code == 413 and "bytes" in strict_json(declared)["detail"]

        def chunks():  # no Content-Length: refused while it streams in
            yield b'{"item_id": "streamed", "description": "'
            for _ in range(2 * MAX_BODY // 8192):
                yield b"y" * 8192
            yield b'"}'

        streamed = reader.post("/v1/match", content=chunks(), headers={"content-type": "application/json"})
        assert streamed.status_code == 413
        batch = [renamed(q, f"batch-{i}") for i, q in enumerate(catalogue.queries[: MAX_BATCH + 1])]
        for listing in batch:  # small enough in bytes: only the count is over
            listing["description"] = listing["description"][:100]
        too_many = reader.post("/v1/match", json={"listings": batch})
        assert too_many.status_code == 413 and str(MAX_BATCH) in strict_json(too_many)["detail"]
        assert reader.post("/v1/match", json={"listings": batch[:MAX_BATCH]}).status_code == 200


def test_validation_errors_name_the_field(server, catalogue):
    listing = renamed(catalogue.queries[2], "valid-1")
    with server.client(WRITE) as writer:
        malformed = writer.post("/v1/match", content=b'{"item_id": "a", ',
                                headers={"content-type": "application/json"})
        assert error_locs(malformed)[0][0] == "body"
        wrong_type = writer.put("/v1/listings/valid-1", json={**listing, "price": "cheap"})
        assert ["body", "price"] in error_locs(wrong_type)
        in_batch = writer.post("/v1/match", json={"listings": [listing, {**listing, "item_id": "b", "images": 7}]})
        assert any(loc[-1] == "images" and 1 in loc for loc in error_locs(in_batch))
        not_finite = writer.post("/v1/match", content=b'{"item_id": "a", "price": NaN}',
                                 headers={"content-type": "application/json"})
        assert any(loc[-1] == "price" for loc in error_locs(not_finite))  # and the answer is strict JSON
        unknown_field = writer.put("/v1/listings/valid-1", json={**listing, "colour": "red"})
        assert ["body", "colour"] in error_locs(unknown_field)
        other_id = writer.put("/v1/listings/valid-1", json=renamed(listing, "valid-2"))
        assert ["body", "item_id"] in error_locs(other_id)
        # accepted by the schema, refused by the index (DataError): the field is named all the same
        bad_attributes = writer.put("/v1/listings/valid-1", json={**listing, "attributes": "[1, 2"})
        assert ["body", "attributes"] in error_locs(bad_attributes)
        assert "attributes" in strict_json(bad_attributes)["detail"][0]["msg"]
        twice = writer.post("/v1/match", json={"listings": [listing, listing]})
        assert ["body", "listings", 1, "item_id"] in error_locs(twice)
        assert writer.get("/v1/listings/valid-1/duplicates").status_code == 404  # nothing was written
        assert error_locs(writer.get("/v1/listings/x/duplicates", params={"top": 0})) == [["query", "top"]]


# --------------------------------------------------------------------------- 5. HTTP match == Index.match


def test_match_over_http_is_index_match(server, catalogue):
    listings = catalogue.queries[10:18]
    with server.client(READ) as reader:
        answer = reader.post("/v1/match", json={"listings": listings}, params={"top": 5})
        one = reader.post("/v1/match", json=listings[0], params={"top": 5})
    assert answer.status_code == 200 and one.status_code == 200
    results = strict_json(answer)["results"]
    assert [r["item_id"] for r in results] == [listing["item_id"] for listing in listings]
    assert strict_json(one)["results"] == results[:1]

    idx = Index.open(server.index)  # the index the server serves, read by this process
    expected = idx.match(pd.DataFrame(listings), top=5)
    idx.close()
    assert sum(len(r["matches"]) for r in results) == len(expected) > 0
    for result in results:
        rows = expected[expected["item_id"] == result["item_id"]].sort_values("rank")
        got = result["matches"]
        assert [m["match_id"] for m in got] == rows["match_id"].tolist()
        assert [m["rank"] for m in got] == rows["rank"].tolist()
        for m, p, blockers in zip(got, rows["probability"], rows["blockers"]):
            assert abs(m["probability"] - p) <= 1e-9
            assert "|".join(m["blockers"]) == blockers


def test_concurrent_single_matches_share_index_calls_and_keep_their_answers(server, catalogue):
    """Single matches sent together are answered by fewer index calls than requests (those that
    arrive while a call runs go in the next), and each answer is that listing's own Index.match."""
    def count(text: str, name: str) -> float:
        found = re.search(rf"^{name} (\S+)$", text, re.M)
        return float(found.group(1)) if found else 0.0

    listings = [renamed(q, f"burst-{i}") for i, q in enumerate(catalogue.queries[:48])]
    with server.client(READ) as reader:
        before = reader.get("/metrics").text

    def post(listing):
        with server.client(READ) as reader:
            return reader.post("/v1/match", json=listing, params={"top": 4})

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(post, listings))
    with server.client(READ) as reader:
        after = reader.get("/metrics").text
    assert [a.status_code for a in answers] == [200] * len(listings)
    calls = count(after, "dupsearch_match_batch_size_count") - count(before, "dupsearch_match_batch_size_count")
    answered = count(after, "dupsearch_match_batch_size_sum") - count(before, "dupsearch_match_batch_size_sum")
    assert answered == len(listings)
    assert calls < len(listings), f"{len(listings)} matches in {calls:.0f} index calls: no batching"
    idx = Index.open(server.index)
    try:
        for listing, answer in zip(listings, answers):
            (result,) = strict_json(answer)["results"]
            expected = idx.match(pd.DataFrame([listing]), top=4)
            assert result["item_id"] == listing["item_id"]
            assert [m["match_id"] for m in result["matches"]] == expected["match_id"].tolist()
            assert [m["probability"] for m in result["matches"]] == pytest.approx(
                expected["probability"].tolist(), abs=1e-9)
    finally:
        idx.close()


# --------------------------------------------------------------------------- 6. upsert, duplicates, delete


def test_upsert_then_duplicates_then_delete(server, catalogue):
    listing = catalogue.queries[20]
    item_id = listing["item_id"]
    with server.client(WRITE) as writer:
        assert writer.get(f"/v1/listings/{item_id}/duplicates").status_code == 404
        put = writer.put(f"/v1/listings/{item_id}", json=listing)
        assert put.status_code == 200, put.text
        added = strict_json(put)
        assert added["item_id"] == item_id and all(m["match_id"] != item_id for m in added["matches"])
        dups = writer.get(f"/v1/listings/{item_id}/duplicates")
        assert dups.status_code == 200
        assert [m["match_id"] for m in strict_json(dups)["matches"]] == [m["match_id"] for m in added["matches"]]
        # the body's item_id may be left out: the path names the listing
        no_id = {k: v for k, v in renamed(listing, "no-id").items() if k != "item_id"}
        assert writer.put("/v1/listings/no-id", json=no_id).status_code == 200
        assert writer.get("/v1/listings/no-id/duplicates").status_code == 200

        removed = writer.delete(f"/v1/listings/{item_id}")
        assert removed.status_code == 200 and strict_json(removed) == {"item_id": item_id, "removed": True}
        assert writer.get(f"/v1/listings/{item_id}/duplicates").status_code == 404
        again = writer.delete(f"/v1/listings/{item_id}")
        assert again.status_code == 404 and item_id in strict_json(again)["detail"]
    assert item_id not in Index.open(server.index)


def test_bulk_upsert_commits_all_or_none_and_answers_each_listing(server, catalogue):
    listings = [renamed(q, f"bulk-{i}") for i, q in enumerate(catalogue.queries[40:45])]
    listings.append(renamed(listings[0], "bulk-copy"))
    ids = [listing["item_id"] for listing in listings]
    with server.client(READ) as reader:
        assert reader.post("/v1/listings", json={"listings": listings}).status_code == 403
    with server.client(WRITE) as writer:
        # refused whole, nothing applied: a listing the index refuses, an id twice, too many
        bad = writer.post("/v1/listings", json={"listings": listings[:2] + [{**listings[2], "attributes": "[1, 2"}]})
        assert ["body", "listings", 2, "attributes"] in error_locs(bad)
        twice = writer.post("/v1/listings", json={"listings": [listings[0], listings[1], listings[0]]})
        assert ["body", "listings", 2, "item_id"] in error_locs(twice)
        too_many = [renamed({**listings[0], "description": ""}, f"many-{i}") for i in range(MAX_BATCH + 1)]
        assert writer.post("/v1/listings", json={"listings": too_many}).status_code == 413
        assert all(writer.get(f"/v1/listings/{i}/duplicates").status_code == 404 for i in ids)
        assert strict_json(writer.post("/v1/listings", json={"listings": []})) == {"results": []}

        added = writer.post("/v1/listings", json={"listings": listings}, params={"top": 3})
        assert added.status_code == 200, added.text
        results = strict_json(added)["results"]
        assert [r["item_id"] for r in results] == ids
        # each listing's answer is its matches among all the others, the batch's included: as
        # the index gives them once the listings are in
        for r in results:
            dups = strict_json(writer.get(f"/v1/listings/{r['item_id']}/duplicates", params={"top": 3}))
            assert [m["match_id"] for m in r["matches"]] == [m["match_id"] for m in dups["matches"]]
            assert len(r["matches"]) <= 3 and all(m["match_id"] != r["item_id"] for m in r["matches"])
        # the batch's own listings are candidates: an exact copy within it is found
        assert "bulk-copy" in [m["match_id"] for m in results[0]["matches"]]
        # top=0: committed, answered without matches; an existing id is replaced, not added twice
        replaced = writer.post("/v1/listings", json={"listings": [{**listings[0], "title": "replaced"}]},
                               params={"top": 0})
        assert strict_json(replaced) == {"results": [{"item_id": ids[0], "matches": []}]}
    index = Index.open(server.index)
    assert all(i in index for i in ids)
    live = index._live_rows_of([ids[0]])
    assert index._listing_frames(live)["title"].tolist() == ["replaced"]
    for i in ids:
        index.remove([i])


# --------------------------------------------------------------------------- group commit


def test_concurrent_upserts_commit_in_groups(server, catalogue):
    def metric(text: str, name: str) -> float:
        found = re.search(rf'^{name}\{{kind="upsert"\}} (\S+)$', text, re.M)
        return float(found.group(1)) if found else 0.0

    with server.client(READ) as reader:
        before = reader.get("/metrics").text
    listings = [renamed(q, f"group-{i}") for i, q in enumerate(catalogue.queries[30:94])]

    def put(listing):
        with server.client(WRITE) as writer:
            return writer.put(f"/v1/listings/{listing['item_id']}", json=listing, params={"top": 3})

    with ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(put, listings))
    assert [a.status_code for a in answers] == [200] * len(listings)
    for listing, answer in zip(listings, answers):  # each request gets its own listing's rows
        body = strict_json(answer)
        assert body["item_id"] == listing["item_id"] and len(body["matches"]) <= 3
    with server.client(READ) as reader:
        after = reader.get("/metrics").text
    upserts = metric(after, "dupsearch_group_commit_size_sum") - metric(before, "dupsearch_group_commit_size_sum")
    commits = metric(after, "dupsearch_group_commit_size_count") - metric(before, "dupsearch_group_commit_size_count")
    assert upserts == len(listings)
    assert commits < upserts, f"{upserts:.0f} upserts in {commits:.0f} index calls: no group commit"


def test_the_writer_waits_for_the_writers_of_its_last_group(catalogue, tmp_path):
    """Writers that write again as soon as they are answered reach the queue one after another:
    the first of them waits for the others (as many as the last commit had in flight) and they
    commit together, not the first alone and then the rest."""
    import asyncio
    from dupsearch.serve.app import GroupCommitWriter, ReadWriteLock, _listings_frame
    from dupsearch.serve.metrics import ServiceMetrics
    idx = Index.open(fresh_index(catalogue, tmp_path))
    records = [{**_listings_frame([renamed(q, f"w-{i}")]).iloc[0].to_dict()}
               for i, q in enumerate(catalogue.queries[:10])]
    segments = [idx.stats()["segments"]]

    async def run(gather_s: float) -> None:
        metrics = ServiceMetrics(listings=lambda: float(len(idx)), queued=lambda: 0.0)
        writer = GroupCommitWriter(idx, metrics, ReadWriteLock(), gather_s=gather_s, gather_share=100.0)
        writer.start()
        first = [writer.submit("upsert", r["item_id"], r) for r in records[:5]]  # queued together: one group
        await asyncio.gather(*(w.future for w in first))
        segments.append(idx.stats()["segments"])
        again = [writer.submit("upsert", records[5]["item_id"], records[5])]
        await asyncio.sleep(0.05)  # the other four writers come back later
        again += [writer.submit("upsert", r["item_id"], r) for r in records[6:10]]
        await asyncio.gather(*(w.future for w in again))
        segments.append(idx.stats()["segments"])
        await writer.close()

    try:
        asyncio.run(run(gather_s=5.0))
        assert [b - a for a, b in zip(segments, segments[1:])] == [1, 1]  # two commits of five
        assert all(r["item_id"] in idx for r in records)
        asyncio.run(run(gather_s=0.0))  # no waiting: the first comes alone, then the four
        assert [b - a for a, b in zip(segments[2:], segments[3:])] == [1, 2]
    finally:
        idx.close()


def test_a_long_stream_of_single_writes(server, catalogue):
    """One commit per request (sequential PUTs): the index goes through a merge of its segments
    on the way, with listings with and without photos; every write is answered 200 and kept."""
    listings = [renamed(q, f"stream-{i}") for i, q in enumerate(catalogue.queries[40:60])]
    for i, listing in enumerate(listings):
        listing["images"] = [f"photos/stream-{i}.jpg"] if i % 2 else []
    with server.client(WRITE) as writer:
        for listing in listings:
            answer = writer.put(f"/v1/listings/{listing['item_id']}", json=listing)
            assert answer.status_code == 200, answer.text
        for listing in listings:
            assert writer.get(f"/v1/listings/{listing['item_id']}/duplicates").status_code == 200
        assert writer.post("/v1/match", json=listings[0]).status_code == 200


def test_shared_server_logged_no_traceback(server):
    """Every failure the tests above provoked was an expected one: none left a traceback."""
    assert "Traceback" not in "".join(server.log), "".join(server.log)[-6000:]


# --------------------------------------------------------------------------- timeout


def test_slow_index_work_answers_504(catalogue, tmp_path):
    srv = Server(fresh_index(catalogue, tmp_path), env_tokens=False, no_auth=True, timeout_s=0.001, max_batch=100)
    try:
        with srv.client() as reader:  # --no-auth: no token needed
            slow = reader.post("/v1/match", json={"listings": catalogue.queries[:60]})
            assert slow.status_code in (503, 504)
            assert "within" in strict_json(slow)["detail"]
            assert reader.get("/healthz").status_code == 200  # the server itself is fine
            assert re.search(r'^dupsearch_request_timeouts_total\{route="/v1/match"\} [1-9]',
                             reader.get("/metrics").text, re.M)
    finally:
        srv.stop()


# --------------------------------------------------------------------------- 1. kill -9 mid-stream


def test_kill9_during_upserts_keeps_every_acknowledged_write(catalogue, tmp_path):
    index = fresh_index(catalogue, tmp_path)
    tokens = tmp_path / "tokens.txt"  # this server reads its tokens from a file
    tokens.write_text(f"# dupsearch serve tokens\nread:{READ_TOKEN}\n\nwrite:{WRITE_TOKEN}\n")
    srv = Server(index, env_tokens=False, tokens_file=str(tokens))
    acknowledged: list[str] = []
    attempted: list[str] = []
    refused: list[str] = []  # answered, but not 200: there should be none
    stop = threading.Event()
    lock = threading.Lock()

    def stream(worker: int):
        with srv.client(WRITE, timeout=30) as writer:
            for n in range(10_000):
                if stop.is_set():
                    return
                item_id = f"kill-{worker}-{n}"
                listing = renamed(catalogue.queries[(worker * 7 + n) % len(catalogue.queries)], item_id)
                with lock:
                    attempted.append(item_id)
                try:
                    answer = writer.put(f"/v1/listings/{item_id}", json=listing)
                except httpx.TransportError:
                    return  # the server died with this request in flight: not acknowledged
                with lock:
                    if answer.status_code == 200:
                        acknowledged.append(item_id)
                    else:
                        refused.append(f"{item_id}: {answer.status_code} {answer.text[:200]}")

    workers = [threading.Thread(target=stream, args=(w,)) for w in range(8)]
    for t in workers:
        t.start()
    deadline = time.monotonic() + 30
    while len(acknowledged) < 40 and time.monotonic() < deadline:
        time.sleep(0.02)
    srv.kill()  # kill -9 with upserts in flight
    stop.set()
    for t in workers:
        t.join(timeout=60)
    assert not refused, refused
    assert len(acknowledged) >= 40, "too few upserts were answered before the kill"

    restarted = Server(index, env_tokens=False, tokens_file=str(tokens))
    try:
        with restarted.client(READ) as reader:
            for item_id in acknowledged:
                answer = reader.get(f"/v1/listings/{item_id}/duplicates")
                assert answer.status_code == 200, f"acknowledged upsert {item_id} lost: {answer.text}"
            health = strict_json(reader.get("/healthz"))
    finally:
        restarted.stop()

    idx = Index.open(index, verify=True)  # every file matches its digest
    present = [i for i in attempted if i in idx]
    assert set(acknowledged) <= set(present)
    assert len(idx) == N_INDEXED + len(present) == health["listings"]
    assert idx.stats()["listings"] == len(idx)
    idx.upsert(pd.DataFrame([renamed(catalogue.queries[0], "after-kill")]))  # writable again
    assert "after-kill" in idx
    idx.close()


# --------------------------------------------------------------------------- graceful shutdown


def test_sigterm_commits_the_writes_in_flight(catalogue, tmp_path):
    index = fresh_index(catalogue, tmp_path)
    srv = Server(index)
    listings = [renamed(q, f"term-{i}") for i, q in enumerate(catalogue.queries[:48])]
    answers: dict[str, tuple] = {}

    def put(listing):
        with srv.client(WRITE, timeout=60) as writer:
            try:
                code = writer.put(f"/v1/listings/{listing['item_id']}", json=listing).status_code
            except httpx.TransportError:
                code = None  # sent after the server stopped listening: not acknowledged
        answers[listing["item_id"]] = (code, time.monotonic())

    def queued(reader) -> int:
        found = re.search(r"^dupsearch_write_queue_listings (\d+)", reader.get("/metrics").text, re.M)
        return int(found.group(1))

    with ThreadPoolExecutor(24) as pool, srv.client(READ) as reader:
        for listing in listings:
            pool.submit(put, listing)
        deadline = time.monotonic() + 30
        waiting = 0
        while time.monotonic() < deadline:  # SIGTERM while a commit runs and writes wait behind it
            waiting = queued(reader)
            if waiting:
                break
            time.sleep(0.005)
        assert waiting, "no write was ever queued behind a commit"
        terminated_at = time.monotonic()
        srv.stop()
    assert "Traceback" not in "".join(srv.log), "".join(srv.log)
    codes = [code for code, _ in answers.values()]
    assert set(codes) <= {200, 503, None}, codes
    finished_after = [i for i, (code, at) in answers.items() if code == 200 and at > terminated_at]
    assert len(finished_after) >= waiting, "writes queued at SIGTERM were not all committed and answered"
    idx = Index.open(index)
    assert all(item_id in idx for item_id, (code, _) in answers.items() if code == 200)
    idx.close()


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:  # a kernel without CONFIG_PROC_CHILDREN: the processes whose parent it is
        out = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(stat.parent.name))
            except (OSError, ValueError, IndexError):
                pass
        return sorted(out)


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
def test_worker_processes_share_the_port_and_see_each_others_writes(catalogue, tmp_path):
    """`--workers 2`: two processes accept on one port. With one of them stopped (SIGSTOP) the
    other answers every new connection, so a write through one worker and a read through the
    other is forced, both ways; SIGTERM then stops both gracefully."""
    index = fresh_index(catalogue, tmp_path)
    srv = Server(index, workers=2)
    assert "2 worker processes" in "".join(srv.log)
    deadline = time.monotonic() + START_TIMEOUT
    while len(_children(srv.proc.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    first, second = _children(srv.proc.pid)
    listing = renamed(catalogue.queries[0], "two-workers-1")

    def through(worker: int, other: int, call):
        os.kill(other, signal.SIGSTOP)
        try:
            with srv.client(WRITE) as c:  # a new connection: only `worker` can accept it
                return call(c)
        finally:
            os.kill(other, signal.SIGCONT)

    for _ in range(2):  # each worker's first request warms it (both must be up before the stops)
        assert through(first, second, lambda c: c.get("/healthz")).status_code == 200
        assert through(second, first, lambda c: c.get("/healthz")).status_code == 200
    r = through(first, second, lambda c: c.put("/v1/listings/two-workers-1", json=listing))
    assert r.status_code == 200, r.text
    r = through(second, first, lambda c: c.get("/v1/listings/two-workers-1/duplicates"))
    assert r.status_code == 200, r.text
    assert r.json()["item_id"] == "two-workers-1"
    # each worker's metrics are series of their own (else one series would jump between two
    # counts), and a scrape through either worker gives both workers' series (their snapshots,
    # each written every METRICS_SNAPSHOT_S and by each scrape it takes: never older than what
    # an earlier scrape showed)
    seen: dict[str, float] = {}
    for worker, other in ((first, second), (second, first), (first, second), (second, first)):
        deadline = time.monotonic() + 30
        while True:  # the other worker's snapshot since the PUT: within a second or so
            text = through(worker, other, lambda c: c.get("/metrics")).text
            samples = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
            upserts = [ln for ln in samples if ln.startswith("dupsearch_upserts_committed_total")]
            if sum(float(ln.split()[-1]) for ln in upserts) == 1 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert {re.search(r'worker="(\d+)"', ln).group(1) for ln in samples} == {"1", "2"}
        assert len(upserts) == 2 and sum(float(ln.split()[-1]) for ln in upserts) == 1, upserts
        requests = {ln.split()[0]: float(ln.split()[-1]) for ln in samples
                    if ln.startswith("dupsearch_http_requests_total")}
        assert all(requests.get(name, 0) >= before for name, before in seen.items()), (seen, requests)
        seen = requests
        helps = [ln for ln in text.splitlines() if ln.startswith("# HELP ")]
        assert len(helps) == len(set(helps)), "a family's HELP twice"
        family = None
        for ln in text.splitlines():  # every sample under its own family's header
            if ln.startswith("# HELP "):
                family = ln.split()[2]
            elif ln and not ln.startswith("#"):
                assert family and ln.split("{")[0].split()[0].startswith(family), (family, ln)
    n = through(second, first, lambda c: c.get("/healthz")).json()["listings"]
    assert through(first, second, lambda c: c.get("/healthz")).json()["listings"] == n
    assert through(second, first, lambda c: c.delete("/v1/listings/two-workers-1")).status_code == 200
    assert through(first, second, lambda c: c.get("/v1/listings/two-workers-1/duplicates")).status_code == 404
    assert srv.stop() == 0
    assert not Path(f"/proc/{first}").exists() and not Path(f"/proc/{second}").exists()
    assert "Traceback" not in "".join(srv.log), "".join(srv.log)
    idx = Index.open(index, verify=True)
    assert "two-workers-1" not in idx and len(idx) == n - 1
    idx.close()


# --------------------------------------------------------------------------- 2. fuzzing: no 5xx


def test_fuzzed_requests_never_get_a_server_error(catalogue, tmp_path):
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st

    srv = Server(fresh_index(catalogue, tmp_path), max_body_bytes=MAX_BODY, max_batch=MAX_BATCH)
    try:
        schema = schemathesis.openapi.from_url(srv.url + "/openapi.json", timeout=30)
        strategy = st.one_of(schema.as_strategy(), schema.as_strategy(schemathesis.GenerationMode.NEGATIVE))
        seen: dict[str, set] = {}

        # a fixed, small sample here; DUPSEARCH_FUZZ_EXAMPLES=2000 explores more (random each run)
        @settings(max_examples=FUZZ_EXAMPLES or 80, derandomize=not FUZZ_EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck), phases=[Phase.generate, Phase.shrink])
        @given(case=strategy)
        def no_server_error(case):
            response = case.call(base_url=srv.url, headers=WRITE, timeout=60)
            seen.setdefault(f"{case.method} {case.path}", set()).add(response.status_code)
            assert response.status_code < 500, (
                f"{case.as_curl_command()} -> {response.status_code}: {response.text[:500]}\n"
                f"server log:\n{''.join(srv.log)[-4000:]}")

        no_server_error()
        assert len(seen) >= 5, seen  # every operation was tried
        with srv.client() as anonymous:
            assert anonymous.get("/healthz").status_code == 200
    finally:
        srv.stop()
    assert "Traceback" not in "".join(srv.log), "".join(srv.log)


# --------------------------------------------------------------------------- tokens and start-up refusals


def test_token_files_and_scopes(tmp_path, monkeypatch):
    from dupsearch.serve.auth import TokenError, TokenStore, load_tokens
    read, write = "r" * 20, "w" * 20
    path = tmp_path / "tokens"
    path.write_text(f"# comment\nread:{read}\n  write:{write}  \n\n")
    monkeypatch.setenv("DUPSEARCH_TOKENS", f"read:{'e' * 20}")
    store = load_tokens(path)
    assert len(store) == 3
    assert store.allows(read, "read") is True and store.allows(read, "write") is False
    assert store.allows(write, "write") is True and store.allows(write, "read") is True
    assert store.allows("e" * 20, "read") is True
    assert store.allows("x" * 20, "read") is None and store.allows(None, "read") is None
    assert read not in repr(vars(store))  # only digests are kept
    for text, words in [("admin:" + "a" * 20, ["entry 1", "admin"]), ("read:short", ["entry 1", "at least"]),
                        ("# ok\nno-scope-here", ["entry 2", "read:<token>"])]:
        path.write_text(text)
        with pytest.raises(TokenError) as error:
            TokenStore.from_file(path)
        assert all(w in str(error.value) for w in words) and "\n" not in str(error.value)
    with pytest.raises(TokenError, match="not found"):
        TokenStore.from_file(tmp_path / "missing")


def test_run_server_refuses_to_start_without_tokens(catalogue, monkeypatch):
    from dupsearch.errors import DupsearchError
    from dupsearch.serve import run_server
    monkeypatch.delenv("DUPSEARCH_TOKENS", raising=False)
    with pytest.raises(DupsearchError, match="no API tokens.*--no-auth") as error:
        run_server(catalogue.index, port=0)
    assert "\n" not in str(error.value)


def test_worker_processes_refuse_a_folder_that_is_no_index_before_forking(tmp_path):
    from dupsearch.errors import DupsearchError
    from dupsearch.serve import run_server
    (tmp_path / "manifest.json").write_text("{}")
    for folder in (tmp_path, tmp_path / "missing"):
        with pytest.raises(DupsearchError, match="not a readable dupsearch index") as error:
            run_server(folder, port=0, no_auth=True, workers=2)
        assert "\n" not in str(error.value) and str(folder) in str(error.value)
    with pytest.raises(DupsearchError, match="workers must be at least 1"):
        run_server(tmp_path, port=0, no_auth=True, workers=0)


def test_run_server_names_the_extra_when_fastapi_is_missing(catalogue):
    code = ("import sys; sys.modules['fastapi'] = None\n"  # as if not installed
            "from dupsearch.encoders.base import MissingDependencyError\n"
            "from dupsearch.serve import run_server\n"
            "try:\n    run_server(sys.argv[1], no_auth=True)\n"
            "except MissingDependencyError as e:\n    print(e)\n")
    done = subprocess.run([sys.executable, "-c", code, str(catalogue.index)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "pip install 'dupsearch[serve]'" in done.stdout


def test_import_dupsearch_does_not_import_fastapi():
    code = ("import sys, dupsearch, dupsearch.serve, dupsearch.serve.auth; "
            "print(sorted(m for m in ('fastapi', 'uvicorn', 'starlette') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[]", (done.stdout, done.stderr)
