"""Evaluation report a person can look at: PR and ROC curves, precision/recall/F1 against
the threshold, per-category PR-AUC, cross-validation spread, feature importance and a SHAP
summary, and an ablation table, as PNG charts and an HTML page that shows them with the
numbers. Everything is local: images are referenced by file name, no scripts or styles are
loaded from elsewhere, so the page works offline."""

from __future__ import annotations

import html
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from dupsearch.atomic import atomic_write_bytes

SHAP_TOP_FEATURES = 20
SHAP_MAX_ROWS = 2000
CURVE_MAX_POINTS = 4000
EXAMPLES_PER_KIND = 8


def _save_fig(fig, path: Path) -> None:
    import io
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())


def _t(s) -> str:
    """Text for a matplotlib label: a literal `$` must not switch on mathtext."""
    return str(s).replace("$", r"\$")


def _thin(*arrays: np.ndarray, k: int = CURVE_MAX_POINTS) -> tuple[np.ndarray, ...]:
    """At most `k` evenly spaced points of a curve (ends kept) for drawing."""
    n = len(arrays[0])
    if n <= k:
        return arrays
    idx = np.unique(np.linspace(0, n - 1, k).round().astype(int))
    return tuple(a[idx] for a in arrays)


def _json_safe(o):
    """NaN and infinities become null: standard JSON, readable by any tool."""
    if isinstance(o, float) and not np.isfinite(o):
        return None
    if isinstance(o, dict):
        return {k: _json_safe(v) for k, v in o.items()}
    if isinstance(o, list):
        return [_json_safe(v) for v in o]
    return o


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (pd.Series, pd.Index)):
        return o.tolist()
    if isinstance(o, pd.DataFrame):
        return o.to_dict(orient="records")
    if isinstance(o, os.PathLike):
        return os.fspath(o)
    try:
        return float(o)
    except (TypeError, ValueError):
        return str(o)


def _finite(v) -> bool:
    try:
        return bool(np.isfinite(float(v)))
    except (TypeError, ValueError):
        return False


