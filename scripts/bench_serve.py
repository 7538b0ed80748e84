"""Load test of `dupsearch serve` on 127.0.0.1: latencies with concurrent clients, throughput.

    python scripts/bench_serve.py --index OUT/index --listings M/listings.parquet --json OUT/serve.json \\
        [--clients 20] [--write-clients 200] [--requests 2000] [--max-seconds 120]

Starts the real server (`dupsearch serve --port 0`, a token file in a temporary folder) on the
index that `python -m dupsearch.bench.index` built, then, with a bounded asyncio client (httpx):

1. single-listing matches: ``--clients`` concurrent clients send ``POST /v1/match`` with one
   held-back listing each (the same held-back set as the index benchmark), ``--requests`` in all
   or until ``--max-seconds``: p50 / p90 / p99 latency and matches per second. Twice: closed loop
   (each client sends its next request when the last is answered: the most the service answers,
   and latencies that are mostly waiting in line, about clients / throughput) and paced (open
   loop: the same clients send at ``--rate`` requests per second in all, and each latency counts
   from the moment the request was due, so a service that falls behind shows it);
2. batch matches: ``POST /v1/match`` with 1,000 listings, three times: listings per second
   (with ``--workers`` N, N such requests at once, different listings: one per worker);
3. upserts: the clients ``PUT /v1/listings/{id}`` every held-back listing (the server commits
   concurrent writes together): upserts per second and latencies; then ``DELETE`` them again,
   so that the index holds the same listings again. It does not hold the same files: the
   upserts' segments stay (merged beyond 12, with the deleted rows) until `dupsearch index compact`,
   and a match searches each of them, so a rerun on the same index can read lower (on the
   million listings, batches 495-522 listings/s against 999 on the fresh build, 20 writers 61-82
   upserts/s against 97); `bench_index.sh` builds the index anew first. Twice: with ``--clients``
   writers, then with ``--write-clients`` (default 200: many sellers posting at once; the
   writes that wait together are one commit, so groups grow with the writers);
4. bulk upserts: ``POST /v1/listings`` with ``--bulk`` (500) held-back listings a request, one
   request per worker at a time, every held-back listing: listings per second, answered with
   each one's matches, and again with ``top=0`` (no matches: a feed loaded as fast as it
   commits); each followed by deleting them again.

``--workers`` N starts the server with N worker processes (``dupsearch serve --workers``); the
server's CPU seconds then sum the workers'. Every request must answer 200; any other status is
counted and reported. Bounded in count and time; only 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import re
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd



def _records(frame: pd.DataFrame) -> list[dict]:
    keep = ["item_id", "title", "description", "category_l1", "category_l2", "category_l3", "category_l4",
            "attributes", "price", "images", "seller_id", "city"]
    out = []
    for r in frame[[c for c in keep if c in frame.columns]].to_dict(orient="records"):
        r["attributes"] = {str(k): str(v) for k, v in dict(r.get("attributes") or {}).items()}
        r["images"] = [str(p) for p in (r.get("images") if r.get("images") is not None else [])]
        price = r.get("price")
        r["price"] = None if price is None or (isinstance(price, float) and not math.isfinite(price)) else float(price)
        for k in ("title", "description", "category_l1", "category_l2", "category_l3", "category_l4",
                  "seller_id", "city"):
            if k in r and (r[k] is None or (isinstance(r[k], float) and math.isnan(r[k]))):
                r[k] = ""
            elif k in r:
                r[k] = str(r[k])
        r["item_id"] = str(r["item_id"])
        out.append(r)
    return out


def _percentiles(ms: list[float]) -> dict:
    a = np.asarray(ms)
    return {"p50_ms": round(float(np.percentile(a, 50)), 1), "p90_ms": round(float(np.percentile(a, 90)), 1),
            "p99_ms": round(float(np.percentile(a, 99)), 1), "max_ms": round(float(a.max()), 1)}


class Server:
    def __init__(self, index: Path, token: str, log: Path, workers: int = 1):
        self.workers = workers
        self.tokens = Path(tempfile.mkdtemp()) / "tokens"
        self.tokens.write_text(f"write:{token}\n")
        self.log = open(log, "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "dupsearch.cli.main", "serve", str(index), "--port", "0",
                                      "--tokens", str(self.tokens), "--max-batch", "2000", "--timeout", "120",
                                      "--workers", str(workers)],
                                     stderr=subprocess.PIPE, stdout=self.log, text=True)
        deadline = time.time() + 300
        self.url = None
        while time.time() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            self.log.write(line)
            found = re.search(r"listening on (http://[^\s/]+)", line)
            if found:
                self.url = found.group(1)
                break
        if self.url is None:
            self.proc.kill()
            raise SystemExit(f"the server did not start (log: {log})")
        # keep reading the server's stderr into the log: a full pipe would stall the server
        self._drain = threading.Thread(target=lambda: [self.log.write(ln) for ln in self.proc.stderr], daemon=True)
        self._drain.start()

    def wait_warm(self, limit_s: float = 600) -> float:
        """Seconds until /healthz says the index's start-up warm-up is done (at most ``limit_s``)."""
        import httpx
        t0 = time.perf_counter()
        in_a_row = 0  # each answer comes from one worker: every one of them has to say so
        while time.perf_counter() - t0 < limit_s:
            warm = httpx.get(self.url + "/healthz", timeout=10).json().get("warm")
            in_a_row = in_a_row + 1 if warm else 0
            if in_a_row >= 4 * self.workers:
                break
            time.sleep(0.05 if warm else 0.2)
        return time.perf_counter() - t0

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._drain.join(5)
        self.log.close()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` and its live children so far (Linux /proc:
    the server's worker processes)."""
    def own(p: int) -> float:
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    try:
        children = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        children = []
    return own(pid) + sum(own(c) for c in children)


class _CPU:
    """CPU seconds the load generator (this process) and the server spent in a phase: with both
    on the same 2 cores, a client that needs much of a core bounds what the server can show."""

    def __init__(self, server_pid: int | None):
        self.pid = server_pid

    def __enter__(self):
        self.client = time.process_time()
        self.server = _cpu_seconds(self.pid) if self.pid else None
        return self

    def __exit__(self, *exc):
        self.seconds = {"client": round(time.process_time() - self.client, 2)}
        if self.pid:
            self.seconds["server"] = round(_cpu_seconds(self.pid) - self.server, 2)


class _Connection:
    """One keep-alive HTTP/1.1 connection of one client: a request is pre-encoded bytes, the
    answer is read up to its Content-Length. The load generator shares the server's 2 cores, so
    it must cost little: httpx spent ~2.5 ms of CPU a request (a third of a core at 150
    requests/s, CPU the server then lacks); this ~0.1 ms. Statuses are checked as before."""

    def __init__(self, url: str, token: str):
        found = re.match(r"http://([^:/]+):(\d+)", url)
        self.host, self.port = found.group(1), int(found.group(2))
        self.head = f"Host: {self.host}:{self.port}\r\nAuthorization: Bearer {token}\r\n".encode()
        self.reader = self.writer = None

    async def request(self, method: str, path: str, body: bytes | None = None) -> int:
        async with asyncio.timeout(300):  # as httpx's timeout was: a stuck answer fails the run
            return await self._request(method, path, body)

    async def _request(self, method: str, path: str, body: bytes | None) -> int:
        for attempt in (0, 1):  # a connection the server closed (idle, shutting down) is opened again once
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            head = f"{method} {path} HTTP/1.1\r\n".encode() + self.head
            if body is not None:
                head += b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
            try:
                self.writer.write(head + b"\r\n" + (body or b""))
                status_line = await self.reader.readuntil(b"\r\n")
                headers = await self.reader.readuntil(b"\r\n\r\n")
            except (ConnectionError, asyncio.IncompleteReadError):
                await self.close()
                if attempt:
                    raise
                continue
            length = re.search(rb"(?i)\r?\ncontent-length:\s*(\d+)", b"\r\n" + headers)
            await self.reader.readexactly(int(length.group(1)) if length else 0)
            if re.search(rb"(?i)\r\nconnection:\s*close", b"\r\n" + headers):
                await self.close()
            return int(status_line.split()[1])
        raise AssertionError("unreachable")

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()
        self.reader = self.writer = None


async def _run_clients(n_clients: int, jobs: list, send, max_seconds: float) -> tuple[list[float], dict, float]:
    queue: asyncio.Queue = asyncio.Queue()
    for j in jobs:
        queue.put_nowait(j)
    latencies: list[float] = []
    statuses: dict = {}
    stop_at = time.perf_counter() + max_seconds

    async def client(slot: int):
        while time.perf_counter() < stop_at:
            try:
                job = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            t = time.perf_counter()
            status = await send(job, slot)
            latencies.append((time.perf_counter() - t) * 1000)
            statuses[status] = statuses.get(status, 0) + 1

    t0 = time.perf_counter()
    await asyncio.gather(*[client(slot) for slot in range(n_clients)])
    return latencies, statuses, time.perf_counter() - t0


async def _run_paced(n_clients: int, jobs: list, send, rate: float, max_seconds: float
                     ) -> tuple[list[float], dict, float]:
    """Open loop: job i is due at i / rate seconds; a free client sends the next due job (or
    waits for it), and its latency counts from when it was due (no coordinated omission)."""
    latencies: list[float] = []
    statuses: dict = {}
    t0 = time.perf_counter()
    stop_at = t0 + max_seconds
    next_job = 0

    async def client(slot: int):
        nonlocal next_job
        while next_job < len(jobs) and time.perf_counter() < stop_at:
            i = next_job
            next_job += 1
            due = t0 + i / rate
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            status = await send(jobs[i], slot)
            latencies.append((time.perf_counter() - due) * 1000)
            statuses[status] = statuses.get(status, 0) + 1

    await asyncio.gather(*[client(slot) for slot in range(n_clients)])
    return latencies, statuses, time.perf_counter() - t0


async def _bench(url: str, token: str, records: list[dict], clients: int, requests: int, max_seconds: float,
                 rate: float = 200.0, server_pid: int | None = None, write_clients: int = 200,
                 workers: int = 1, bulk: int = 500) -> dict:
    import httpx
    headers = {"Authorization": f"Bearer {token}"}
    out: dict = {}
    # httpx for the few large requests (batches, /healthz, /metrics); each client its own raw
    # keep-alive connection for the many small ones (_Connection)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=300) as http:
        conns = [_Connection(url, token) for _ in range(max(clients, write_clients))]
        bodies = {rec["item_id"]: json.dumps(rec).encode() for rec in records}

        async def match_one(rec, slot=0):
            return await conns[slot].request("POST", "/v1/match", bodies[rec["item_id"]])

        for rec in records[:20]:  # warm-up
            await match_one(rec)
        jobs = [records[i % len(records)] for i in range(requests)]
        with _CPU(server_pid) as cpu:
            lat, st, secs = await _run_clients(clients, jobs, match_one, max_seconds)
        out["single_match"] = {"clients": clients, "requests": len(lat), "seconds": round(secs, 2),
                               "per_second": round(len(lat) / secs, 1), "statuses": st, **_percentiles(lat),
                               "cpu_seconds": cpu.seconds}
        with _CPU(server_pid) as cpu:
            lat, st, secs = await _run_paced(clients, jobs, match_one, rate, max_seconds)
        out["single_match_paced"] = {"clients": clients, "offered_per_second": rate, "requests": len(lat),
                                     "seconds": round(secs, 2), "per_second": round(len(lat) / secs, 1),
                                     "statuses": st, **_percentiles(lat), "cpu_seconds": cpu.seconds}

        batches = [records[(w * 1000) % len(records):][:1000] for w in range(workers)]

        async def match_batch(batch):
            r = await http.post("/v1/match", json={"listings": batch})
            assert r.status_code == 200, r.text[:300]

        times = []
        with _CPU(server_pid) as cpu:
            for _ in range(3):
                t = time.perf_counter()
                await asyncio.gather(*[match_batch(b) for b in batches])
                times.append(time.perf_counter() - t)
        listings = sum(len(b) for b in batches)
        out["batch_match"] = {"batch": len(batches[0]), "concurrent": len(batches),
                              "seconds": [round(t, 2) for t in times],
                              "listings_per_second": round(listings / float(np.median(times)), 1),
                              "cpu_seconds": cpu.seconds}

        async def upsert(rec, slot=0):
            return await conns[slot].request("PUT", f"/v1/listings/{quote(rec['item_id'], safe='')}",
                                             bodies[rec["item_id"]])

        async def delete(rec, slot=0):
            return await conns[slot].request("DELETE", f"/v1/listings/{quote(rec['item_id'], safe='')}")

        # every held-back listing upserted, then deleted, by `clients` writers and again by
        # `write_clients` (a marketplace's stream of new listings from many sellers at once: the
        # server commits the writes waiting together as one segment)
        for suffix, n_clients in (("", clients), ("_many", write_clients)):
            with _CPU(server_pid) as cpu:
                lat, st, secs = await _run_clients(n_clients, list(records), upsert, max_seconds * 5)
            out["upsert" + suffix] = {"clients": n_clients, "requests": len(lat), "seconds": round(secs, 2),
                                      "per_second": round(len(lat) / secs, 1), "statuses": st,
                                      **_percentiles(lat), "cpu_seconds": cpu.seconds}
            health = (await http.get("/healthz")).json()
            out["listings_after_upserts" + suffix] = health.get("listings")
            metrics = (await http.get("/metrics")).text
            out["metrics_sample" + suffix] = [ln for ln in metrics.splitlines()
                                              if "batch" in ln and not ln.startswith("#")][:8]
            with _CPU(server_pid) as cpu:
                lat, st, secs = await _run_clients(n_clients, list(records), delete, max_seconds * 5)
            out["delete" + suffix] = {"clients": n_clients, "requests": len(lat), "seconds": round(secs, 2),
                                      "per_second": round(len(lat) / secs, 1), "statuses": st,
                                      **_percentiles(lat), "cpu_seconds": cpu.seconds}
            out["listings_after_deletes" + suffix] = (await http.get("/healthz")).json().get("listings")

        # bulk upserts (POST /v1/listings): every held-back listing again, `bulk` a request, one
        # request a worker at a time; answered with each one's matches, then without (top=0: a
        # feed loaded as fast as it commits); deleted again after each
        chunks = [records[i:i + bulk] for i in range(0, len(records), bulk)]
        for suffix, top in (("", 10), ("_no_matches", 0)):
            pending = list(chunks)
            times: list[float] = []

            async def sender():
                while pending:
                    chunk = pending.pop(0)
                    t = time.perf_counter()
                    r = await http.post("/v1/listings", json={"listings": chunk}, params={"top": top})
                    assert r.status_code == 200, r.text[:300]
                    times.append(time.perf_counter() - t)

            with _CPU(server_pid) as cpu:
                t = time.perf_counter()
                await asyncio.gather(*[sender() for _ in range(workers)])
                secs = time.perf_counter() - t
            out["bulk_upsert" + suffix] = {"batch": bulk, "concurrent": workers, "top": top,
                                           "requests": len(times), "listings": len(records),
                                           "seconds": round(secs, 2),
                                           "listings_per_second": round(len(records) / secs, 1),
                                           "request_seconds": [round(x, 2) for x in times],
                                           "cpu_seconds": cpu.seconds}
            out["listings_after_bulk_upserts" + suffix] = (await http.get("/healthz")).json().get("listings")
            lat, st, secs = await _run_clients(write_clients, list(records), delete, max_seconds * 5)
            assert set(st) == {200}, st
        for conn in conns:
            await conn.close()
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("--listings", type=Path, required=True, help="the market the index benchmark read")
    ap.add_argument("--hold", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--write-clients", type=int, default=200,
                    help="concurrent writers of the second upsert phase (the first has --clients)")
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--max-seconds", type=float, default=120)
    ap.add_argument("--rate", type=float, default=200.0, help="offered single matches per second (paced phase)")
    ap.add_argument("--workers", type=int, default=1, help="the server's worker processes (`serve --workers`)")
    ap.add_argument("--bulk", type=int, default=500, help="listings a request in the bulk upsert phases")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    if not a.rate > 0:
        ap.error("--rate must be a positive number of requests per second")
    from dupsearch import read_listings
    from dupsearch.bench.index import held_back
    from dupsearch.bench.runner import source_commit
    source = source_commit()  # the code that runs: taken before, not after
    listings, _ = read_listings(a.listings)
    records = _records(listings.iloc[held_back(listings, a.hold)])
    token = secrets.token_urlsafe(24)
    log = (a.json.parent if a.json else Path(".")) / "serve.log"
    t0 = time.perf_counter()
    server = Server(a.index, token, log, a.workers)
    started = time.perf_counter() - t0
    try:
        warm_wait = server.wait_warm()  # the timed phases run on a warm index, as a service that has been up
        res = asyncio.run(_bench(server.url, token, records, a.clients, a.requests, a.max_seconds, a.rate,
                                 server_pid=server.proc.pid, write_clients=a.write_clients,
                                 workers=a.workers, bulk=a.bulk))
    finally:
        server.stop()
    res = {**source, "server_start_seconds": round(started, 1), "warm_wait_seconds": round(warm_wait, 1),
           "cpus": os.cpu_count(), "workers": a.workers, **res}
    print(json.dumps(res, indent=1))
    if a.json:
        from dupsearch.atomic import atomic_write_json
        atomic_write_json(a.json, res)


if __name__ == "__main__":
    main()
