"""groups.html: the duplicate groups of a dedup run, as a page a moderator can browse.

One self-contained file (its styles, script and data inline; photos referenced by paths relative
to the page), so it opens from disk with no server and loads nothing from elsewhere. Groups come
largest first, then least certain (lowest mean score of the pairs inside); a button puts the
least certain first. Each group shows its listings side by side (title, price, attributes,
photos, seller, city) and every scored pair inside it with its score and the blockers that
proposed it; a search box finds the group of an item id. At most ``MAX_GROUPS`` groups are
written (the page says how many there are): a moderator's queue, not an export.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from dupsearch.atomic import atomic_write_bytes

PAGE = "groups.html"
MAX_GROUPS = 2000
MAX_MEMBERS_SHOWN = 40  # listings drawn per group; a larger group says how many more it has
DESCRIPTION_CHARS = 400


def _text(v, limit: int | None = None) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return ""
    s = str(v)
    return s if limit is None or len(s) <= limit else s[:limit] + "…"


def _attributes(v) -> list[list[str]]:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return []
    items = v.items() if isinstance(v, dict) else v
    return [[_text(k), _text(x)] for k, x in items]


def listing_fields(r, description_chars: int = DESCRIPTION_CHARS) -> dict:
    """What a person needs to judge one listing (a row of the listings frame), as plain
    JSON-ready values; photos are left to the caller (paths relative to a page, or served)."""
    price = r.get("price")
    return {"item_id": _text(r.get("item_id")), "title": _text(r.get("title")),
            "price": None if price is None or pd.isna(price) else float(price),
            "description": _text(r.get("description"), description_chars),
            "category": " / ".join(_text(r.get(c)) for c in ("category_l1", "category_l2", "category_l3")
                                   if _text(r.get(c))),
            "city": _text(r.get("city")), "seller": _text(r.get("seller_id")),
            "attributes": _attributes(r.get("attributes"))}


def _photos(v, page_dir: Path) -> list[str]:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return []
    out = []
    for p in list(v)[:4]:
        p = str(p)
        if "://" in p:
            out.append(p)
        else:  # relative to the page, so the page and the photos open from disk together
            out.append(Path(os.path.relpath(os.path.abspath(p), page_dir)).as_posix())
    return out


def group_table(clusters: pd.Series, pairs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Groups of two or more (size, pairs inside, mean and lowest score), in page order, and the
    scored pairs inside them. ``clusters``: item id -> cluster label; ``pairs``: item_id_a,
    item_id_b, score, blockers (every scored pair; those across groups are dropped)."""
    label = clusters.astype(np.int64)
    la = label.reindex(pairs["item_id_a"].astype(str)).to_numpy()
    lb = label.reindex(pairs["item_id_b"].astype(str)).to_numpy()
    sizes = label.value_counts()
    inside = pairs[(la == lb) & (sizes.reindex(la).to_numpy() >= 2)].copy()
    inside["group"] = la[(la == lb) & (sizes.reindex(la).to_numpy() >= 2)]
    stats = inside.groupby("group")["score"].agg(["mean", "min", "count"])
    groups = pd.DataFrame({"size": sizes[sizes >= 2]})
    groups = groups.join(stats).fillna({"count": 0})
    groups = groups.rename(columns={"mean": "mean_score", "min": "min_score", "count": "pairs"})
    return page_order(groups), inside


def page_order(groups: pd.DataFrame) -> pd.DataFrame:
    """Groups (index: label; size, mean_score) largest first, then least certain, then label."""
    groups = groups.sort_index(kind="stable")
    return groups.sort_values(["size", "mean_score"], ascending=[False, True], kind="stable")