def write_report(out_dir: str | os.PathLike, y: np.ndarray, p: np.ndarray, metrics: dict,
                 per_category: pd.DataFrame | None = None, importance: pd.Series | None = None,
                 title: str = "dupsearch evaluation", data_name: str = "",
                 examples: pd.DataFrame | None = None, extra_html: str = "", *,
                 cv: dict | None = None,
                 shap: tuple[np.ndarray, pd.DataFrame] | None = None,
                 ablation: pd.DataFrame | None = None,
                 components: dict | None = None,
                 clustering: dict | None = None) -> Path:
    """Write report.html, metrics.json and PNG charts into `out_dir`; returns the HTML path.

    Always (when `y` holds both classes): pr_curve.png, roc_curve.png and threshold.png
    (precision, recall and F1 against the threshold, `metrics["threshold"]` marked).
    With only one class those are left out and the page says why.

    `per_category`: per_category_metrics() frame -> per_category.png and a table.
    `importance`: feature -> share of importance -> feature_importance.png (top 30).
    `examples`: pairs to show (columns title_a, title_b, label, probability, and
    optionally price_a/price_b, category): caught and missed duplicates, false alarms.
    `cv`: the matcher's metrics["cv"] ({"folds": [...], "oof", "pr_auc_mean",
    "pr_auc_std", "grouping"}) -> cv_folds.png and a table of folds.
    `shap`: (SHAP values (n, f), feature frame X (n, f)) -> shap_summary.png, a
    beeswarm-style summary of the top features by mean |SHAP|.
    `ablation`: rows with `variant`, `what`, `pr_auc`, `delta` (PR-AUC of the run without
    that part minus the full run's), optionally `test_pr_auc`, `seconds` -> a table sorted
    by delta and ablation.png.
    `components`: free-form model-combination info (blend weights, per-category models...)
    shown as a table / JSON block.
    `clustering`: the matcher's metrics["clustering"] (``cluster.tuning``) -> clustering.png,
    B-cubed and pairwise F1 of each clustering method against the threshold, the chosen ones
    marked.
    Sections whose argument is None (or empty) are left out.
    """
    import matplotlib
    matplotlib.use("Agg")

    from dupsearch.artifacts import claim_dir, open_dir
    claim_dir(out_dir, "report", what="report folder")  # never writes into a folder of other files
    y = np.asarray(y).astype(int).ravel()
    p = np.asarray(p, dtype=float).ravel()
    if len(y) != len(p):
        raise ValueError(f"y has {len(y)} labels but p has {len(p)} scores")
    shap_vals, shap_X = _check_shap(shap)
    abl = _ablation_frame(ablation)
    out = open_dir(out_dir, "report", what="report folder")  # the input checked: now it is ours

    sections: list[str] = []   # HTML blocks, in page order
    notes: list[str] = []

    def chart(heading: str, fig, name: str, caption: str = "") -> None:
        import matplotlib.pyplot as plt
        try:
            _save_fig(fig, out / name)
        finally:
            plt.close(fig)
        cap = f"<p class='cap'>{caption}</p>" if caption else ""
        sections.append(f"<h2>{html.escape(heading)}</h2>{cap}"
                        f"<img src='{name}' alt='{html.escape(heading)}'>")

    n_pos = int(y.sum())
    both = 0 < n_pos < len(y)
    if both:
        chart("Precision-recall curve", _pr_fig(y, p, metrics, data_name), "pr_curve.png")
        roc_fig, auc = _roc_fig(y, p, metrics, data_name)
        chart("ROC curve", roc_fig, "roc_curve.png", f"ROC-AUC {auc:.4f}")
        chart("Precision, recall and F1 against the threshold", _threshold_fig(y, p, metrics),
              "threshold.png",
              "A pair is called a duplicate when its probability is at least the threshold. "
              "Shaded: how the scores of duplicates and non-duplicates are spread.")
    else:
        notes.append(f"The labels hold only one class ({len(y)} pairs, {n_pos} duplicates): the "
                     "precision-recall, ROC and threshold curves need both duplicates and "
                     "non-duplicates, so they are left out.")

    if per_category is not None:
        if len(per_category) > 0:
            cat_table = per_category.to_html(index=False, escape=True, na_rep="n/a",
                                             float_format=lambda v: f"{v:.4f}")
            sections.append(f"<h2>Per top-level category</h2>{cat_table}")
            if {"category", "pr_auc"} <= set(per_category.columns):
                chart("Per-category PR-AUC", _per_category_fig(per_category), "per_category.png")
        else:
            sections.append("<h2>Per top-level category</h2><p class='note'>No categories to "
                            "break the pairs down by.</p>")

    cv_summary = None
    if cv is not None:
        cv_summary, cv_html, cv_fig = _cv_section(cv)
        sections.append(cv_html)
        if cv_fig is not None:
            chart("Cross-validation: PR-AUC per fold", cv_fig, "cv_folds.png")

    shap_mean = None
    if importance is not None and len(importance) > 0:
        chart("Feature importance (top 30)", _importance_fig(importance), "feature_importance.png")
    if shap_vals is not None:
        if len(shap_vals) and shap_vals.shape[1]:
            shap_mean = pd.Series(np.nanmean(np.abs(shap_vals), axis=0),
                                  index=shap_X.columns.astype(str))
            n_drawn = min(len(shap_vals), SHAP_MAX_ROWS)
            chart(f"SHAP summary (top {min(SHAP_TOP_FEATURES, shap_vals.shape[1])} features)",
                  _shap_fig(shap_vals, shap_X), "shap_summary.png",
                  f"Each point is one pair ({n_drawn} of {len(shap_vals)} drawn): how much the "
                  "feature moved its log-odds of being a duplicate. Colour: the feature's value, "
                  "ranked within its column (blue low, red high; grey: categorical or missing).")
        else:
            notes.append("SHAP values were given for no rows or no features; summary left out.")
    feat_table = _features_table(importance, shap_mean)
    if feat_table:
        sections.append(feat_table)

    if abl is not None:
        if len(abl):
            if "delta" in abl.columns and abl["delta"].notna().any():
                chart("Ablation: PR-AUC change when a part is removed", _ablation_fig(abl),
                      "ablation.png",
                      "delta = PR-AUC without the part minus PR-AUC of the full run: "
                      "below zero (red) the part helps, above zero (blue) the run does better "
                      "without it.")
            sections.append("<h2>Ablation table</h2>" + abl.to_html(
                index=False, escape=True, na_rep="n/a", float_format=lambda v: f"{v:.4f}"))
        else:
            notes.append("The ablation table is empty.")

    if components:
        sections.append(_components_html(components))

    if clustering and "curves" in clustering:
        chart("Groups: B-cubed and pairwise F1 against the threshold", _clustering_fig(clustering),
              "clustering.png",
              html.escape(f"Each clustering method's groups of {clustering['graph']} ({clustering['items']:,} "
                          f"listings; scores: {clustering['scores']}) against the true groups "
                          f"({clustering['truth']}). Marked: the threshold each method uses in dedup "
                          f"(its best B-cubed F1); default method: {clustering['method']}."))
    elif clustering and "skipped" in clustering:
        notes.append(f"Clustering thresholds were not chosen: {clustering['skipped']}.")

    if examples is not None and len(examples) and "threshold" in metrics:
        sections.append(_examples_html(examples, metrics["threshold"]))

    record = {"data": data_name, **metrics,
              "per_category": None if per_category is None else per_category.to_dict(orient="records")}
    if cv_summary is not None:
        record["cv"] = cv_summary
    if abl is not None:
        record["ablation"] = abl.to_dict(orient="records")
    if components:
        record["components"] = components
    if shap_mean is not None:
        record["shap_mean_abs"] = shap_mean.sort_values(ascending=False).head(50).to_dict()
    if notes:
        record["report_notes"] = notes
    atomic_write_bytes(out / "metrics.json", json.dumps(
        _json_safe(json.loads(json.dumps(record, default=_json_default))), indent=2, allow_nan=False).encode())

    rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{_fmt(v)}</td></tr>"
                   for k, v in metrics.items() if not isinstance(v, (dict, list)))
    note_html = "".join(f"<p class='note'>{html.escape(n)}</p>" for n in notes)
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            "<style>body{font-family:sans-serif;max-width:960px;margin:2em auto;padding:0 1em}"
            "td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}"
            "table{border-collapse:collapse;margin:0.5em 0}img{max-width:100%}"
            ".note{background:#fff4e0;border-left:4px solid #e0a030;padding:0.4em 0.8em}"
            ".cap{color:#555;font-size:90%}pre{background:#f6f6f6;padding:0.6em;overflow:auto}"
            "</style></head><body>"
            f"<h1>{html.escape(title)}</h1><p>Data: {html.escape(str(data_name))}</p>"
            f"{note_html}<table>{rows}</table>{extra_html}{''.join(sections)}</body></html>")
    atomic_write_bytes(out / "report.html", page.encode("utf-8"))
    return out / "report.html"


