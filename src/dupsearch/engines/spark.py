"""Catalogue dedup on Apache Spark (extra ``spark``): the local engine's stages as Spark jobs.

No jar to register: everything runs through PySpark's Arrow UDFs and plain DataFrame
operations. The stages, each written to OUT and reused by a rerun that finds it whole:

1. ``listings.parquet/``: the input's row groups read by executors with the same reader and
   validation as the local engine (``normalize_listings``), each listing with its row number
   (its position in the input, as the local engine numbers it);
2. ``candidates.parquet/``: key blockers as joins on their keys (blocks above a blocker's limit
   skipped and counted, as locally); ANN blockers within their partitions through
   ``groupBy(partition).applyInArrow``, each partition searched by ``ANNBlocker.partition_pairs``
   (exact search for small partitions, HNSW for large ones, as locally), with vectors from a
   vectoriser fitted on the driver from the same sample rows the local engine reads; the union
   with each pair's blocker mask (``bit_or``);
3. ``scores/``: pairs grouped by the scoring group of their first listing (whole partitions of
   the first ANN blocker hashed into groups of ~10,000 listings) and cogrouped with the listings
   they name; each group
   builds a listing store of its listings once and scores its pairs with
   ``DuplicateMatcher.score`` (the model shipped once to every executor with ``addFile``);
4. ``clusters.parquet/``, ``duplicates.parquet/``: connected components with the large-star /
   small-star algorithm (Kiveris et al., SoCC 2014) over the pairs at the threshold, then CENTER
   and average-link inside each component by ``cluster_graph`` (``groupBy(component)``), so
   components above ``max_component`` fall back to CENTER and are counted as locally; labels
   numbered as the local engine numbers them (clusters in the order of their smallest item id).

Outputs have the local engine's names and columns; Spark writes each as a folder of Parquet
parts (``pandas.read_parquet`` and Spark read either). ``report.json`` holds the same figures
plus wall time and peak memory per stage.

The rows of a folder of Parquet files follow the files' names; CSV and JSON inputs are refused
with a line that says to write them as Parquet (Spark reads Parquet in parallel; the local
readers do not split a CSV file).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from dupsearch.atomic import atomic_write_json, atomic_write_text
from dupsearch.config import DedupConfig
from dupsearch.digests import file_sha256, folder_sha256
from dupsearch.engines.base import Engine, RunMismatchError, StageClock, clustering_settings, locked_run
from dupsearch.encoders.base import MissingDependencyError
from dupsearch.engines.spark_frames import _cluster_metrics, _dense_index, connected_components
from dupsearch.engines.spark_tasks import (ERROR_MARK, _ann_partition, _ann_vectors, _block_keys,
                                           _cluster_components, _guarded, _guarded_batches, _listings_of,
                                           _read_row_groups, _score_group, _to_arrow)
from dupsearch.errors import DataError, DupsearchError

LISTINGS = "listings.parquet"
CANDIDATES = "candidates.parquet"
SCORES = "scores"
DUPLICATES = "duplicates.parquet"
CLUSTERS = "clusters.parquet"
REPORT = "report.json"
MANIFEST = "manifest.json"
SPARK_LOG = "spark.log"  # the JVM's own output (warnings, errors) of the runs into OUT
STAGE_MARK = "_dupsearch.json"  # inside a finished stage folder: the run it belongs to
READ_SLICE = 100_000  # input rows per reading task at most
SCORE_TARGET = 10_000  # listings per scoring group, about (one listing store each)
SCORE_GROUP = 20_000  # listings per scoring group at most
FORMAT_VERSION = 1


# ---------------------------------------------------------------------------------- session
def spark_session(master: str | None = None, log_path: Path | None = None):
    """A SparkSession: ``master`` given, else the one a ``spark-submit`` set, else ``local[*]``.
    Local sessions bind to 127.0.0.1 and start no UI; Python workers run this interpreter.
    ``log_path``: where the JVM's own output goes (its warnings and errors, appended), so that
    the console shows dupsearch's lines only; None: the console."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise MissingDependencyError("the Spark engine needs pyspark: pip install 'dupsearch[spark]' "
                                     "(and Java 17 on the PATH)") from None
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    b = SparkSession.builder.appName("dupsearch-dedup")
    master = master or os.environ.get("DUPSEARCH_SPARK_MASTER")
    if master:
        b = b.master(master)
    elif "spark.master" not in os.environ.get("PYSPARK_SUBMIT_ARGS", ""):
        b = b.master("local[*]")
    if (master or "local").startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        b = (b.config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
             .config("spark.driver.memory", os.environ.get("DUPSEARCH_SPARK_DRIVER_MEMORY", "4g")))
    # Spark's own log: errors only (its default profile prints INFO lines and a banner)
    import tempfile
    text = ("rootLogger.level = error\nrootLogger.appenderRef.stderr.ref = stderr\n"
            "appender.console.type = Console\nappender.console.name = stderr\n"
            "appender.console.target = SYSTEM_ERR\nappender.console.layout.type = PatternLayout\n"
            "appender.console.layout.pattern = spark %p %c{1}: %m%n\n")
    log4j = Path(tempfile.gettempdir()) / f"dupsearch-spark-log4j2-{hashlib.sha256(text.encode()).hexdigest()[:12]}.properties"
    if not log4j.exists():
        atomic_write_text(log4j, text)
    b = b.config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile=file:{log4j}")
    for key, value in {"spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false",
                       "spark.sql.execution.arrow.pyspark.enabled": "true",
                       "spark.sql.execution.arrow.maxRecordsPerBatch": "5000",
                       "spark.python.worker.reuse": "true",
                       "spark.executorEnv.OMP_NUM_THREADS": "1", "spark.executorEnv.OPENBLAS_NUM_THREADS": "1",
                       "spark.executorEnv.MKL_NUM_THREADS": "1"}.items():
        b = b.config(key, value)
    saved = None
    if log_path is not None:  # the JVM started now inherits this stderr for its whole life
        sink = open(log_path, "ab")
        saved = os.dup(2)
        sys.stderr.flush()
        os.dup2(sink.fileno(), 2)
        sink.close()
    try:
        spark = b.getOrCreate()
    finally:
        if saved is not None:
            os.dup2(saved, 2)
            os.close(saved)
    spark.sparkContext.setLogLevel("ERROR")  # a failed task is also one line from the engine
    return spark