def write_groups_page(out_dir: str | os.PathLike, listings: pd.DataFrame, clusters: pd.Series,
                      pairs: pd.DataFrame, *, method: str, threshold: float, n_listings: int | None = None,
                      groups: pd.DataFrame | None = None, title: str = "dupsearch: duplicate groups") -> Path:
    """Write OUT/groups.html (atomically) for the groups ``clusters`` names; returns its path.

    An engine that holds the catalogue elsewhere (Spark) passes ``groups`` (every group's size
    and score figures, as ``group_table`` makes them), the catalogue's size, and only the shown
    groups' members, listings and pairs."""
    out = Path(out_dir)
    if groups is None:
        groups, inside = group_table(clusters, pairs)
    else:
        groups, inside = page_order(groups), group_table(clusters, pairs)[1]
    shown = groups.head(MAX_GROUPS)
    by_group = dict(tuple(inside[inside["group"].isin(shown.index)].groupby("group")))
    lst = listings.set_index(listings["item_id"].astype(str), drop=False)
    member_ids = clusters.index.astype(str)
    members_of = pd.Series(member_ids, index=clusters.to_numpy()).groupby(level=0)
    index_of: dict[str, int] = {}
    cards: list[dict] = []
    data_groups = []
    for g, row in shown.iterrows():
        ids = sorted(members_of.get_group(g).tolist())
        drawn = ids[:MAX_MEMBERS_SHOWN]
        for i in drawn:
            if i not in index_of:
                r = lst.loc[i]
                index_of[i] = len(cards)
                fields = listing_fields(r)
                del fields["item_id"]
                cards.append({"id": i, **fields, "photos": _photos(r.get("images"), out)})
        gp = by_group.get(g)
        plist = [] if gp is None else [
            [a, b, round(float(s), 4), bl] for a, b, s, bl in
            zip(gp["item_id_a"].astype(str), gp["item_id_b"].astype(str), gp["score"], gp["blockers"].astype(str))]
        plist.sort(key=lambda x: -x[2])
        data_groups.append({"group": int(g), "size": int(row["size"]), "mean": _round(row["mean_score"]),
                            "min": _round(row["min_score"]), "members": [index_of[i] for i in drawn],
                            "all_ids": ids, "pairs": plist})
    data = {"method": method, "threshold": float(threshold), "groups_total": int(len(groups)),
            "groups_shown": int(len(shown)), "listings_in_groups": int(groups["size"].sum()),
            "listings": int(len(clusters) if n_listings is None else n_listings), "cards": cards, "groups": data_groups}
    blob = json.dumps(data, ensure_ascii=False, allow_nan=False).replace("</", "<\\/")
    page = (_TEMPLATE.replace("__TITLE__", html.escape(title)).replace("__HELPERS__", JS_HELPERS)
            .replace("__DATA__", blob))
    path = out / PAGE
    atomic_write_bytes(path, page.encode("utf-8"))
    return path


# The pages' small DOM helpers ($: element by id; el: element with attributes and children).
JS_HELPERS = """const $ = (id) => document.getElementById(id);
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const k of kids) e.append(k);
  return e;
}
"""


def _round(v) -> float | None:
    return None if v is None or pd.isna(v) else round(float(v), 4)