# ---------------------------------------------------------------- charts

def _clustering_fig(clustering: dict):
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    colours = {"components": "#888888", "center": "#1f77b4", "average": "#d62728"}
    for ax, key, name in ((axes[0], "bcubed_f1", "B-cubed F1"), (axes[1], "pairwise_f1", "pairwise F1")):
        for m, c in clustering["curves"].items():
            ax.plot(c["threshold"], c[key], color=colours.get(m), label=m)
            t = clustering["thresholds"][m]
            ax.plot([t], [c[key][c["threshold"].index(t)]], "o", color=colours.get(m))
        ax.set_xlabel("threshold")
        ax.set_title(name)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("F1")
    axes[0].legend(loc="lower center")
    return fig


def _pr_fig(y, p, metrics, data_name):
    import matplotlib.pyplot as plt
    from sklearn.metrics import average_precision_score, precision_recall_curve
    prec, rec, _ = precision_recall_curve(y, p)
    rec, prec = _thin(rec, prec)
    ap = metrics.get("pr_auc")
    ap = float(ap) if _finite(ap) else float(average_precision_score(y, p))
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    ax.plot(rec, prec, lw=2, label=f"PR-AUC {ap:.4f}")
    base = float(np.mean(y))
    ax.axhline(base, ls="--", c="grey", lw=1, label=f"chance ({base:.3f})")
    if "threshold" in metrics and _finite(metrics.get("recall")) and _finite(metrics.get("precision")):
        ax.scatter([metrics["recall"]], [metrics["precision"]], c="red", zorder=3,
                   label=f"threshold {metrics['threshold']:.3f}: F1 {metrics.get('f1', float('nan')):.3f}")
    ax.set_xlabel("recall"); ax.set_ylabel("precision"); ax.set_xlim(0, 1); ax.set_ylim(0, 1.02)
    ax.set_title(_t(f"Precision-recall{(' — ' + data_name) if data_name else ''}"))
    ax.legend(loc="lower left"); ax.grid(alpha=0.3)
    return fig


