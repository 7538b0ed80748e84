"""Distributed steps of the Spark engine over DataFrames (no collect): connected components by
large-star / small-star, dense ranks of sorted values, cluster metrics from contingency counts."""

from __future__ import annotations

from dupsearch.errors import DupsearchError


def connected_components(edges):
    """Connected components of an edge DataFrame (u, v: long) by alternating large-star and
    small-star rounds (Kiveris et al., "Connected Components in MapReduce and Beyond", SoCC
    2014), until the edges are stars around each component's smallest node: DataFrame
    (node, root), one row per node of an edge (root: its component's smallest node)."""
    from pyspark.sql import functions as F

    def canonical(df, a, b):
        return (df.where(F.col(a) != F.col(b))
                .select(F.least(a, b).alias("u"), F.greatest(a, b).alias("v")).distinct())

    def both_ways(e):
        return e.unionByName(e.select(F.col("v").alias("u"), F.col("u").alias("v")))

    e = canonical(edges, "u", "v").localCheckpoint()
    for _ in range(200):
        # large star: every neighbour larger than x links to the smallest of x's neighbourhood
        d = both_ways(e)
        m = d.groupBy("u").agg(F.min("v").alias("m")).withColumn("m", F.least("u", "m"))
        large = canonical(d.join(m, "u").where(F.col("v") > F.col("u")), "v", "m").localCheckpoint()
        # small star: x and its smaller neighbours link to the smallest of them
        d = both_ways(large).where(F.col("v") < F.col("u"))
        m = d.groupBy("u").agg(F.min("v").alias("m"))
        small = canonical(d.join(m, "u").select(F.col("v").alias("x"), "m")
                          .unionByName(m.select(F.col("u").alias("x"), "m")), "x", "m").localCheckpoint()
        if small.count() == e.count() and small.exceptAll(e).isEmpty():
            # a fixed point: stars, unless a node still has a larger neighbour that is not a root
            if small.join(small.select(F.col("v").alias("u")).distinct(), "u").isEmpty():
                e = small
                break
        e = small
    else:
        raise DupsearchError("connected components did not converge in 200 rounds")
    roots = e.select(F.col("u").alias("node"), F.col("u").alias("root")).distinct()
    return e.select(F.col("v").alias("node"), F.col("u").alias("root")).unionByName(roots).localCheckpoint()


def _dense_index(df, column: str):
    """``df`` (distinct values of ``column``) with ``index``: the value's rank in sorted order,
    0-based, computed per range partition and offset by the partitions before (no single
    partition holds them all)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F
    parts = max(1, df.sparkSession.sparkContext.defaultParallelism)
    ranged = (df.repartitionByRange(parts, column).withColumn("pid", F.spark_partition_id())
              .withColumn("local", F.row_number().over(Window.partitionBy("pid").orderBy(column)) - 1)).localCheckpoint()
    counts = sorted((r["pid"], r["count"]) for r in ranged.groupBy("pid").count().collect())
    offsets, at = {}, 0
    for pid, c in counts:
        offsets[pid] = at
        at += c
    offset = F.lit(0).cast("long")
    for pid, o in offsets.items():
        offset = F.when(F.col("pid") == pid, F.lit(o)).otherwise(offset)
    return ranged.select(column, (F.col("local") + offset).alias("index"))


def _cluster_metrics(frame, label: str) -> dict:
    """B-cubed and pairwise precision/recall/F1 of ``label`` against ``truth`` from the
    contingency counts, as ``dupsearch.cluster.metrics`` defines them."""
    from pyspark.sql import functions as F
    from dupsearch.cluster.metrics import _f1
    ct = frame.groupBy(label, "truth").count().localCheckpoint()
    cs = ct.groupBy(label).agg(F.sum("count").alias("nc"))
    ts = ct.groupBy("truth").agg(F.sum("count").alias("nt"))
    j = ct.join(cs, label).join(ts, "truth")
    r = j.agg(F.sum(F.col("count") * F.col("count") / F.col("nc")).alias("p"),
              F.sum(F.col("count") * F.col("count") / F.col("nt")).alias("r"),
              F.sum(F.col("count")).alias("n"),
              F.sum(F.col("count") * (F.col("count") - 1) / 2).alias("correct")).first()
    predicted = cs.agg(F.sum(F.col("nc") * (F.col("nc") - 1) / 2)).first()[0] or 0
    true = ts.agg(F.sum(F.col("nt") * (F.col("nt") - 1) / 2)).first()[0] or 0
    n = float(r["n"])
    bp, br = float(r["p"]) / n, float(r["r"]) / n
    correct = int(r["correct"])
    pp = correct / predicted if predicted else 1.0
    pr = correct / true if true else 1.0
    return {"bcubed": {"precision": bp, "recall": br, "f1": _f1(bp, br)},
            "pairwise": {"precision": pp, "recall": pr, "f1": _f1(pp, pr), "correct_pairs": correct,
                         "predicted_pairs": int(predicted), "true_pairs": int(true)}}
