"""The labelling session in a terminal: two listings side by side (rich), one key per answer."""

from __future__ import annotations

import sys
from typing import Callable

from rich.console import Console
from rich.table import Table

from dupsearch.label.session import KEYS, Session


def read_key() -> str:
    """One key: a single key press on a terminal, a line from a pipe (scripted answers);
    the end of the input quits."""
    if sys.stdin.isatty():
        import click
        return click.getchar()
    line = sys.stdin.readline()
    return line if line else "q"


def _cell(v: dict) -> dict:
    price = "" if v["price"] is None else f"{v['price']:,.0f}"
    attrs = "\n".join(f"{k}: {x}" for k, x in v["attributes"])
    photos = "\n".join(v["images"][:3]) + (f"\n(+{len(v['images']) - 3} more)" if len(v["images"]) > 3 else "")
    return {"title": v["title"], "price": price, "category": v["category"], "city / seller":
            f"{v['city']} / {v['seller']}", "attributes": attrs, "description": v["description"], "photos": photos,
            "item id": v["item_id"]}


def show(console: Console, q: dict) -> None:
    a, b = _cell(q["a"]), _cell(q["b"])
    t = Table(title=f"same item?  model score {q['score']:.3f} (threshold {q['threshold']:.3f}; {q['model']})",
              show_lines=True, expand=True)
    t.add_column("", style="dim", no_wrap=True)
    t.add_column("listing A", ratio=1)
    t.add_column("listing B", ratio=1)
    for field in a:
        if a[field] or b[field]:
            t.add_row(field, a[field], b[field])
    console.print(t)
    nxt = f"; retraining in {q['next_retrain']}" if q["next_retrain"] else ""
    console.print(f"answered {q['answers']} (y {q['y']}, n {q['n']}, u {q['u']}){nxt}.  "
                  + "  ".join(f"[bold]{k}[/bold] {v}" for k, v in KEYS.items()))


def run_terminal(session: Session, console: Console, key: Callable[[], str] = read_key) -> dict:
    """Ask until quit (or every pair is answered); returns the counts."""
    while not session.finished:
        q = session.question()
        if q is None:
            console.print("every candidate pair is answered")
            break
        show(console, q)
        line = session.press(key())
        if line:
            console.print(line)
    return session.counts()