def _roc_fig(y, p, metrics, data_name):
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_auc_score, roc_curve
    fpr, tpr, _ = roc_curve(y, p)
    fpr, tpr = _thin(fpr, tpr)
    auc = metrics.get("roc_auc")
    auc = float(auc) if _finite(auc) else float(roc_auc_score(y, p))
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    ax.plot(fpr, tpr, lw=2, c="tab:purple", label=f"ROC-AUC {auc:.4f}")
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1, label="chance")
    thr = metrics.get("threshold")
    if _finite(thr):
        pred = p >= float(thr)
        t_tpr = float(pred[y == 1].mean()); t_fpr = float(pred[y == 0].mean())
        ax.scatter([t_fpr], [t_tpr], c="red", zorder=3,
                   label=f"threshold {float(thr):.3f}: TPR {t_tpr:.3f}, FPR {t_fpr:.3f}")
    ax.set_xlabel("false positive rate (non-duplicates called duplicates)")
    ax.set_ylabel("true positive rate (recall)")
    ax.set_xlim(0, 1); ax.set_ylim(0, 1.02)
    ax.set_title(_t(f"ROC{(' — ' + data_name) if data_name else ''}"))
    ax.legend(loc="lower right"); ax.grid(alpha=0.3)
    return fig, auc


def threshold_table(y: np.ndarray, p: np.ndarray, thresholds: np.ndarray) -> pd.DataFrame:
    """Precision, recall and F1 when pairs with p >= t are called duplicates, per threshold t
    (precision NaN where nothing is called a duplicate). O(n log n)."""
    y = np.asarray(y).astype(int); p = np.asarray(p, dtype=float)
    order = np.argsort(p, kind="mergesort")
    ps, ys = p[order], y[order]
    tp_from = np.concatenate([np.cumsum(ys[::-1])[::-1], [0]])  # positives at index >= i
    idx = np.searchsorted(ps, thresholds, side="left")
    n_pred = len(p) - idx
    tp = tp_from[idx].astype(float)
    n_pos = float(ys.sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(n_pred > 0, tp / np.maximum(n_pred, 1), np.nan)
        recall = tp / n_pos if n_pos else np.full(len(thresholds), np.nan)
        denom = n_pred + n_pos
        f1 = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), np.nan)
    return pd.DataFrame({"threshold": thresholds, "precision": precision, "recall": recall,
                         "f1": f1, "n_predicted": n_pred})


