"""groups.html in a real browser (Debian's Chromium, driven by Playwright): the page of a small
generated catalogue's dedup loads with no console errors, loads nothing from elsewhere, and
shows, sorts and finds the groups that clusters.parquet holds."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from tests.helpers import run_cli

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (extra dev) drives the browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (.ci/run installs Debian's)")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("page")
    data = root / "data"
    run_cli("generate", data, "-n", 1200, "--seed", 4, "--no-photos", check_ok=True)
    out = root / "dd"
    run_cli("dedup", data / "listings.parquet", "--out", out, check_ok=True)  # the default model
    clusters = pd.read_parquet(out / "clusters.parquet")
    return {"out": out, "clusters": clusters, "listings": pd.read_parquet(data / "listings.parquet")}


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, run):
    pg = browser.new_page()
    problems, requests = [], []
    pg.on("console", lambda m: problems.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
    pg.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    pg.on("request", lambda r: requests.append(r.url))
    pg.goto((run["out"] / "groups.html").as_uri())
    pg.wait_for_selector("section.group")
    yield pg, problems, requests
    pg.close()


def _group_sizes(clusters: pd.DataFrame) -> pd.Series:
    sizes = clusters["cluster"].value_counts()
    return sizes[sizes >= 2]


def test_page_loads_clean_and_shows_the_runs_groups(page, run):
    pg, problems, requests = page
    sizes = _group_sizes(run["clusters"])
    assert len(sizes) > 20
    assert problems == []
    assert all(u.startswith(("file://", "data:")) for u in requests), requests  # nothing from elsewhere
    assert f"{len(sizes):,} groups of two or more" in pg.inner_text("#summary")
    shown = pg.locator("section.group")
    assert shown.count() == 20  # one page
    # largest first: the first group has the most listings, and its cards are its members
    first = shown.nth(0)
    label = int(first.get_attribute("data-group"))
    assert sizes[label] == sizes.max()
    members = set(run["clusters"].loc[run["clusters"]["cluster"] == label, "item_id"].astype(str))
    cards = {first.locator(".card").nth(i).get_attribute("data-id") for i in range(first.locator(".card").count())}
    assert cards == members
    title = run["listings"].set_index("item_id").loc[sorted(members)[0], "title"]
    assert title in first.inner_text()
    assert "proposed by" in first.inner_text()


def test_least_certain_first_and_paging(page):
    pg, problems, _ = page
    pg.click("#by-doubt")
    heads = [pg.locator("section.group h2").nth(i).inner_text() for i in range(3)]
    means = [float(h.split("mean score inside ")[1].split(",")[0]) for h in heads if "mean score inside" in h]
    assert means == sorted(means) and len(means) >= 2
    pg.locator("#pager-top button", has_text="next").click()
    assert "page 2 of" in pg.inner_text("#pager-top")
    assert problems == []


def test_search_by_item_id_finds_its_group(page, run):
    pg, problems, _ = page
    sizes = _group_sizes(run["clusters"])
    label = int(sizes.index[-1])
    target = str(run["clusters"].loc[run["clusters"]["cluster"] == label, "item_id"].iloc[-1])
    pg.fill("#search", target)
    pg.press("#search", "Enter")
    assert pg.locator("section.group").count() == 1
    assert int(pg.locator("section.group").get_attribute("data-group")) == label
    assert pg.locator(f".card.hit[data-id='{target}']").count() == 1
    single = run["clusters"]["cluster"].map(run["clusters"]["cluster"].value_counts()) == 1
    lonely = str(run["clusters"].loc[single, "item_id"].iloc[0])
    pg.fill("#search", lonely)
    pg.click("#go")
    assert pg.locator("section.group").count() == 0
    assert "in no group" in pg.inner_text("#status")
    pg.click("#clear")
    assert pg.locator("section.group").count() == 20
    assert problems == []


def test_photos_show_from_the_page_beside_them(browser, tmp_path):
    """A catalogue with photos, deduplicated with the default model: the page's photos are paths
    relative to it, and they load."""
    data = tmp_path / "data"
    run_cli("generate", data, "-n", 400, "--seed", 9, "--photos", check_ok=True)
    out = tmp_path / "dd"
    run_cli("dedup", data / "listings.parquet", "--out", out, check_ok=True)
    pg = browser.new_page()
    problems = []
    pg.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    pg.goto((out / "groups.html").as_uri())
    pg.wait_for_selector("section.group img")
    pg.wait_for_function("[...document.querySelectorAll('section.group img')].slice(0, 10).every((i) => i.complete)")
    srcs = pg.eval_on_selector_all("section.group img", "els => els.map((e) => e.getAttribute('src'))")
    assert srcs and all(s.startswith("../data/photos/") for s in srcs)
    assert pg.evaluate("[...document.querySelectorAll('section.group img')].slice(0, 10)"
                       ".every((i) => i.naturalWidth > 0)")
    assert problems == []
    pg.close()
