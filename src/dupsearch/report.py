"""Evaluation report a person can look at: PR curve, per-category metrics and
feature importance as PNG charts, and an HTML page that shows them with the numbers."""

from __future__ import annotations

import html
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from dupsearch.atomic import atomic_write_bytes


def _save_fig(fig, path: Path) -> None:
    import io
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())


def write_report(out_dir: str | os.PathLike, y: np.ndarray, p: np.ndarray, metrics: dict,
                 per_category: pd.DataFrame | None = None, importance: pd.Series | None = None,
                 title: str = "dupsearch evaluation", data_name: str = "",
                 examples: pd.DataFrame | None = None, extra_html: str = "") -> Path:
    """Write report.html, metrics.json and PNG charts into `out_dir`; returns the HTML path.

    `examples`: pairs to show (columns title_a, title_b, label, probability, and
    optionally price_a/price_b, category): caught and missed duplicates, false alarms.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    charts = []

    prec, rec, _ = precision_recall_curve(np.asarray(y).astype(int), p)
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    ax.plot(rec, prec, lw=2, label=f"PR-AUC {metrics.get('pr_auc', float('nan')):.4f}")
    base = float(np.mean(y))
    ax.axhline(base, ls="--", c="grey", lw=1, label=f"chance ({base:.3f})")
    if "threshold" in metrics and not np.isnan(metrics.get("recall", np.nan)):
        ax.scatter([metrics["recall"]], [metrics["precision"]], c="red", zorder=3,
                   label=f"threshold {metrics['threshold']:.3f}: F1 {metrics['f1']:.3f}")
    ax.set_xlabel("recall"); ax.set_ylabel("precision"); ax.set_xlim(0, 1); ax.set_ylim(0, 1.02)
    ax.set_title(f"Precision-recall{(' — ' + data_name) if data_name else ''}")
    ax.legend(loc="lower left"); ax.grid(alpha=0.3)
    _save_fig(fig, out / "pr_curve.png"); plt.close(fig)
    charts.append(("Precision-recall curve", "pr_curve.png"))

    if per_category is not None and len(per_category) > 0:
        pc = per_category.sort_values("n_pairs", ascending=True)
        fig, ax = plt.subplots(figsize=(6.5, 0.45 * len(pc) + 1.2))
        ax.barh(pc["category"].astype(str), pc["pr_auc"], color="tab:blue")
        for yi, (v, n) in enumerate(zip(pc["pr_auc"], pc["n_pairs"])):
            ax.text(0.01 if np.isnan(v) else v + 0.01, yi, f"{v:.3f}  (n={n})", va="center", fontsize=8)
        ax.set_xlim(0, 1.25); ax.set_xlabel("PR-AUC"); ax.set_title("PR-AUC per top-level category")
        _save_fig(fig, out / "per_category.png"); plt.close(fig)
        charts.append(("Per-category PR-AUC", "per_category.png"))

    if importance is not None and len(importance) > 0:
        top = importance.sort_values(ascending=False).head(30)[::-1]
        fig, ax = plt.subplots(figsize=(7, 0.28 * len(top) + 1.2))
        ax.barh(top.index.astype(str), top.values, color="tab:green")
        ax.set_xlabel("share of importance"); ax.set_title("Top features")
        _save_fig(fig, out / "feature_importance.png"); plt.close(fig)
        charts.append(("Feature importance (top 30)", "feature_importance.png"))

    atomic_write_bytes(out / "metrics.json", json.dumps(
        {"data": data_name, **metrics,
         "per_category": None if per_category is None else per_category.to_dict(orient="records")},
        indent=2, default=float).encode())
    rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{_fmt(v)}</td></tr>"
                   for k, v in metrics.items() if not isinstance(v, (dict, list)))
    cat_html = per_category.to_html(index=False, float_format=lambda v: f"{v:.4f}") if per_category is not None else ""
    imgs = "".join(f"<h2>{html.escape(t)}</h2><img src='{f}' alt='{html.escape(t)}'>" for t, f in charts)
    if examples is not None and len(examples) and "threshold" in metrics:
        imgs += _examples_html(examples, metrics["threshold"])
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            "<style>body{font-family:sans-serif;max-width:900px;margin:2em auto}"
            "td,th{padding:2px 8px;border-bottom:1px solid #ddd}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><p>Data: {html.escape(data_name)}</p>"
            f"<table>{rows}</table>{extra_html}<h2>Per top-level category</h2>{cat_html}{imgs}</body></html>")
    atomic_write_bytes(out / "report.html", page.encode("utf-8"))
    return out / "report.html"


EXAMPLES_PER_KIND = 8


def _examples_html(ex: pd.DataFrame, threshold: float) -> str:
    """Tables of caught duplicates, missed duplicates and false alarms (most confident first)."""
    pred = ex["probability"] >= threshold
    kinds = [
        ("Caught duplicates", ex[pred & (ex["label"] == 1)].sort_values("probability", ascending=False)),
        ("Missed duplicates", ex[~pred & (ex["label"] == 1)].sort_values("probability")),
        ("False alarms", ex[pred & (ex["label"] == 0)].sort_values("probability", ascending=False)),
    ]
    cols = [c for c in ("category", "title_a", "title_b", "price_a", "price_b", "probability")
            if c in ex.columns]
    out = []
    for name, part in kinds:
        shown = part.head(EXAMPLES_PER_KIND)[cols]
        body = shown.to_html(index=False, escape=True, float_format=lambda v: f"{v:.3f}") if len(shown) else "<p>none</p>"
        out.append(f"<h2>{name} ({len(part)} in all)</h2>{body}")
    return "".join(out)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    return html.escape(str(v))