def _threshold_fig(y, p, metrics):
    import matplotlib.pyplot as plt
    grid = np.linspace(0, 1, 401)
    tt = threshold_table(y, p, grid)
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    ax2 = ax.twinx()  # score distributions behind the curves
    bins = np.linspace(0, 1, 51)
    pc = np.clip(p, 0, 1)
    ax2.hist(pc[y == 0], bins=bins, density=True, color="grey", alpha=0.18, label="non-duplicates")
    ax2.hist(pc[y == 1], bins=bins, density=True, color="tab:orange", alpha=0.18, label="duplicates")
    ax2.set_yticks([]); ax2.set_ylabel("score density (shaded)", color="grey")
    ax.set_zorder(ax2.get_zorder() + 1); ax.patch.set_visible(False)
    ax.plot(tt["threshold"], tt["precision"], lw=2, c="tab:blue", label="precision")
    ax.plot(tt["threshold"], tt["recall"], lw=2, c="tab:green", label="recall")
    ax.plot(tt["threshold"], tt["f1"], lw=2, c="black", label="F1")
    thr = metrics.get("threshold")
    if _finite(thr):
        ax.axvline(float(thr), c="red", lw=1.5,
                   label=f"chosen threshold {float(thr):.3f}"
                   + (f" (F1 {metrics['f1']:.3f})" if _finite(metrics.get("f1")) else ""))
    bt = metrics.get("best_f1_threshold")
    if _finite(bt) and not (_finite(thr) and abs(float(bt) - float(thr)) < 1e-9):
        ax.axvline(float(bt), c="red", ls=":", lw=1.2, label=f"best-F1 threshold on this data {float(bt):.3f}")
    ax.set_xlim(0, 1); ax.set_ylim(0, 1.02)
    ax.set_xlabel("threshold (probability at or above it = duplicate)"); ax.set_ylabel("value")
    ax.set_title("Precision, recall and F1 against the threshold")
    h1, l1 = ax.get_legend_handles_labels(); h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3,
              fontsize=8, frameon=False)
    ax.grid(alpha=0.3)
    return fig


def _per_category_fig(per_category):
    import matplotlib.pyplot as plt
    pc = per_category.sort_values("n_pairs", ascending=True) if "n_pairs" in per_category else per_category
    fig, ax = plt.subplots(figsize=(6.5, 0.45 * len(pc) + 1.2))
    vals = pd.to_numeric(pc["pr_auc"], errors="coerce").to_numpy(dtype=float)
    ax.barh([_t(c) for c in pc["category"].astype(str)], np.nan_to_num(vals), color="tab:blue")
    ns = pc["n_pairs"] if "n_pairs" in pc else [None] * len(pc)
    for yi, (v, n) in enumerate(zip(vals, ns)):
        txt = "n/a (one class)" if np.isnan(v) else f"{v:.3f}"
        ax.text(0.01 if np.isnan(v) else v + 0.01, yi,
                txt + (f"  (n={n})" if n is not None else ""), va="center", fontsize=8)
    ax.set_xlim(0, 1.25); ax.set_xlabel("PR-AUC"); ax.set_title("PR-AUC per top-level category")
    return fig


def _importance_fig(importance):
    import matplotlib.pyplot as plt
    top = importance.sort_values(ascending=False).head(30)[::-1]
    fig, ax = plt.subplots(figsize=(7, 0.28 * len(top) + 1.2))
    ax.barh([_t(i) for i in top.index.astype(str)], top.values, color="tab:green")
    ax.set_xlabel("share of importance"); ax.set_title("Top features")
    return fig


# ---------------------------------------------------------------- cross-validation

def _cv_section(cv: dict):
    """(JSON-safe summary, HTML block, figure or None) of the matcher's cv dict."""
    folds = pd.DataFrame(list(cv.get("folds") or []))
    oof = cv.get("oof") or {}
    pr = pd.to_numeric(folds["pr_auc"], errors="coerce") if "pr_auc" in folds else pd.Series(dtype=float)
    mean = cv.get("pr_auc_mean", float(np.nanmean(pr)) if pr.notna().any() else float("nan"))
    std = cv.get("pr_auc_std", float(np.nanstd(pr)) if pr.notna().any() else float("nan"))
    summary = {k: v for k, v in cv.items() if k not in ("folds", "oof")}
    summary.update({"folds": folds.to_dict(orient="records"), "oof": oof,
                    "pr_auc_mean": mean, "pr_auc_std": std})
    parts = []
    if cv.get("grouping"):
        parts.append(f"pairs grouped by {html.escape(str(cv['grouping']))}")
    if _finite(mean):
        parts.append(f"PR-AUC {float(mean):.4f} ± {float(std):.4f} across {len(folds)} folds")
    if _finite(oof.get("pr_auc")):
        parts.append(f"out-of-fold PR-AUC {float(oof['pr_auc']):.4f}")
    block = "<h2>Cross-validation folds</h2>"
    if parts:
        block += "<p>" + "; ".join(parts) + "</p>"
    block += (folds.to_html(index=False, escape=True, na_rep="n/a", float_format=lambda v: f"{v:.4f}")
              if len(folds) else "<p class='note'>No folds recorded.</p>")
    fig = _cv_fig(folds, pr, mean, std, oof) if pr.notna().any() else None
    return summary, block, fig