class _JobProgress:
    """A progress bar of the Spark tasks a stage runs (all jobs started inside the block, from
    the status tracker, polled every half second); nothing when not enabled."""

    def __init__(self, spark, description: str, enabled: bool):
        self.spark, self.description, self.enabled = spark, description, enabled

    def __enter__(self):
        if not self.enabled:
            return self
        import threading
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
        self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                  TextColumn("tasks"), TimeElapsedColumn(), console=Console(stderr=True))
        self._progress.__enter__()
        self._task = self._progress.add_task(self.description, total=None)
        self._stop = threading.Event()
        tracker, seen = self.spark.sparkContext.statusTracker(), {}

        def poll():
            while not self._stop.wait(0.5):
                for sid in tracker.getActiveStageIds():
                    info = tracker.getStageInfo(sid)
                    if info is not None:
                        seen[sid] = (info.numTasks, info.numCompletedTasks)
                if seen:
                    self._progress.update(self._task, total=sum(t for t, _ in seen.values()),
                                          completed=sum(c for _, c in seen.values()))

        self._thread = threading.Thread(target=poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        if self.enabled:
            self._stop.set()
            self._thread.join()
            self._progress.__exit__(*exc)
        return False


# ------------------------------------------------------------------------------- the driver
class SparkDedup:
    """One dedup run on Spark into ``out``; ``run()`` does (or resumes) every stage."""

    def __init__(self, listings_path, model_dir, out, config: DedupConfig | None = None, mapping=None,
                 master: str | None = None, progress: bool = True, log: Callable[[str], None] = print):
        self.listings_path, self.model_dir, self.out = Path(listings_path), Path(model_dir), Path(out)
        self.config = config or DedupConfig()
        self.mapping = str(mapping) if mapping is not None else None
        self.master, self.progress, self.log = master, progress, log
        self.report: dict = {}
        self.clock = StageClock()

    # -- input files and identity
    def _files(self) -> list[Path]:
        p = self.listings_path
        if not p.exists():
            raise DataError("file not found", path=str(p))
        files = sorted(f for f in p.rglob("*.parquet") if f.is_file()) if p.is_dir() else [p]
        if not files:
            raise DataError("a folder with no .parquet files", path=str(p))
        for f in files:
            if f.suffix.lower() != ".parquet":
                raise DataError("the Spark engine reads Parquet (a file or a folder of files); write the "
                                "listings as Parquet first, e.g. pandas.read_csv(...).to_parquet(...)", path=str(f))
        return files

    def _identity(self) -> dict:
        h = hashlib.sha256()
        for f in self.files:
            h.update(f.name.encode())
            h.update(file_sha256(f).encode())
        return {"format": FORMAT_VERSION, "engine": "spark", "input_digest": h.hexdigest(),
                "model_dir": str(self.model_dir.resolve()), "model_digest": folder_sha256(self.model_dir),
                "blockers": self.config.blockers, "mapping": file_sha256(self.mapping) if self.mapping else None}

    def _stage_done(self, name: str, run_id: str) -> bool:
        mark = self.out / name / STAGE_MARK
        try:
            return json.loads(mark.read_text()).get("run") == run_id
        except (OSError, ValueError):
            return False

    def _reused(self, name: str, figures: str, run_id: str):
        """Stage ``name`` as this run finished it earlier (its ``figures`` back in the report), or None."""
        if not self._stage_done(name, run_id):
            return None
        path = self.out / name
        mark = json.loads((path / STAGE_MARK).read_text())
        if figures not in mark:
            # the job stopped between the stage's rename into place and its figures: do it again
            self.log(f"{Path(name).stem}: {path} has no {figures} figures (the job stopped right after "
                     f"writing it); computing it again")
            return None
        self.log(f"{Path(name).stem}: reusing {path}")
        self.report[figures] = mark[figures]
        return self.spark.read.parquet(str(path))

    def _write_stage(self, name: str, df, run_id: str) -> None:
        """``df`` written to OUT/name through a temporary folder renamed into place (a killed
        job leaves no half stage that a rerun would take as whole)."""
        tmp = self.out / f".{name}.spark-tmp"
        if tmp.exists():
            shutil.rmtree(tmp)
        df.write.mode("overwrite").parquet(str(tmp))
        atomic_write_text(tmp / STAGE_MARK, json.dumps({"run": run_id}))
        final = self.out / name
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)

    # -- run
    def run(self) -> dict:
        return locked_run(self.out, self._run)

    def _run(self, t0: float) -> dict:
        from dupsearch.models import DuplicateMatcher
        self.files = self._files()
        matcher = DuplicateMatcher.load(self.model_dir, trust=self.config.trust_model)
        self.clustering = clustering_settings(matcher, self.config.threshold)
        verbose = logging.getLogger("dupsearch").isEnabledFor(logging.INFO)
        with self.clock.stage("start"):
            self.spark = spark_session(self.master, None if verbose else self.out / SPARK_LOG)
        for stale in self.out.glob(".*.spark-tmp"):  # a killed job's unfinished stage
            shutil.rmtree(stale)
        try:
            return self._stages(t0)
        except DupsearchError:
            raise
        except Exception as e:  # an executor's DupsearchError arrives wrapped in Java's traceback
            text = str(e)
            if ERROR_MARK in text:
                raise DupsearchError(text.split(ERROR_MARK)[1]) from None
            from pyspark.errors import PySparkException
            from py4j.protocol import Py4JError
            if isinstance(e, (PySparkException, Py4JError)):
                logging.getLogger(__name__).info("Spark failed", exc_info=True)
                first = next((line.strip() for line in text.splitlines() if line.strip()), type(e).__name__)
                raise DupsearchError(f"the Spark job failed: {first[:400]} (rerun with --verbose for "
                                     "Spark's own trace)") from None
            raise

    def _stages(self, t0: float) -> dict:
        spark = self.spark
        tasks, head = self._plan()
        if self.config.blockers is None:  # the default blockers follow the columns present
            from dupsearch.candidates.specs import default_blocker_specs
            self.config.blockers = default_blocker_specs(head)
        identity = self._identity()
        run_id = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
        manifest = self.out / MANIFEST
        if manifest.exists():  # before anything is written: never mix two runs' stages
            have = json.loads(manifest.read_text())
            if have.get("run") != run_id:
                diff = [k for k, v in identity.items() if have.get(k) != v]
                raise RunMismatchError(f"{self.out} holds a dedup run with other input or settings "
                                       f"({', '.join(diff) or 'engine'} differ); use another --out, or --restart")
            self.report["resumed"] = True
        else:
            self.report["resumed"] = False
        listings = self._listings(tasks, head, run_id).drop("load_report")
        # written once the input has been read whole: a run that stops at a bad row leaves nothing
        # that would hold the corrected command to the old input
        atomic_write_text(manifest, json.dumps({**identity, "run": run_id}, indent=2))
        n = int(sum(t[3] for t in tasks))
        self.report.update({"engine": "spark", "master": spark.sparkContext.master,
                            "default_parallelism": spark.sparkContext.defaultParallelism,
                            "listings": n, "out": str(self.out), "blockers": list(self.config.blockers)})
        shuffle = max(spark.sparkContext.defaultParallelism * 2, n // 25_000 + 1)
        spark.conf.set("spark.sql.shuffle.partitions", str(shuffle))
        with self.clock.stage("candidates"), _JobProgress(spark, "blocking", self.progress):
            cands = self._candidates(listings, n, run_id)
        with self.clock.stage("scoring"), _JobProgress(spark, "scoring", self.progress):
            scores = self._scores(listings, cands, run_id)
        with self.clock.stage("clustering"), _JobProgress(spark, "clustering", self.progress):
            self._clusters(listings, scores, n, run_id)
        self.report["stages"] = self.clock.report
        self.report["wall_seconds"] = round(time.perf_counter() - t0, 2)
        self.report["peak_memory_mb"] = max(s["peak_memory_mb"] for s in self.clock.report.values())
        atomic_write_json(self.out / REPORT, self.report)
        return self.report

    # -- stage 1: listings
    def _plan(self) -> tuple[list, pd.DataFrame]:
        """The read tasks (file, row group, first row, rows) and the first row group validated
        (its columns choose the default blockers and the stage's schema)."""
        from dupsearch.io.readers import _as_mapping
        from dupsearch.io.schema import normalize_listings
        tasks, first = [], 0
        for i, f in enumerate(self.files):
            try:
                meta = pq.ParquetFile(f).metadata
            except (pa.ArrowException, OSError) as e:
                raise DataError(f"cannot read as parquet: {e}", path=str(f)) from None
            for rg in range(meta.num_row_groups):
                rows = meta.row_group(rg).num_rows
                for at in range(0, rows, READ_SLICE):  # a large row group is read by several tasks
                    tasks.append((i, rg, at, min(READ_SLICE, rows - at), first + at))
                first += rows
        if first == 0:
            raise DataError("file is empty (no data rows)", path=str(self.listings_path))
        f0 = self.files[tasks[0][0]]
        head = pq.ParquetFile(f0).read_row_group(tasks[0][1]).slice(0, 1000).to_pandas()
        mapping = _as_mapping(self.mapping)
        if mapping is not None:
            head = mapping.apply_listings(head, str(f0))
        frame, _ = normalize_listings(head, source=str(f0))
        return tasks, frame

    def _listings(self, tasks: list, head: pd.DataFrame, run_id: str):
        from pyspark.sql.pandas.types import from_arrow_schema
        spark = self.spark
        path = self.out / LISTINGS
        with self.clock.stage("listings"), _JobProgress(spark, "reading listings", self.progress):
            if not self._stage_done(LISTINGS, run_id):
                schema = _to_arrow(head, np.arange(len(head))).schema
                path_of = [str(f) for f in self.files]
                base = str(self.listings_path.resolve().parent if self.listings_path.is_file()
                           else self.listings_path.resolve())
                mapping = self.mapping
                read = _guarded_batches(lambda it: _read_row_groups(it, path_of, mapping, schema, base))
                tasks_df = spark.createDataFrame(pd.DataFrame(tasks, columns=["file", "rg", "offset", "length", "first"]))
                out_schema = from_arrow_schema(schema.append(pa.field("load_report", pa.string())))
                df = tasks_df.repartition(len(tasks)).mapInArrow(read, out_schema)
                self._write_stage(LISTINGS, df, run_id)
                stage = spark.read.parquet(str(path))
                dup = stage.groupBy("item_id").count().where("count > 1").limit(1).collect()
                if dup:
                    from pyspark.sql import functions as F
                    rows = stage.where(F.col("item_id") == dup[0]["item_id"]).orderBy("row").limit(2).collect()
                    shutil.rmtree(path)
                    raise DataError(f"duplicate item_id {dup[0]['item_id']!r} in rows {rows[0]['row'] + 1} and "
                                    f"{rows[1]['row'] + 1}; item_id must be unique", path=str(self.listings_path),
                                    row=int(rows[1]["row"]) + 1, column="item_id")
            df = spark.read.parquet(str(path))
        reports = [json.loads(r["load_report"]) for r in df.where("load_report is not null")
                   .select("load_report").collect()]
        load = {"rows_read": sum(r["read"] for r in reports), "skipped": {}, "notes": {}}
        for r in reports:
            for kind in ("skipped", "notes"):
                for k, v in r[kind].items():
                    load[kind][k] = load[kind].get(k, 0) + v
        self.report["load"] = load
        if load["skipped"] or load["notes"]:
            self.log(f"{self.listings_path}: read {load['rows_read']} rows; note: " + ", ".join(
                f"{v} {k}" for k, v in {**load["skipped"], **load["notes"]}.items()))
        return df

    # -- stage 2: candidates
    def _candidates(self, listings, n: int, run_id: str):
        from pyspark.sql import functions as F
        from dupsearch.candidates.ann import ANNBlocker
        from dupsearch.candidates.specs import make_blocker
        spark = self.spark
        path = self.out / CANDIDATES
        reused = self._reused(CANDIDATES, "blocking", run_id)
        if reused is not None:
            return reused
        t0 = time.perf_counter()
        specs = list(self.config.blockers)
        made = [make_blocker(s) for s in specs]
        names = [b.name for b in made]
        if len(set(names)) != len(names):
            raise DupsearchError(f"blocker names must be distinct, got {names}")
        key_specs = [(i, s) for i, (s, b) in enumerate(zip(specs, made)) if not isinstance(b, ANNBlocker)]
        ann_specs = [(i, s) for i, (s, b) in enumerate(zip(specs, made)) if isinstance(b, ANNBlocker)]
        parts, report = [], {}
        if key_specs:
            keys = listings.mapInArrow(_guarded_batches(lambda it: _block_keys(it, key_specs)),
                                       "bit int, key string, row long").distinct()
            keys = keys.localCheckpoint()
            sizes = keys.groupBy("bit", "key").agg(F.count("*").alias("size")).localCheckpoint()
            limit = F.lit(None).cast("long")
            for bit, _ in key_specs:
                mb = getattr(made[bit], "max_block", None)
                if mb is not None:
                    limit = F.when(F.col("bit") == bit, F.lit(int(mb))).otherwise(limit)
            sizes = sizes.withColumn("limit", limit)
            stats = {r["bit"]: r for r in sizes.groupBy("bit").agg(
                F.sum((F.col("size") >= 2).cast("long")).alias("n_blocks"),
                F.sum((F.col("size") > F.col("limit")).cast("long")).alias("skipped_blocks"),
                F.sum(F.when(F.col("size") > F.col("limit"), F.col("size")).otherwise(0)).alias("skipped_rows"),
                F.max("size").alias("largest")).collect()}
            usable = sizes.where((F.col("size") >= 2) & (F.col("limit").isNull() | (F.col("size") <= F.col("limit"))))
            kept = keys.join(usable.select("bit", "key"), ["bit", "key"])
            x, y = kept.alias("x"), kept.alias("y")
            key_pairs = (x.join(y, ["bit", "key"]).where(F.col("x.row") < F.col("y.row"))
                         .select(F.col("x.row").alias("a"), F.col("y.row").alias("b"), "bit").distinct())
            parts.append(key_pairs)
            for bit, _ in key_specs:
                s = stats.get(bit)
                report[names[bit]] = {"n_blocks": int(s["n_blocks"]) if s else 0,
                                      "skipped_blocks": int(s["skipped_blocks"] or 0) if s else 0,
                                      "skipped_block_rows": int(s["skipped_rows"] or 0) if s else 0,
                                      "largest_block": int(s["largest"]) if s else 0}
        if ann_specs:
            vectorizers = self._fit_vectorizers(listings, n, ann_specs, made)
            vecs = listings.mapInArrow(_guarded_batches(lambda it: _ann_vectors(it, ann_specs, vectorizers)),
                                       "bit int, part string, row long, exclude string, vector binary")
            vecs = vecs.localCheckpoint()
            part_sizes = vecs.groupBy("bit", "part").count().groupBy("bit").agg(
                F.count("*").alias("partitions"), F.max("count").alias("largest"),
                F.sum((F.col("count") > F.lit(5000)).cast("long")).alias("large"), F.sum("count").alias("with"))
            part_stats = {r["bit"]: r for r in part_sizes.collect()}
            spec_of = dict(ann_specs)
            ann_pairs = vecs.groupBy("bit", "part").applyInArrow(
                _guarded(lambda t: _ann_partition(t, spec_of)), "a long, b long, bit int")
            parts.append(ann_pairs)
            for bit, _ in ann_specs:
                s, b = part_stats.get(bit), made[bit]
                report[names[bit]] = {"k": b.k, "partition": list(b.partition), "exclude": list(b.exclude),
                                      "partitions": int(s["partitions"]) if s else 0,
                                      "largest_partition": int(s["largest"]) if s else 0,
                                      "listings_without_vector": int(n - (s["with"] if s else 0))}
        if parts:
            union = parts[0]
            for p in parts[1:]:
                union = union.unionByName(p)
            union = union.withColumn("bit", F.expr("shiftleft(cast(1 as bigint), bit)"))
            pairs = union.groupBy("a", "b").agg(F.bit_or("bit").alias("mask"))
        else:
            pairs = spark.createDataFrame([], "a long, b long, mask long")
        label = F.concat_ws("|", *[F.when((F.col("mask").bitwiseAND(1 << i)) != 0, F.lit(name))
                                   for i, name in enumerate(names)])
        ids = listings.select("row", "item_id")
        cands = (pairs.join(ids.select(F.col("row").alias("a"), F.col("item_id").alias("item_id_a")), "a")
                 .join(ids.select(F.col("row").alias("b"), F.col("item_id").alias("item_id_b")), "b")
                 .select("item_id_a", "item_id_b", F.col("a").alias("row_a"), F.col("b").alias("row_b"),
                         label.alias("blockers")))
        self._write_stage(CANDIDATES, cands, run_id)
        cands = spark.read.parquet(str(path))
        n_cand = cands.count()
        for name in names:
            report.setdefault(name, {})["n_pairs"] = int(cands.where(F.array_contains(
                F.split("blockers", "\\|"), name)).count())
        blocking = {"blockers": report, "n_candidates": int(n_cand),
                    "candidates_per_listing": round(n_cand / max(n, 1), 3),
                    "reduction_ratio": 1 - n_cand / (n * (n - 1) / 2) if n > 1 else None,
                    "seconds": round(time.perf_counter() - t0, 2)}
        truth = self.config.truth_column
        if truth and truth in listings.columns:
            blocking.update(self._blocking_recall(listings, cands, truth))
        self.report["blocking"] = blocking
        mark = json.loads((path / STAGE_MARK).read_text())
        atomic_write_text(path / STAGE_MARK, json.dumps({**mark, "blocking": blocking}))
        self.log(f"candidates: {n_cand:,} pairs ({blocking['candidates_per_listing']:.2f} per listing) in "
                 f"{blocking['seconds']:.1f} s" + (f"; pair recall {blocking['pair_recall']:.4f}"
                                                   if "pair_recall" in blocking else ""))
        return cands

    def _fit_vectorizers(self, listings, n: int, ann_specs, made) -> dict:
        """Each default-vector ANN blocker's vectoriser, fitted on the driver from the rows the
        local engine samples (``HashedTfidfVectors.sample_rows``): only those rows' texts travel."""
        from dupsearch.candidates.ann import HashedTfidfVectors
        from dupsearch.encoders import make_encoder
        out = {}
        for bit, _ in ann_specs:
            b = made[bit]
            if b.vectors is not None or (b.encoder is not None and make_encoder(
                    b.encoder, "image" if b.source == "photos" else "text").needs_fit):
                raise DupsearchError(f"blocker {b.name}: an encoder fitted on the whole catalogue is not "
                                     "supported by the Spark engine; use the default vectors or a pretrained encoder")
            if b.encoder is not None or b.column is not None:
                continue
            vec = HashedTfidfVectors(dim=b.dim, reduce=b.reduce, char_ngram=b.char_ngram, seed=b.seed, workers=1)
            if n < 2:
                continue
            rows, rng = vec.sample_rows(n)
            picked = listings if len(rows) == n else listings.join(
                self.spark.createDataFrame(pd.DataFrame({"row": rows.astype(np.int64)})), "row")
            frame, got = _listings_of(picked.toArrow())
            if not np.array_equal(got, rows):
                raise DupsearchError("the listings' row numbers are not 0..n-1: stage listings.parquet is damaged; "
                                     "rerun with --restart")
            out[bit] = vec.fit_sample(b._texts(frame), rng)
        return out

    def _blocking_recall(self, listings, cands, truth: str) -> dict:
        from pyspark.sql import functions as F
        t = listings.select("row", F.col(truth).alias("t")).where(F.col("t").isNotNull())
        n_true = t.groupBy("t").count().select(F.sum(F.col("count") * (F.col("count") - 1) / 2)).first()[0] or 0
        found = (cands.select("row_a", "row_b")
                 .join(t.select(F.col("row").alias("row_a"), F.col("t").alias("ta")), "row_a")
                 .join(t.select(F.col("row").alias("row_b"), F.col("t").alias("tb")), "row_b")
                 .where(F.col("ta") == F.col("tb")).count())
        return {"truth_column": truth, "n_true_pairs": int(n_true), "n_true_found": int(found),
                "pair_recall": found / n_true if n_true else None}

    # -- stage 3: scores
    def _scores(self, listings, cands, run_id: str):
        from pyspark.sql import functions as F
        spark = self.spark
        path = self.out / SCORES
        reused = self._reused(SCORES, "scoring", run_id)
        if reused is not None:
            return reused
        t0 = time.perf_counter()
        from dupsearch.candidates.ann import ANNBlocker
        from dupsearch.candidates.specs import make_blocker
        ann = [b for b in map(make_blocker, self.config.blockers) if isinstance(b, ANNBlocker) and b.partition]
        cols = list(ann[0].partition) if ann else []
        # home: the scoring group of a listing. Whole ANN partitions (its first ANN blocker's) are
        # hashed into buckets of ~SCORE_TARGET listings, so most pairs have both listings at
        # home; a bucket above SCORE_GROUP (one huge partition) is split by row. The listings a
        # group's pairs name elsewhere are sent to it as well.
        n = int(self.report["listings"])
        buckets = max(2 * spark.sparkContext.defaultParallelism, -(-n // SCORE_TARGET))
        key = (F.concat_ws("\x1f", *[F.trim(F.coalesce(F.col(c).cast("string"), F.lit(""))) for c in cols])
               if cols else F.col("row").cast("string"))
        home = listings.select("row", F.pmod(F.xxhash64(key), F.lit(buckets)).alias("home"))
        size = home.groupBy("home").count()
        home = (home.join(size, "home")
                .withColumn("home", F.when(F.col("count") > SCORE_GROUP, F.concat_ws(
                    "/", F.col("home").cast("string"), F.pmod(F.xxhash64("row"), F.ceil(F.col("count") / SCORE_GROUP))
                    .cast("string"))).otherwise(F.col("home").cast("string"))).select("row", "home")).localCheckpoint()
        # (each use of `home` gets fresh column names: Spark refuses a cogroup of two
        # branches that read one plan's column)
        pairs = cands.select("row_a", "row_b").join(
            home.select(F.col("row").alias("row_a"), F.col("home").alias("home")), "row_a")
        hb = home.select(F.col("row").alias("row_b"), F.col("home").alias("home_b"))
        cross = (pairs.join(hb, "row_b").where(F.col("home") != F.col("home_b"))
                 .select(F.col("home").alias("home"), F.col("row_b").alias("row")))
        own = home.select(F.col("row").alias("row"), F.col("home").alias("home"))
        needed = own.unionByName(cross).distinct().join(listings, "row")
        self.spark.sparkContext.addFile(str(self.model_dir.resolve()), recursive=True)
        model = (self.model_dir.resolve().name, folder_sha256(self.model_dir), self.config.trust_model)
        scored = pairs.groupBy("home").cogroup(needed.groupBy("home")).applyInArrow(
            _guarded(lambda p, ls: _score_group(p, ls, model), 2), "row_a long, row_b long, score float")
        out = (scored.join(cands, ["row_a", "row_b"])
               .select("item_id_a", "item_id_b", "blockers", "score", "row_a", "row_b"))
        self._write_stage(SCORES, out, run_id)
        scores = spark.read.parquet(str(path))
        n_scored = scores.count()
        secs = time.perf_counter() - t0
        scoring = {"pairs_scored": int(n_scored), "score_seconds": round(secs, 2),
                   "pairs_per_second": round(n_scored / secs, 1) if secs > 0 else None,
                   "groups": int(home.select("home").distinct().count())}
        self.report["scoring"] = scoring
        mark = json.loads((path / STAGE_MARK).read_text())
        atomic_write_text(path / STAGE_MARK, json.dumps({**mark, "scoring": scoring}))
        self.log(f"scores: {n_scored:,} pairs in {secs:.1f} s")
        return scores

    # -- stage 4: clusters
    def _clusters(self, listings, scores, n: int, run_id: str) -> None:
        from pyspark.sql import functions as F
        spark = self.spark
        plan = self.clustering
        thr, thresholds, max_component = plan["threshold"], plan["thresholds"], int(self.config.max_component)
        t0 = time.perf_counter()
        above = scores.where(F.col("score") >= thr)
        n_scored, n_above = scores.count(), above.count()
        self._write_stage(DUPLICATES, above.select("item_id_a", "item_id_b", "score"), run_id)
        # components at the lowest method threshold: no method links across them
        linked = scores.where(F.col("score") >= min(thresholds.values()))
        comp = connected_components(linked.select(F.col("row_a").alias("u"), F.col("row_b").alias("v")))
        ids = listings.select("row", "item_id")
        inside = (scores.join(comp.select(F.col("node").alias("row_a"), F.col("root")), "row_a")
                  .join(comp.select(F.col("node").alias("row_b"), F.col("root").alias("root_b")), "row_b")
                  .where(F.col("root") == F.col("root_b"))
                  .select("root", F.col("item_id_a").alias("id_a"), F.col("item_id_b").alias("id_b"), "score"))
        buckets = max(2 * spark.sparkContext.defaultParallelism, n // 100_000 + 1)
        members = inside.groupBy(F.pmod(F.col("root"), F.lit(buckets)).alias("bucket")).applyInArrow(
            _guarded(lambda t: _cluster_components(t, thresholds, max_component)),
            "item_id string, key_components string, key_center string, key_average string, key_linked string")
        members = members.localCheckpoint()
        methods = ("components", "center", "average")
        keyed = ids.join(members, "item_id", "left")
        for m in methods:
            keyed = keyed.withColumn(f"key_{m}", F.coalesce(F.col(f"key_{m}"), F.col("item_id")))
        keyed = keyed.localCheckpoint()
        frame = keyed.select("row", "item_id", *[f"key_{m}" for m in methods])
        for m in methods:
            frame = frame.join(_dense_index(keyed.select(F.col(f"key_{m}").alias("key")).distinct(), "key")
                               .withColumnRenamed("key", f"key_{m}").withColumnRenamed("index", f"cluster_{m}"),
                               f"key_{m}").drop(f"key_{m}")
        frame = frame.select("item_id", *[F.col(f"cluster_{m}").cast("long") for m in methods],
                             F.col(f"cluster_{plan['method']}").cast("long").alias("cluster"), "row")
        self._write_stage(CLUSTERS, frame.drop("row"), run_id)
        clusters = spark.read.parquet(str(self.out / CLUSTERS))
        summary = {**plan, "pairs_scored": int(n_scored), "pairs_above_threshold": int(n_above),
                   "methods": {}}
        truth = self.config.truth_column
        with_truth = None
        if truth and truth in listings.columns:
            with_truth = clusters.join(listings.select("item_id", F.coalesce(F.col(truth).cast("string"), F.concat(
                F.lit("\x1f_single_"), F.col("item_id"))).alias("truth")), "item_id").localCheckpoint()
        sizes_c = members.groupBy("key_linked").agg(F.count("*").alias("size"))
        big = F.col("size") > max_component
        cs = sizes_c.agg(F.count("*").alias("k"), F.sum("size").alias("members"),
                         F.sum(((F.col("size") >= 3) & ~big).cast("long")).alias("linked"),
                         F.sum(big.cast("long")).alias("big"),
                         F.sum(F.when(big, F.col("size")).otherwise(0)).alias("big_items")).first()
        for m in methods:
            sizes = clusters.groupBy(f"cluster_{m}").count()
            s = sizes.agg(F.count("*").alias("k"), F.sum((F.col("count") >= 2).cast("long")).alias("g"),
                          F.sum(F.when(F.col("count") >= 2, F.col("count")).otherwise(0)).alias("in"),
                          F.max("count").alias("largest")).first()
            entry = {"threshold": thresholds[m], "clusters": int(s["k"]), "groups_of_2_or_more": int(s["g"] or 0),
                     "listings_in_groups": int(s["in"] or 0), "largest": int(s["largest"] or 0)}
            if m == "average":  # as average-link counts them (components of the whole graph)
                entry["report"] = {"components": int(n - (cs["members"] or 0) + cs["k"]),
                                   "linkage_components": int(cs["linked"] or 0),
                                   "fallback_components": int(cs["big"] or 0), "fallback_items": int(cs["big_items"] or 0),
                                   "max_component": max_component}
            if with_truth is not None:
                entry.update(_cluster_metrics(with_truth, f"cluster_{m}"))
            summary["methods"][m] = entry
        self._groups_page(listings, scores, clusters, plan, n)
        summary["seconds"] = round(time.perf_counter() - t0, 2)
        self.report["clustering"] = summary

    def _groups_page(self, listings, scores, clusters, plan: dict, n: int) -> None:
        """groups.html as the local engine writes it: every group's figures from Spark, then the
        shown groups' members, listings and pairs collected to the driver."""
        from pyspark.sql import functions as F
        from dupsearch.cluster.page import MAX_GROUPS, page_order, write_groups_page
        lab = clusters.select("item_id", F.col("cluster").alias("group"))
        sizes = lab.groupBy("group").agg(F.count("*").alias("size")).where(F.col("size") >= 2)
        inside = (scores.select("item_id_a", "item_id_b", "score", "blockers")
                  .join(lab.withColumnRenamed("item_id", "item_id_a"), "item_id_a")
                  .join(lab.select(F.col("item_id").alias("item_id_b"), F.col("group").alias("group_b")), "item_id_b")
                  .where(F.col("group") == F.col("group_b")).drop("group_b")).localCheckpoint()
        stats = inside.groupBy("group").agg(F.mean("score").alias("mean_score"), F.min("score").alias("min_score"),
                                            F.count("*").alias("pairs"))
        groups = sizes.join(stats, "group", "left").toPandas().set_index("group")
        groups["pairs"] = groups["pairs"].fillna(0)
        shown = self.spark.createDataFrame(pd.DataFrame({"group": page_order(groups).head(MAX_GROUPS).index.to_numpy()}))
        members = lab.join(F.broadcast(shown), "group")
        member_listings = listings.join(members.select("item_id"), "item_id").drop("row").toPandas()
        method = plan["method"]
        write_groups_page(self.out, member_listings, members.toPandas().set_index("item_id")["group"],
                          inside.join(F.broadcast(shown), "group").drop("group").toPandas(), method=method,
                          threshold=plan["thresholds"][method], n_listings=n, groups=groups)


class SparkEngine(Engine):
    """Apache Spark: ``master`` a master URL (None: what spark-submit set, else ``local[*]``)."""

    name = "spark"

    def __init__(self, master: str | None = None):
        self.master = master

    def dedup(self, listings_path, model_dir, out, config, *, mapping=None, restart=None, progress=True,
              log=print, require_truth=False) -> dict:
        run = SparkDedup(listings_path, model_dir, out, config, mapping=mapping, master=self.master,
                         progress=progress, log=log)
        run.files = run._files()
        _, head = run._plan()  # the input is readable and has its columns before anything goes
        truth = run.config.truth_column
        if require_truth and truth and truth not in head.columns:
            raise DataError(f"no such column (asked for with --truth); the columns are "
                            f"{', '.join(map(str, head.columns))}", path=str(listings_path), column=truth)
        if restart is not None:
            restart()
        try:
            return run.run()
        finally:
            spark = getattr(run, "spark", None)
            if spark is not None and not os.environ.get("DUPSEARCH_SPARK_KEEP"):
                spark.stop()