_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>__TITLE__</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;margin:0;background:#f4f5f7;color:#222}
header{background:#fff;padding:0.8em 1.2em;border-bottom:1px solid #ddd;position:sticky;top:0;z-index:2}
header h1{font-size:1.2em;margin:0 0 0.3em}
.controls{display:flex;gap:0.6em;flex-wrap:wrap;align-items:center}
.controls input{padding:0.3em 0.5em;width:16em}
button{padding:0.3em 0.7em;cursor:pointer}
button.on{background:#2860c8;color:#fff;border-color:#2860c8}
main{padding:1em 1.2em}
.group{background:#fff;border:1px solid #ddd;border-radius:6px;margin:0 0 1.2em;padding:0.8em}
.group h2{font-size:1em;margin:0 0 0.5em}
.cards{display:flex;gap:0.7em;overflow-x:auto;padding-bottom:0.4em}
.card{flex:0 0 17em;border:1px solid #e3e3e3;border-radius:5px;padding:0.5em;font-size:0.85em;background:#fcfcfc}
.card.hit{outline:3px solid #e0a030}
.card h3{font-size:1em;margin:0.2em 0}
.card .price{font-weight:bold;color:#0a7a32}
.card .meta{color:#666}
.card img{width:5em;height:5em;object-fit:cover;margin:2px;border-radius:3px}
.card dl{display:grid;grid-template-columns:auto 1fr;gap:0 0.5em;margin:0.3em 0}
.card dt{color:#666}.card dd{margin:0}
.card .desc{white-space:pre-wrap;color:#444;max-height:7em;overflow:auto}
table{border-collapse:collapse;font-size:0.85em;margin-top:0.5em}
td,th{padding:2px 8px;border-bottom:1px solid #eee;text-align:left}
.low{color:#b3261e}.note{color:#666;font-size:0.9em}
nav{margin:0.5em 0}
</style></head><body>
<header><h1>__TITLE__</h1>
<div class="note" id="summary"></div>
<div class="controls">
<button id="by-size" class="on">largest first</button>
<button id="by-doubt">least certain first</button>
<input id="search" placeholder="find an item id" aria-label="item id">
<button id="go">find</button><button id="clear">show all</button>
<span id="status" class="note"></span></div></header>
<main><nav id="pager-top"></nav><div id="groups"></div><nav id="pager-bottom"></nav></main>
<script id="data" type="application/json">__DATA__</script>
<script>
"use strict";
const DATA = JSON.parse(document.getElementById("data").textContent);
const PER_PAGE = 20;
let order = DATA.groups.slice();
let view = order, page = 0, hit = null;
__HELPERS__
function card(i) {
  const c = DATA.cards[i];
  const d = el("div", {class: "card" + (c.id === hit ? " hit" : ""), "data-id": c.id});
  d.append(el("h3", {}, c.title || "(no title)"));
  if (c.price !== null) d.append(el("div", {class: "price"}, c.price.toLocaleString()));
  d.append(el("div", {class: "meta"}, "id " + c.id + (c.seller ? " · seller " + c.seller : "") + (c.city ? " · " + c.city : "")));
  if (c.category) d.append(el("div", {class: "meta"}, c.category));
  const ph = el("div", {});
  for (const p of c.photos) ph.append(el("img", {src: p, alt: "photo of " + c.id, loading: "lazy"}));
  if (c.photos.length) d.append(ph);
  if (c.attributes.length) {
    const dl = el("dl", {});
    for (const [k, v] of c.attributes) { dl.append(el("dt", {}, k)); dl.append(el("dd", {}, v)); }
    d.append(dl);
  }
  if (c.description) d.append(el("div", {class: "desc"}, c.description));
  return d;
}
function group(g) {
  const box = el("section", {class: "group", "data-group": String(g.group)});
  const certainty = g.mean === null ? "no scored pair inside" :
    "mean score inside " + g.mean.toFixed(3) + ", lowest " + g.min.toFixed(3);
  box.append(el("h2", {}, "group " + g.group + " · " + g.size + " listings · " + certainty));
  const cards = el("div", {class: "cards"});
  for (const i of g.members) cards.append(card(i));
  box.append(cards);
  if (g.size > g.members.length) box.append(el("div", {class: "note"}, (g.size - g.members.length) + " more listings: " + g.all_ids.slice(g.members.length).join(", ")));
  const t = el("table", {});
  t.append(el("tr", {}, el("th", {}, "listing"), el("th", {}, "listing"), el("th", {}, "score"), el("th", {}, "proposed by")));
  for (const [a, b, s, bl] of g.pairs) {
    t.append(el("tr", {}, el("td", {}, a), el("td", {}, b),
      el("td", {class: s < DATA.threshold ? "low" : ""}, s.toFixed(3)), el("td", {}, bl)));
  }
  box.append(el("div", {class: "note"}, g.pairs.length + " scored pairs inside (red: below the threshold " + DATA.threshold.toFixed(2) + ")"));
  box.append(t);
  return box;
}
function pager(nav) {
  nav.replaceChildren();
  const pages = Math.max(1, Math.ceil(view.length / PER_PAGE));
  const prev = el("button", {}, "previous"), next = el("button", {}, "next");
  prev.disabled = page === 0; next.disabled = page >= pages - 1;
  prev.onclick = () => { page--; render(); }; next.onclick = () => { page++; render(); };
  nav.append(prev, " page " + (page + 1) + " of " + pages + " ", next);
}
function render() {
  const box = $("groups");
  box.replaceChildren();
  for (const g of view.slice(page * PER_PAGE, (page + 1) * PER_PAGE)) box.append(group(g));
  pager($("pager-top")); pager($("pager-bottom"));
}
function sortBy(key) {
  $("by-size").classList.toggle("on", key === "size");
  $("by-doubt").classList.toggle("on", key === "doubt");
  order = DATA.groups.slice();
  const mean = (g) => g.mean === null ? -1 : g.mean;
  if (key === "doubt") order.sort((a, b) => mean(a) - mean(b) || b.size - a.size);
  view = order; page = 0; hit = null; render();
}
function find() {
  const id = $("search").value.trim();
  if (!id) return;
  const found = order.filter((g) => g.all_ids.includes(id));
  hit = id;
  $("status").textContent = found.length ? "" : "item " + id + " is in no group shown here";
  view = found; page = 0; render();
}
$("by-size").onclick = () => sortBy("size");
$("by-doubt").onclick = () => sortBy("doubt");
$("go").onclick = find;
$("search").addEventListener("keydown", (e) => { if (e.key === "Enter") find(); });
$("clear").onclick = () => { $("search").value = ""; $("status").textContent = ""; hit = null; view = order; page = 0; render(); };
$("summary").textContent = DATA.groups_total.toLocaleString() + " groups of two or more (" +
  DATA.listings_in_groups.toLocaleString() + " of " + DATA.listings.toLocaleString() + " listings), method " +
  DATA.method + " at threshold " + DATA.threshold.toFixed(2) +
  (DATA.groups_shown < DATA.groups_total ? "; the first " + DATA.groups_shown.toLocaleString() + " are shown" : "");
render();
</script></body></html>
"""