def _cv_fig(folds, pr, mean, std, oof):
    """PR-AUC of each fold with the mean ± std band (ROC-AUC stays in the table, so the
    y axis can zoom in on the PR-AUC spread)."""
    import matplotlib.pyplot as plt
    k = len(folds)
    x = np.arange(k)
    fig, ax = plt.subplots(figsize=(max(5.0, 0.7 * k + 2.5), 4.2))
    if _finite(mean) and _finite(std):
        ax.axhspan(float(mean) - float(std), float(mean) + float(std), color="tab:blue", alpha=0.12,
                   label=f"mean ± std {float(mean):.4f} ± {float(std):.4f}")
        ax.axhline(float(mean), c="tab:blue", lw=1)
    ax.plot(x, pr, "o", ms=8, c="tab:blue", label="PR-AUC of the fold")
    vals = [pr.to_numpy(dtype=float)]
    if _finite(oof.get("pr_auc")):
        ax.axhline(float(oof["pr_auc"]), c="black", ls="--", lw=1,
                   label=f"out-of-fold PR-AUC {float(oof['pr_auc']):.4f}")
        vals.append(np.array([float(oof["pr_auc"])]))
    for xi, v in zip(x, pr):
        if np.isfinite(v):
            ax.annotate(f"{v:.3f}", (xi, v), textcoords="offset points", xytext=(8, -3), fontsize=8)
    labels = []
    for i, rec in enumerate(folds.to_dict(orient="records")):
        f = rec.get("fold", i)
        lab = f"fold {int(f)}" if _finite(f) and float(f) == int(float(f)) else f"fold {_t(f)}"
        if _finite(rec.get("n_pairs")):
            lab += f"\nn={int(rec['n_pairs'])}"
        labels.append(lab)
    ax.set_xticks(x); ax.set_xticklabels(labels, fontsize=8)
    allv = np.concatenate(vals)
    allv = allv[np.isfinite(allv)]
    lo, hi = float(allv.min()), float(allv.max())
    if _finite(mean) and _finite(std):
        lo, hi = min(lo, float(mean) - float(std)), max(hi, float(mean) + float(std))
    pad = max(0.01, 0.25 * (hi - lo))
    ax.set_ylim(max(0.0, lo - pad), min(1.0, hi + pad) + 0.002)
    ax.set_xlim(-0.6, k - 0.4)
    ax.set_ylabel("PR-AUC on the held-out fold"); ax.set_title("Cross-validation spread")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=8, frameon=False)
    ax.grid(alpha=0.3, axis="y")
    return fig


# ---------------------------------------------------------------- SHAP

def _check_shap(shap):
    if shap is None:
        return None, None
    vals, X = shap
    vals = np.asarray(vals, dtype=float)
    if not isinstance(X, pd.DataFrame):
        X = pd.DataFrame(np.asarray(X))
    if vals.ndim != 2 or vals.shape != X.shape:
        raise ValueError(f"SHAP values of shape {vals.shape} do not match the feature frame {X.shape}")
    return vals, X


def _value_colours(col: pd.Series):
    """Rank of each value within its column in [0, 1]; NaN where not numeric or missing."""
    if isinstance(col.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(col):
        return np.full(len(col), np.nan)
    v = col.astype(float)
    if v.nunique(dropna=True) <= 1:
        return np.where(v.notna(), 0.5, np.nan)
    r = v.rank(method="average", pct=True).to_numpy(dtype=float)
    lo, hi = np.nanmin(r), np.nanmax(r)
    return (r - lo) / (hi - lo) if hi > lo else np.where(np.isnan(r), np.nan, 0.5)


def _shap_fig(vals: np.ndarray, X: pd.DataFrame):
    import matplotlib.pyplot as plt
    from matplotlib import cm
    from matplotlib.colors import Normalize
    mean_abs = np.nanmean(np.abs(vals), axis=0)
    top = np.argsort(-np.nan_to_num(mean_abs, nan=-1), kind="mergesort")[:SHAP_TOP_FEATURES]
    rng = np.random.RandomState(0)
    rows = np.arange(len(vals))
    if len(rows) > SHAP_MAX_ROWS:
        rows = np.sort(rng.choice(rows, SHAP_MAX_ROWS, replace=False))
    V, Xs = vals[rows], X.iloc[rows]
    cmap = plt.get_cmap("coolwarm")
    fig, ax = plt.subplots(figsize=(7.5, 0.38 * len(top) + 1.6))
    for pos, j in enumerate(top[::-1]):  # most important at the top
        s = V[:, j]
        ok = np.isfinite(s)
        s = s[ok]
        if not len(s):
            continue
        # beeswarm-like: jitter proportional to how crowded that SHAP value is
        bins = np.linspace(s.min(), s.max() + 1e-12, 41)
        counts, _ = np.histogram(s, bins=bins)
        dens = counts[np.clip(np.digitize(s, bins) - 1, 0, len(counts) - 1)] / max(counts.max(), 1)
        jit = (rng.rand(len(s)) - 0.5) * 0.8 * np.sqrt(dens)
        c = _value_colours(Xs.iloc[:, j])[ok]
        grey = np.isnan(c)
        if grey.any():
            ax.scatter(s[grey], pos + jit[grey], s=6, c="#999999", alpha=0.6, linewidths=0)
        if (~grey).any():
            ax.scatter(s[~grey], pos + jit[~grey], s=6, c=cmap(c[~grey]), alpha=0.8, linewidths=0)
    ax.axvline(0, c="grey", lw=0.8)
    ax.set_yticks(range(len(top)))
    ax.set_yticklabels([_t(X.columns[j]) for j in top[::-1]], fontsize=8)
    ax.set_ylim(-0.7, len(top) - 0.3)
    ax.set_xlabel("SHAP value (contribution to the log-odds of being a duplicate)")
    ax.set_title(f"SHAP summary: top {len(top)} features by mean |SHAP|")
    sm = cm.ScalarMappable(norm=Normalize(0, 1), cmap=cmap); sm.set_array([])
    cb = fig.colorbar(sm, ax=ax, fraction=0.03, pad=0.02, ticks=[0, 1])
    cb.ax.set_yticklabels(["low", "high"]); cb.set_label("feature value (rank in its column)")
    ax.grid(alpha=0.2, axis="x")
    return fig


def _features_table(importance, shap_mean) -> str:
    """Collapsible table of the top features' numbers (importance share, mean |SHAP|)."""
    cols = {}
    if importance is not None and len(importance) > 0:
        cols["importance share"] = importance.astype(float)
    if shap_mean is not None:
        cols["mean |SHAP|"] = shap_mean
    if not cols:
        return ""
    t = pd.DataFrame(cols)
    t = t.sort_values(list(cols)[0], ascending=False).head(30)
    t.index = t.index.astype(str); t.index.name = "feature"
    body = t.reset_index().to_html(index=False, escape=True, na_rep="",
                                   float_format=lambda v: f"{v:.4f}")
    return f"<details><summary>Top features in numbers</summary>{body}</details>"


# ---------------------------------------------------------------- ablation, components

def _ablation_frame(ablation) -> pd.DataFrame | None:
    if ablation is None:
        return None
    abl = pd.DataFrame(ablation).reset_index(drop=True)
    if "delta" in abl.columns:
        abl["delta"] = pd.to_numeric(abl["delta"], errors="coerce")
        abl = abl.sort_values("delta", ascending=True, na_position="last", kind="mergesort")
    return abl.reset_index(drop=True)


def _ablation_label(r) -> str:
    v, w = r.get("variant"), r.get("what")
    parts = [str(x) for x in (v, w) if x is not None and not (isinstance(x, float) and np.isnan(x))]
    if len(parts) == 2 and parts[0] != parts[1]:
        return f"{parts[0]} ({parts[1]})"
    return parts[0] if parts else "?"


def _ablation_fig(abl: pd.DataFrame):
    import matplotlib.pyplot as plt
    a = abl[abl["delta"].notna()]
    labels = [_t(_ablation_label(r)) for _, r in a.iterrows()][::-1]
    d = a["delta"].to_numpy(dtype=float)[::-1]
    fig, ax = plt.subplots(figsize=(7.5, 0.4 * len(a) + 1.5))
    colours = ["tab:red" if v < 0 else "tab:blue" for v in d]
    ax.barh(range(len(d)), d, color=colours)
    ax.set_yticks(range(len(d))); ax.set_yticklabels(labels, fontsize=8)
    ax.axvline(0, c="black", lw=0.8)
    span = float(np.max(np.abs(d))) if len(d) else 0.0
    for yi, v in enumerate(d):
        ax.text(v + (0.02 * span if v >= 0 else -0.02 * span), yi, f"{v:+.4f}", va="center",
                ha="left" if v >= 0 else "right", fontsize=7)
    lim = span * 1.35 if span > 0 else 0.01
    ax.set_xlim(-lim, lim)
    ax.set_xlabel("PR-AUC change against the reference run\n('- X': X removed, '+ X': X added; "
                  "red: worse, blue: better)")
    ax.set_title("Ablation")
    ax.grid(alpha=0.3, axis="x")
    return fig


def _components_html(components: dict) -> str:
    scalars = {k: v for k, v in components.items()
               if not isinstance(v, (dict, list, tuple, np.ndarray, pd.Series, pd.DataFrame))}
    nested = {k: v for k, v in components.items() if k not in scalars}
    out = ["<h2>Model components</h2>"]
    if scalars:
        out.append("<table>" + "".join(f"<tr><td>{html.escape(str(k))}</td><td>{_fmt(v)}</td></tr>"
                                       for k, v in scalars.items()) + "</table>")
    if nested:
        text = json.dumps(nested, indent=2, default=_json_default, ensure_ascii=False)
        out.append(f"<pre>{html.escape(text)}</pre>")
    return "".join(out)


# ---------------------------------------------------------------- examples

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


SHAP_ROWS = 1000  # pairs explained for the SHAP summary: enough for the picture, cheap for the booster


def matcher_report(matcher, out_dir: str | os.PathLike, listings: pd.DataFrame, pairs: pd.DataFrame,
                   y: np.ndarray, p: np.ndarray, category: np.ndarray, title: str, data_name: str,
                   ablation: pd.DataFrame | None = None, examples: pd.DataFrame | None = None,
                   extra_html: str = "", seed: int = 0) -> Path:
    """The report of a trained DuplicateMatcher on scored pairs: curves, per-category PR-AUC,
    importance, SHAP of the first booster on a sample of the pairs, CV folds, components."""
    from dupsearch.models.metrics import binary_metrics, per_category_metrics
    met = binary_metrics(y, p, threshold=matcher.threshold_)
    pc = per_category_metrics(y, p, category, threshold=matcher.threshold_)
    shap = None
    if len(pairs):
        sample = pairs.sample(min(SHAP_ROWS, len(pairs)), random_state=seed)
        X = matcher.features(listings, sample).reindex(columns=matcher.feature_names)
        shap = (matcher.models_[0].shap_values(X), X)
    return write_report(out_dir, y, p, met, pc, matcher.importance_, title=title, data_name=data_name,
                        examples=examples, extra_html=extra_html, cv=matcher.metrics_.get("cv"), shap=shap,
                        ablation=ablation,
                        components=matcher.metrics_.get("ensemble"),
                        clustering=matcher.metrics_.get("clustering"))
