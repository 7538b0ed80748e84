"""Category tree, attribute schemas, product catalogues and ad texts of the synthetic marketplace.

A *kind* is one type of goods (phones, used cars, flats for sale, puppies...) with its place in
the four-level category tree, a product catalogue (the *family* level: brand and model, breed,
building), item-level variants (memory, colour, size, year, floor...), a price model and the
texts people write about it. Sampling is vectorized over all items of a kind (numpy); only
:meth:`Kind.render` runs per item, once per underlying item (duplicates reuse it).
"""

from __future__ import annotations

import abc
import random
from dataclasses import dataclass
from typing import Any

import numpy as np

from dupsearch.synth import words as W

YEAR_NOW = 2024

# Attribute keys whose values are equal for all items of one family (hard negatives share them).
FAMILY_KEYS = ("Бренд", "Марка", "Модель", "Порода", "Адрес", "Вид", "Автор", "Название")


@dataclass(frozen=True)
class Noun:
    """A noun pre-inflected: nominative (title case), accusative (lower case), gender m/f/n/p."""

    nom: str
    acc: str
    g: str

    @property
    def low(self) -> str:
        return self.nom[0].lower() + self.nom[1:]


@dataclass
class Rendered:
    path: tuple[str, str, str, str]
    attrs: dict[str, str]
    titles: list[str]          # alternative titles of one item; a listing uses one of them
    core: list[str]            # item sentences, the first is the opener
    tails: str                 # which pool of generic sentences follows: goods/car/sale/rent/animal
    cond: int = -1             # condition level for the generic condition sentence, -1 none


def fmt_int(n: int) -> str:
    return f"{int(n):,}".replace(",", " ")


def fmt_dec(x: float) -> str:
    """54.3 -> '54,3', 54.0 -> '54' (Russian decimal comma)."""
    s = f"{x:.1f}".rstrip("0").rstrip(".")
    return s.replace(".", ",")


def plural(n: int, one: str, few: str, many: str) -> str:
    n = abs(int(n))
    if n % 10 == 1 and n % 100 != 11:
        return one
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return few
    return many


def age_text(months: int) -> str:
    if months < 12:
        return f"{months} {plural(months, 'месяц', 'месяца', 'месяцев')}"
    years, rest = divmod(months, 12)
    if rest >= 6 and years < 3:
        return f"{years},5 года"
    return f"{years} {plural(years, 'год', 'года', 'лет')}"


_SELLS = {"m": "Продаётся", "f": "Продаётся", "n": "Продаётся", "p": "Продаются"}


def opener(noun: Noun, name: str, rnd: random.Random) -> str:
    name = f" {name}" if name else ""
    k = rnd.randrange(5)
    if k == 0:
        return f"Продаю {noun.acc}{name}."
    if k == 1:
        return f"Продам {noun.acc}{name}."
    if k == 2:
        return f"{_SELLS[noun.g]} {noun.low}{name}."
    if k == 3:
        return f"В продаже {noun.low}{name}."
    return f"Продаю свой {noun.acc}{name}." if noun.g == "m" else f"Продаю {noun.acc}{name}."


def round_price(p: np.ndarray) -> np.ndarray:
    """Prices as people write them: 10 ₽ steps below 1000, then 100, 500, 1000, 10 000."""
    p = np.asarray(p, dtype=np.float64)
    free = p <= 0
    p = np.maximum(p, 10.0)
    step = np.select([p < 1_000, p < 10_000, p < 100_000, p < 1_000_000, p < 10_000_000],
                     [10, 100, 500, 1_000, 10_000], 50_000)
    return np.where(free, 0.0, np.round(p / step) * step)


def _objects(values: list) -> np.ndarray:
    """A 1-d object array of ``values`` (tuples stay elements, not rows)."""
    out = np.empty(len(values), dtype=object)
    out[:] = [None] * len(values)
    for i, v in enumerate(values):
        out[i] = v
    return out


def _zipf(n: int, s: float) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1) ** s
    return w / w.sum()


# --------------------------------------------------------------------------- base kind


class Kind(abc.ABC):
    """One type of goods. Subclasses fill the class attributes and override the hooks."""

    key = ""
    l1 = ""
    l2 = ""
    weight = 1.0                 # share inside its top-level category
    shop_group: str | None = None
    tails = "goods"
    family_city = False          # items of one family are in one city (a building, a village)
    fields: tuple[str, ...] = ()
    products: list[tuple] = []
    popularity = 0.8             # Zipf exponent over the catalogue order
    variants: dict[str, list] = {}
    variant_weights: dict[str, list[float]] = {}
    variant_price: dict[str, list[float]] = {}
    numeric: dict[str, tuple[int, int]] = {}
    distinct: tuple[str, ...] = ()
    cond_weights: tuple[float, ...] | None = (0.1, 0.15, 0.38, 0.3, 0.07)
    price_sigma = 0.12

    # ---- sampling (vectorized)

    def sample_family(self, rng: np.random.Generator, m: int) -> dict[str, np.ndarray]:
        return {"product": rng.choice(len(self.products), size=m,
                                      p=_zipf(len(self.products), self.popularity))}

    def sample_item(self, rng: np.random.Generator, cols: dict[str, np.ndarray], m: int) -> None:
        for name, values in self.variants.items():
            w = self.variant_weights.get(name)
            p = None if w is None else np.asarray(w, float) / np.sum(w)
            cols[name] = rng.choice(len(values), size=m, p=p)
        for name, (lo, hi) in self.numeric.items():
            cols[name] = rng.integers(lo, hi + 1, size=m)
        if self.cond_weights is not None:
            cols["cond"] = rng.choice(len(self.cond_weights), size=m, p=self.cond_weights)

    def force_differ(self, rng: np.random.Generator, cols: dict[str, np.ndarray],
                     root: dict[str, np.ndarray], rows: np.ndarray) -> None:
        """Make each of ``rows`` differ from its family root in one ``distinct`` column."""
        which = rng.integers(len(self.distinct), size=len(rows))
        for k, name in enumerate(self.distinct):
            sel = rows[which == k]
            if not len(sel):
                continue
            base = root[name][sel]
            if name in self.variants:
                n = len(self.variants[name])
                cols[name][sel] = (base + 1 + rng.integers(n - 1, size=len(sel))) % n
            else:
                lo, hi = self._bounds(name, cols, sel)
                d = rng.choice(np.array([-2, -1, 1, 2]), size=len(sel))
                up = base + d
                cols[name][sel] = np.where((up >= lo) & (up <= hi), up, base - d)

    def _bounds(self, name: str, cols: dict[str, np.ndarray], sel: np.ndarray):
        return self.numeric[name]

    def finish(self, rng: np.random.Generator, cols: dict[str, np.ndarray], ctx: dict) -> None:
        base = np.array([p[self.fields.index("price")] for p in self.products], float)
        price = base[cols["product"]]
        for name, factors in self.variant_price.items():
            price = price * np.asarray(factors, float)[cols[name]]
        if "cond" in cols:
            price = price * np.asarray(W.CONDITION_PRICE)[cols["cond"]]
        price = price * rng.lognormal(0.0, self.price_sigma, size=len(price))
        cols["price"] = round_price(price)

    # ---- per item

    def decode(self, cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Columns for :meth:`render`: ``p`` is the product tuple, variants their values (object
        arrays of shared objects, so a million items cost pointers, not Python objects)."""
        out: dict[str, np.ndarray] = {}
        for name, arr in cols.items():
            if name == "product":
                out["p"] = _objects(self.products)[arr]
            elif name in self.variants:
                out[name] = _objects(self.variants[name])[arr]
            else:
                out[name] = arr
        return out

    @abc.abstractmethod
    def render(self, r: dict[str, Any], ctx: dict[str, Any], rnd: random.Random) -> Rendered:
        """Title, description, attributes and price of one item (each subclass writes its own)."""


def _pick(rnd: random.Random, pool: list[str], k: int) -> list[str]:
    return rnd.sample(pool, min(k, len(pool)))


def _clean(s: str) -> str:
    return " ".join(s.split())


# --------------------------------------------------------------------------- generic goods


class Goods(Kind):
    """Brand + model goods. Product tuples start with (noun, brand, model, price, ...)."""

    fields = ("noun", "brand", "model", "price")
    titles: list[str] = ["{name}", "{noun} {name}"]
    sentences: list[str] = []
    n_sentences = (1, 3)
    brand_key = "Бренд"

    def path(self, r) -> tuple[str, str, str, str]:
        return (self.l1, self.l2, "", "")

    def spec(self, r, noun: Noun) -> dict[str, str]:
        """Display strings of the variants for the templates."""
        return {}

    def attrs(self, r, s: dict[str, str]) -> dict[str, str]:
        p = r["p"]
        a = {self.brand_key: p[1], "Модель": p[2]} if p[1] else {"Вид": p[0].nom}
        return a

    def color(self, r, noun: Noun) -> str:
        return r["color"][1][noun.g]

    def render(self, r, ctx, rnd):
        p = r["p"]
        noun: Noun = p[0]
        name = _clean(f"{p[1]} {p[2]}")
        s = {"noun": noun.nom, "low": noun.low, "acc": noun.acc, "brand": p[1], "model": p[2],
             "name": name, **self.spec(r, noun)}
        if "color" in r:
            s["cm"] = r["color"][1]["m"]      # "Цвет чёрный": the attribute noun is masculine
        titles = [_clean(t.format(**s)) for t in self.titles]
        core = [opener(noun, name, rnd)]
        lo, hi = self.n_sentences
        for t in _pick(rnd, self.sentences, rnd.randint(lo, hi)):
            core.append(t.format(**s))
        attrs = self.attrs(r, s)
        if "cond" in r:
            attrs["Состояние"] = W.CONDITION_ATTR[r["cond"]]
        return Rendered(self.path(r), attrs, titles, core, self.tails, r.get("cond", -1))


COLORS = W.COLORS
_CW = W.COLOR_WEIGHTS


def _color_attr(r) -> str:
    return r["color"][0]


# --------------------------------------------------------------------------- Электроника

_PHONE = Noun("Смартфон", "смартфон", "m")
_TEL = Noun("Телефон", "телефон", "m")


class Phone(Goods):
    key, l1, l2, weight, shop_group = "phone", "Электроника", "Телефоны", 0.34, "tech"
    fields = ("noun", "brand", "model", "price", "ram")
    products = [
        (_TEL, "Apple", "iPhone 13", 50000, 4), (_TEL, "Apple", "iPhone 11", 28000, 4),
        (_TEL, "Apple", "iPhone 12", 38000, 4), (_TEL, "Apple", "iPhone 13 Pro", 65000, 6),
        (_TEL, "Apple", "iPhone 14 Pro Max", 90000, 6), (_TEL, "Apple", "iPhone 14", 60000, 6),
        (_PHONE, "Samsung", "Galaxy S21", 28000, 8), (_PHONE, "Xiaomi", "Redmi Note 12", 13000, 6),
        (_TEL, "Apple", "iPhone 15 Pro", 100000, 8), (_PHONE, "Samsung", "Galaxy A52", 17000, 6),
        (_TEL, "Apple", "iPhone XR", 17000, 3), (_PHONE, "Samsung", "Galaxy S22 Ultra", 60000, 12),
        (_PHONE, "Xiaomi", "Redmi Note 13 Pro", 22000, 8), (_PHONE, "Samsung", "Galaxy A54", 25000, 8),
        (_TEL, "Apple", "iPhone 15", 75000, 6), (_PHONE, "Xiaomi", "Poco X5 Pro", 20000, 8),
        (_PHONE, "Samsung", "Galaxy S23", 55000, 8), (_TEL, "Apple", "iPhone SE 2020", 14000, 3),
        (_PHONE, "Honor", "X8a", 12000, 6), (_PHONE, "Huawei", "P40 Pro", 25000, 8),
        (_PHONE, "Samsung", "Galaxy Z Flip4", 45000, 8), (_PHONE, "Xiaomi", "13T Pro", 45000, 12),
        (_PHONE, "Honor", "90", 28000, 8), (_PHONE, "Realme", "11 Pro", 20000, 8),
        (_PHONE, "Google", "Pixel 7", 30000, 8), (_PHONE, "Tecno", "Spark 10 Pro", 10000, 8),
        (_PHONE, "Huawei", "Nova 10", 22000, 8), (_PHONE, "Samsung", "Galaxy A14", 10000, 4),
        (_PHONE, "Xiaomi", "Redmi 12C", 7000, 4), (_PHONE, "OnePlus", "9 Pro", 32000, 8),
    ]
    variants = {"memory": [64, 128, 256, 512], "color": COLORS}
    variant_weights = {"memory": [0.2, 0.42, 0.28, 0.1], "color": _CW}
    variant_price = {"memory": [0.85, 1.0, 1.15, 1.35]}
    numeric = {"battery": (74, 100)}
    distinct = ("memory", "color")
    titles = ["{name} {mem}", "{model} {memg}", "{noun} {name} {ram}/{memn} ГБ", "{name} {memn}gb {color}",
              "{model} {mem} {color}", "{name} {memn}"]
    sentences = ["Память {mem}, цвет {color}.", "Все функции работают, не ремонтировался.",
                 "Экран без царапин, всегда был в чехле и под стеклом.",
                 "В комплекте коробка, кабель и чехол.", "Только телефон, без коробки.",
                 "Полный комплект, есть чек.", "Работает с любыми сим-картами.", "{battery_line}",
                 "{unlock_line}", "Камера отличная, снимает чётко.", "Оперативная память {ram} ГБ."]

    def path(self, r):
        return (self.l1, self.l2, "Мобильные телефоны", r["p"][1])

    def spec(self, r, noun):
        p, mem = r["p"], r["memory"]
        apple = p[1] == "Apple"
        mem_s = f"{mem} ГБ" if mem < 1000 else "1 ТБ"
        return {"mem": mem_s, "memg": f"{mem}GB", "memn": str(mem), "ram": str(p[4]),
                "color": self.color(r, noun),
                "battery_line": (f"Аккумулятор {r['battery']}%, держит день." if apple
                                 else "Батарея держит день активного использования."),
                "unlock_line": "Отвязан от iCloud, Face ID работает." if apple
                else "Аккаунт Google отвязан, NFC работает."}

    def attrs(self, r, s):
        a = {"Бренд": r["p"][1], "Модель": r["p"][2], "Встроенная память": s["mem"],
             "Цвет": _color_attr(r)}
        if r["p"][1] == "Apple":
            a["Ёмкость аккумулятора"] = f"{r['battery']}%"
        else:
            a["Оперативная память"] = f"{r['p'][4]} ГБ"
        return a


_LAPTOP = Noun("Ноутбук", "ноутбук", "m")


class Laptop(Goods):
    key, l1, l2, weight, shop_group = "laptop", "Электроника", "Ноутбуки", 0.14, "tech"
    fields = ("noun", "brand", "model", "price", "cpu")
    products = [
        (_LAPTOP, "Apple", "MacBook Air 13 M1", 60000, "Apple M1"),
        (_LAPTOP, "Lenovo", "IdeaPad 3 15ITL6", 35000, "Intel Core i5-1135G7"),
        (_LAPTOP, "ASUS", "VivoBook 15 X515", 30000, "Intel Core i3-1115G4"),
        (_LAPTOP, "ASUS", "TUF Gaming F15", 65000, "Intel Core i5-11400H"),
        (_LAPTOP, "Apple", "MacBook Pro 14 M1 Pro", 120000, "Apple M1 Pro"),
        (_LAPTOP, "HP", "Pavilion 15", 40000, "AMD Ryzen 5 5500U"),
        (_LAPTOP, "Acer", "Nitro 5 AN515", 60000, "Intel Core i5-10300H"),
        (_LAPTOP, "Lenovo", "ThinkPad T480", 25000, "Intel Core i5-8350U"),
        (_LAPTOP, "Huawei", "MateBook D 15", 38000, "Intel Core i5-1135G7"),
        (_LAPTOP, "Honor", "MagicBook 14", 40000, "AMD Ryzen 5 5500U"),
        (_LAPTOP, "MSI", "GF63 Thin", 55000, "Intel Core i5-10500H"),
        (_LAPTOP, "Acer", "Aspire 5 A515", 33000, "Intel Core i5-1135G7"),
        (_LAPTOP, "HP", "Victus 16", 70000, "AMD Ryzen 5 5600H"),
        (_LAPTOP, "Dell", "Latitude 5490", 22000, "Intel Core i5-8250U"),
        (_LAPTOP, "ASUS", "ROG Strix G15", 95000, "AMD Ryzen 7 4800H"),
        (_LAPTOP, "Xiaomi", "RedmiBook 15", 32000, "Intel Core i3-1115G4"),
    ]
    variants = {"ram": [8, 16, 32], "ssd": [256, 512, 1024], "color": COLORS[:3] + COLORS[10:11]}
    variant_weights = {"ram": [0.5, 0.4, 0.1], "ssd": [0.35, 0.5, 0.15]}
    variant_price = {"ram": [0.9, 1.0, 1.2], "ssd": [0.92, 1.0, 1.12]}
    distinct = ("ram", "ssd")
    titles = ["{noun} {name}", "{name} {ram}/{ssd}", "{noun} {name} {cpu_short}/{ram}/{ssd}",
              "{name} {ram}GB {ssd}GB SSD", "{model} {cpu_short} {ram}/{ssd}"]
    sentences = ["Процессор {cpu}, оперативная память {ram} ГБ, SSD {ssd} ГБ.",
                 "Батарея держит {hours} часов.", "Экран без битых пикселей.",
                 "Установлена Windows 11, всё летает." , "Подходит для учёбы и работы.",
                 "В комплекте зарядное устройство.", "Клавиатура с подсветкой.",
                 "Чистился от пыли, термопаста заменена.", "Корпус {color}, без трещин."]

    def path(self, r):
        return (self.l1, self.l2, "", "")

    def spec(self, r, noun):
        cpu = r["p"][4]
        short = cpu.replace("Intel Core ", "").replace("AMD Ryzen ", "R").replace("Apple ", "")
        ssd = r["ssd"]
        return {"cpu": cpu, "cpu_short": short.split("-")[0], "ram": str(r["ram"]),
                "ssd": str(ssd), "hours": str(4 + ssd % 7), "color": r["color"][1]["m"]}

    def attrs(self, r, s):
        return {"Бренд": r["p"][1], "Модель": r["p"][2], "Процессор": s["cpu"],
                "Оперативная память": f"{s['ram']} ГБ", "Объём накопителя": f"{s['ssd']} ГБ",
                "Цвет": _color_attr(r)}


_TABLET = Noun("Планшет", "планшет", "m")
_EBOOK = Noun("Электронная книга", "электронную книгу", "f")


class Tablet(Goods):
    key, l1, l2, weight, shop_group = "tablet", "Электроника", "Планшеты и электронные книги", 0.08, "tech"
    products = [
        (_TABLET, "Apple", "iPad 9 10.2", 25000), (_TABLET, "Apple", "iPad Air 5", 50000),
        (_TABLET, "Samsung", "Galaxy Tab S7", 35000), (_TABLET, "Xiaomi", "Pad 6", 25000),
        (_TABLET, "Apple", "iPad Pro 11 2021", 65000), (_TABLET, "Samsung", "Galaxy Tab A8", 13000),
        (_TABLET, "Huawei", "MatePad 11", 22000), (_TABLET, "Lenovo", "Tab P11", 15000),
        (_EBOOK, "PocketBook", "740 Pro", 14000), (_EBOOK, "Amazon", "Kindle Paperwhite 4", 9000),
    ]
    variants = {"memory": [64, 128, 256], "net": ["Wi-Fi", "Wi-Fi + Cellular"], "color": COLORS[:3]}
    variant_weights = {"memory": [0.45, 0.4, 0.15], "net": [0.7, 0.3]}
    variant_price = {"memory": [0.9, 1.0, 1.15], "net": [1.0, 1.12]}
    distinct = ("memory", "net", "color")
    titles = ["{noun} {name} {mem}", "{name} {memn}gb {net}", "{name} {mem} {color}", "{name}"]
    sentences = ["Память {mem}, {net}.", "Цвет {cm}.", "Экран без царапин, всегда в чехле.",
                 "В комплекте зарядка и чехол-книжка.", "Батарея держит отлично.",
                 "Подойдёт ребёнку для учёбы.", "Стилус в подарок."]

    def path(self, r):
        return (self.l1, self.l2, "Электронные книги" if r["p"][0] is _EBOOK else "Планшеты", "")

    def spec(self, r, noun):
        return {"mem": f"{r['memory']} ГБ", "memn": str(r["memory"]), "net": r["net"],
                "color": self.color(r, noun)}

    def attrs(self, r, s):
        return {"Бренд": r["p"][1], "Модель": r["p"][2], "Встроенная память": s["mem"],
                "Связь": s["net"], "Цвет": _color_attr(r)}


_HEAD = Noun("Наушники", "наушники", "p")
_SPEAKER = Noun("Колонка", "колонку", "f")
_STATION = Noun("Умная колонка", "умную колонку", "f")


class Audio(Goods):
    key, l1, l2, weight, shop_group = "audio", "Электроника", "Аудио и видео", 0.12, "tech"
    products = [
        (_HEAD, "Apple", "AirPods Pro 2", 16000), (_HEAD, "Sony", "WH-1000XM4", 18000),
        (_HEAD, "JBL", "Tune 510BT", 3000), (_SPEAKER, "JBL", "Charge 5", 11000),
        (_STATION, "Яндекс", "Станция Мини", 5000), (_HEAD, "Marshall", "Major IV", 9000),
        (_HEAD, "Samsung", "Galaxy Buds2 Pro", 9000), (_SPEAKER, "Marshall", "Emberton", 11000),
        (_HEAD, "Apple", "AirPods 3", 12000), (_SPEAKER, "Sony", "SRS-XB33", 8000),
        (_STATION, "Яндекс", "Станция 2", 15000), (_HEAD, "Xiaomi", "Redmi Buds 4 Pro", 4000),
        (_HEAD, "Sennheiser", "HD 450BT", 8000), (_SPEAKER, "JBL", "Flip 6", 7500),
    ]
    variants = {"color": COLORS[:5], "kit": ["полный комплект", "без коробки", "только кейс и наушники"]}
    variant_weights = {"color": [5, 4, 2, 1, 1]}
    distinct = ("color", "kit")
    titles = ["{noun} {name}", "{name}", "{name} {color}", "{name} оригинал", "{noun} {name} {kit}"]
    sentences = ["Оригинал, {kit}.", "Звук отличный, шумоподавление работает.",
                 "Цвет {cm}.", "Заряд держит долго.", "Покупал в М.Видео, есть чек.",
                 "Подключаются по Bluetooth к любому телефону.", "Проверка при встрече."]

    def path(self, r):
        sub = "Наушники" if r["p"][0] is _HEAD else "Акустика, колонки, сабвуферы"
        return (self.l1, self.l2, sub, "")

    def spec(self, r, noun):
        return {"color": self.color(r, noun), "kit": r["kit"]}

    def attrs(self, r, s):
        return {"Бренд": r["p"][1], "Модель": r["p"][2], "Цвет": _color_attr(r), "Комплектация": s["kit"]}


_TV = Noun("Телевизор", "телевизор", "m")


class TV(Goods):
    """Model code changes with the diagonal: a family is a series (UE**AU7100U)."""

    key, l1, l2, weight, shop_group = "tv", "Электроника", "Аудио и видео", 0.1, "tech"
    fields = ("noun", "brand", "model", "price", "code")
    products = [
        (_TV, "Samsung", "AU7100", 30000, "UE{d}AU7100U"), (_TV, "LG", "UP7500", 28000, "{d}UP75006LF"),
        (_TV, "Xiaomi", "Mi TV P1", 24000, "Mi TV P1 {d}"), (_TV, "Sony", "X85J", 55000, "KD-{d}X85J"),
        (_TV, "TCL", "P615", 22000, "{d}P615"), (_TV, "Philips", "PUS7406", 27000, "{d}PUS7406/60"),
        (_TV, "Haier", "Smart TV S1", 21000, "{d} Smart TV S1"), (_TV, "Samsung", "QLED Q60B", 45000, "QE{d}Q60BAU"),
    ]
    variants = {"diag": [32, 43, 50, 55, 65]}
    variant_weights = {"diag": [0.15, 0.3, 0.2, 0.25, 0.1]}
    variant_price = {"diag": [0.55, 0.8, 1.0, 1.2, 1.7]}
    numeric = {"bought": (2018, 2023)}
    distinct = ("diag",)
    titles = ["{noun} {brand} {code}", "{noun} {brand} {diag}\"", "{brand} {code} {diag} дюймов",
              "{noun} {brand} {model} {diag} Smart TV", "{brand} {code}"]
    sentences = ["Диагональ {diag} дюймов, 4K, Smart TV.", "Покупали в {bought} году.",
                 "Пульт и подставка в комплекте.", "Без битых пикселей и засветов.",
                 "Работают YouTube, Кинопоиск, Wi-Fi.", "Возможна проверка на месте.",
                 "Кронштейн в подарок."]

    def path(self, r):
        return (self.l1, self.l2, "Телевизоры и проекторы", "Телевизоры")

    def spec(self, r, noun):
        d = r["diag"]
        return {"diag": str(d), "code": r["p"][4].format(d=d), "bought": str(r["bought"])}

    def attrs(self, r, s):
        return {"Бренд": r["p"][1], "Модель": r["p"][2], "Диагональ": f"{s['diag']}\"",
                "Код модели": s["code"]}


_CONSOLE = Noun("Игровая приставка", "игровую приставку", "f")


class Console(Goods):
    key, l1, l2, weight, shop_group = "console", "Электроника", "Игры, приставки и программы", 0.12, "tech"
    products = [
        (_CONSOLE, "Sony", "PlayStation 5", 50000), (_CONSOLE, "Sony", "PlayStation 4 Pro", 25000),
        (_CONSOLE, "Sony", "PlayStation 4 Slim", 20000), (_CONSOLE, "Microsoft", "Xbox Series S", 28000),
        (_CONSOLE, "Nintendo", "Switch OLED", 30000), (_CONSOLE, "Microsoft", "Xbox Series X", 50000),
        (_CONSOLE, "Nintendo", "Switch Lite", 15000), (_CONSOLE, "Valve", "Steam Deck 512", 50000),
        (_CONSOLE, "Sony", "PlayStation 5 Digital Edition", 42000),
    ]
    variants = {"storage": ["500 ГБ", "825 ГБ", "1 ТБ"], "pads": [1, 2], "games": [0, 2, 5, 10]}
    variant_weights = {"storage": [0.4, 0.35, 0.25], "games": [0.4, 0.3, 0.2, 0.1]}
    variant_price = {"pads": [1.0, 1.1], "games": [1.0, 1.04, 1.08, 1.12]}
    distinct = ("storage", "pads", "games")
    titles = ["{name}", "{name} {storage}", "{name} + {games} игр", "{model} {pads_text}",
              "{noun} {name} {storage}"]
    sentences = ["Память {storage}.", "В комплекте {pads_text}.", "{games_line}",
                 "Не прошита, аккаунт отвязан.", "Гарантия закончилась, всё работает.",
                 "Покупалась в DNS, есть коробка.", "Не греется, вентилятор тихий."]

    def path(self, r):
        return (self.l1, self.l2, "Игровые приставки", r["p"][1])

    def spec(self, r, noun):
        pads, games = r["pads"], r["games"]
        pads_text = "один геймпад" if pads == 1 else "два геймпада"
        return {"storage": r["storage"], "pads_text": pads_text, "games": str(games),
                "games_line": (f"Отдаю с {games} играми на дисках." if games else "Игр в комплекте нет.")}

    def attrs(self, r, s):
        return {"Бренд": r["p"][1], "Модель": r["p"][2], "Объём памяти": s["storage"],
                "Геймпадов": str(r["pads"]), "Игр в комплекте": s["games"]}


_CAM = Noun("Фотоаппарат", "фотоаппарат", "m")
_LENS = Noun("Объектив", "объектив", "m")


class Camera(Goods):
    key, l1, l2, weight, shop_group = "camera", "Электроника", "Фототехника", 0.1, None
    products = [
        (_CAM, "Canon", "EOS 250D", 45000), (_CAM, "Nikon", "D5300", 30000),
        (_CAM, "Sony", "Alpha a6400", 70000), (_CAM, "Canon", "EOS R6", 140000),
        (_LENS, "Canon", "EF 50mm f/1.8 STM", 9000), (_CAM, "Fujifilm", "X-T30", 65000),
        (_CAM, "Sony", "A7 III", 120000), (_LENS, "Sigma", "18-35mm f/1.8 DC HSM", 38000),
        (_CAM, "Nikon", "Z6 II", 110000), (_LENS, "Sony", "FE 28-70mm f/3.5-5.6", 15000),
    ]
    variants = {"kit": ["body", "kit 18-55", "kit 18-135"]}
    variant_price = {"kit": [1.0, 1.15, 1.3]}
    numeric = {"shots": (2, 90)}   # thousands of shutter actuations
    distinct = ("kit", "shots")
    titles = ["{noun} {name}", "{name} {kit}", "{name} пробег {shots}к", "{name}"]
    sentences = ["Пробег затвора {shots_full} кадров.", "Комплектация: {kit}.",
                 "Матрица чистая, без пятен.", "В комплекте сумка, ремень и зарядка.",
                 "Отличный вариант для начинающего фотографа.", "Снимал только дома, бережно."]

    def path(self, r):
        return (self.l1, self.l2, "Объективы" if r["p"][0] is _LENS else "Цифровые фотоаппараты", "")

    def spec(self, r, noun):
        kit = r["kit"] if r["p"][0] is _CAM else "без бленды"
        return {"kit": kit, "shots": str(r["shots"]), "shots_full": fmt_int(r["shots"] * 1000 + 137)}

    def attrs(self, r, s):
        a = {"Бренд": r["p"][1], "Модель": r["p"][2], "Комплектация": s["kit"]}
        if r["p"][0] is _CAM:
            a["Пробег затвора"] = s["shots_full"]
        return a


# --------------------------------------------------------------------------- Транспорт

_CAR = Noun("Автомобиль", "автомобиль", "m")


class Car(Kind):
    key, l1, l2, weight = "car", "Транспорт", "Автомобили", 0.55
    tails = "car"
    cond_weights = None
    fields = ("brand", "model", "price", "body", "engines", "year_from")
    products = [
        ("Lada", "Granta", 900000, "Седан", ((1.6, 90, "MT"), (1.6, 106, "AMT")), 2011),
        ("Kia", "Rio", 1500000, "Седан", ((1.4, 100, "MT"), (1.6, 123, "AT")), 2011),
        ("Hyundai", "Solaris", 1450000, "Седан", ((1.4, 107, "MT"), (1.6, 123, "AT")), 2011),
        ("Toyota", "Camry", 3800000, "Седан", ((2.0, 150, "AT"), (2.5, 181, "AT"), (3.5, 249, "AT")), 2006),
        ("Lada", "Vesta", 1300000, "Седан", ((1.6, 106, "MT"), (1.8, 122, "AMT")), 2015),
        ("Volkswagen", "Polo", 1400000, "Седан", ((1.6, 110, "MT"), (1.6, 110, "AT")), 2010),
        ("Kia", "Sportage", 3000000, "Внедорожник", ((2.0, 150, "AT"), (2.4, 184, "AT")), 2008),
        ("Toyota", "RAV4", 3500000, "Внедорожник", ((2.0, 149, "CVT"), (2.5, 199, "AT")), 2006),
        ("Hyundai", "Creta", 2000000, "Внедорожник", ((1.6, 123, "MT"), (2.0, 149, "AT")), 2016),
        ("Skoda", "Octavia", 2200000, "Лифтбек", ((1.4, 150, "AMT"), (1.6, 110, "MT"), (1.8, 180, "AMT")), 2008),
        ("Renault", "Duster", 1700000, "Внедорожник", ((1.6, 114, "MT"), (2.0, 143, "AT")), 2012),
        ("Renault", "Logan", 1000000, "Седан", ((1.6, 82, "MT"), (1.6, 102, "AT")), 2007),
        ("BMW", "X5", 8000000, "Внедорожник", ((3.0, 249, "AT"), (3.0, 340, "AT"), (4.4, 530, "AT")), 2007),
        ("BMW", "3 серия", 4500000, "Седан", ((2.0, 184, "AT"), (2.0, 249, "AT")), 2008),
        ("Mercedes-Benz", "E-класс", 7000000, "Седан", ((2.0, 197, "AT"), (3.0, 333, "AT")), 2009),
        ("Volkswagen", "Tiguan", 3200000, "Внедорожник", ((1.4, 150, "AMT"), (2.0, 180, "AMT")), 2008),
        ("Nissan", "Qashqai", 2500000, "Внедорожник", ((1.2, 115, "CVT"), (2.0, 144, "CVT")), 2007),
        ("Audi", "A4", 4000000, "Седан", ((1.8, 160, "CVT"), (2.0, 190, "AMT")), 2008),
        ("Mitsubishi", "Outlander", 3000000, "Внедорожник", ((2.0, 146, "CVT"), (2.4, 167, "CVT")), 2007),
        ("Chery", "Tiggo 7 Pro", 2300000, "Внедорожник", ((1.5, 147, "CVT"),), 2020),
        ("Haval", "Jolion", 2100000, "Внедорожник", ((1.5, 143, "AMT"),), 2021),
        ("Ford", "Focus", 1300000, "Хэтчбек", ((1.6, 105, "MT"), (1.6, 125, "AMT"), (2.0, 150, "AT")), 2005),
        ("Mazda", "CX-5", 3500000, "Внедорожник", ((2.0, 150, "AT"), (2.5, 194, "AT")), 2012),
        ("Geely", "Coolray", 2200000, "Внедорожник", ((1.5, 150, "AMT"),), 2020),
        ("Lada", "Niva Travel", 1200000, "Внедорожник", ((1.7, 80, "MT"),), 2021),
        ("Honda", "CR-V", 3300000, "Внедорожник", ((2.0, 150, "AT"), (2.4, 190, "AT")), 2006),
    ]
    popularity = 0.7
    variants = {"color": COLORS, "drive": ["Передний", "Полный"]}
    variant_weights = {"color": _CW, "drive": [0.65, 0.35]}
    distinct = ("year", "color")
    _TRANS = {"MT": ("Механика", "механика"), "AT": ("Автомат", "автомат"),
              "CVT": ("Вариатор", "вариатор"), "AMT": ("Робот", "робот")}

    def sample_item(self, rng, cols, m):
        super().sample_item(rng, cols, m)
        year_from = np.array([p[5] for p in self.products])[cols["product"]]
        lo = np.maximum(year_from, 2005)
        # Recent years are more common; new cars ("Новые") are a share of this year's.
        u = rng.beta(2.2, 1.2, size=m)
        cols["year"] = np.minimum(lo + np.floor(u * (YEAR_NOW + 1 - lo)).astype(int), YEAR_NOW)
        n_eng = np.array([len(p[4]) for p in self.products])[cols["product"]]
        cols["engine"] = np.floor(rng.random(m) * n_eng).astype(int)
        cols["owners"] = rng.choice([1, 2, 3, 4], size=m, p=[0.4, 0.3, 0.2, 0.1])
        cols["km_rate"] = rng.integers(7, 24, size=m)    # thousand km a year
        cols["km_tail"] = rng.integers(0, 1000, size=m)

    def _bounds(self, name, cols, sel):
        return (2005, YEAR_NOW)

    def finish(self, rng, cols, ctx):
        age = YEAR_NOW - cols["year"]
        new = (age == 0) & (rng.random(len(age)) < 0.6)
        cols["new"] = new.astype(int)
        km = np.where(new, rng.integers(0, 50, size=len(age)),
                      np.maximum(age, 1) * cols["km_rate"] * 1000 + cols["km_tail"])
        km = np.where(rng.random(len(km)) < 0.35, np.round(km, -3), km)
        cols["km"] = km.astype(np.int64)
        base = np.array([p[2] for p in self.products], float)[cols["product"]]
        price = base * 0.88 ** age * (1 - np.minimum(km, 300_000) / 1_500_000)
        price *= np.where(cols["owners"] > 2, 0.95, 1.0) * rng.lognormal(0, 0.08, size=len(age))
        cols["price"] = round_price(price)

    def render(self, r, ctx, rnd):
        p = r["p"]
        brand, model, body = p[0], p[1], p[3]
        vol, hp, tr = p[4][r["engine"]]
        year, km = r["year"], r["km"]
        trans_attr, trans_low = self._TRANS[tr]
        color = r["color"][1]["m"]
        kms = fmt_int(km)
        titles = [f"{brand} {model} {vol} {tr}, {year}, {kms} км", f"{brand} {model}, {year}",
                  f"{brand} {model} {vol} {tr} {year}", f"{brand} {model} {year} г.в. {color}",
                  f"Продам {brand} {model} {year} года"]
        new = bool(r["new"])
        core = [rnd.choice([f"Продаю {brand} {model} {year} года выпуска.",
                            f"Продам автомобиль {brand} {model}, {year} г.",
                            f"Продаётся {brand} {model} в хорошем состоянии.",
                            f"{brand} {model}, {year} год, {color}."]),
                f"Пробег {kms} км{', родной' if not new and rnd.random() < 0.5 else ''}.",
                f"Двигатель {vol} л, {hp} л.с., коробка {trans_low}.",
                f"Привод {r['drive'].lower()}, цвет {color}."]
        extra = [f"{r['owners']} {plural(r['owners'], 'владелец', 'владельца', 'владельцев')} по ПТС.",
                 "Не бит, не крашен, всё родное.", "Сервисная книжка, обслуживание у дилера.",
                 "Резина зима и лето на дисках.", "Кондиционер, подогрев сидений, парктроники.",
                 "Салон чистый, не курили.", "Масло не ест, двигатель работает ровно."]
        core += _pick(rnd, extra, rnd.randint(1, 3))
        attrs = {"Марка": brand, "Модель": model, "Год выпуска": str(year), "Пробег": f"{kms} км",
                 "Кузов": body, "Объём двигателя": f"{vol} л", "Мощность": f"{hp} л.с.",
                 "Коробка передач": trans_attr, "Привод": r["drive"], "Цвет": _color_attr(r),
                 "Владельцев по ПТС": str(r["owners"])}
        path = (self.l1, self.l2, "Новые" if new else "С пробегом", brand)
        return Rendered(path, attrs, titles, core, self.tails)


_MOTO = Noun("Мотоцикл", "мотоцикл", "m")
_SCOOTER = Noun("Скутер", "скутер", "m")
_ATV = Noun("Квадроцикл", "квадроцикл", "m")


class Moto(Goods):
    key, l1, l2, weight = "moto", "Транспорт", "Мотоциклы и мототехника", 0.12
    brand_key = "Марка"
    fields = ("noun", "brand", "model", "price", "cc")
    products = [
        (_MOTO, "Honda", "CB 400", 450000, 400), (_MOTO, "Yamaha", "YZF-R6", 750000, 600),
        (_SCOOTER, "Honda", "Dio", 60000, 50), (_MOTO, "Kawasaki", "Ninja 650", 650000, 650),
        (_MOTO, "BMW", "R 1250 GS", 1900000, 1254), (_SCOOTER, "Yamaha", "Jog", 45000, 50),
        (_MOTO, "Suzuki", "GSX-R750", 700000, 750), (_ATV, "Stels", "ATV 650 Guepard", 600000, 650),
        (_MOTO, "Harley-Davidson", "Sportster 883", 900000, 883), (_MOTO, "KTM", "390 Duke", 420000, 373),
        (_MOTO, "Irbis", "TTR 250", 120000, 250),
    ]
    variants = {"color": COLORS}
    variant_weights = {"color": _CW}
    numeric = {"year": (2005, 2023), "km": (1, 60)}
    distinct = ("year", "color")
    sentences = ["Объём {cc} куб. см.", "Пробег {km} км.", "Год выпуска {year}.", "Цвет {cm}.",
                 "На учёте, ПТС на руках.", "Зимовал в тёплом гараже.", "Новая резина и цепь.",
                 "Заводится с пол-оборота."]
    titles = ["{name}, {year}", "{name} {year} г.", "{noun} {name} {year}", "{name} {cc}"]

    def path(self, r):
        sub = {"Мотоцикл": "Мотоциклы", "Скутер": "Мопеды и скутеры", "Квадроцикл": "Квадроциклы"}
        return (self.l1, self.l2, sub[r["p"][0].nom], r["p"][1])

    def finish(self, rng, cols, ctx):
        super().finish(rng, cols, ctx)
        cols["price"] = round_price(cols["price"] * 0.93 ** (YEAR_NOW - cols["year"]))

    def spec(self, r, noun):
        return {"cc": str(r["p"][4]), "km": fmt_int(r["km"] * 1000 + 350), "year": str(r["year"]),
                "color": self.color(r, noun)}

    def attrs(self, r, s):
        return {"Марка": r["p"][1], "Модель": r["p"][2], "Год выпуска": s["year"],
                "Пробег": f"{s['km']} км", "Объём двигателя": f"{s['cc']} см³", "Цвет": _color_attr(r)}


_TYRES = Noun("Шины", "шины", "p")


class Tyres(Goods):
    key, l1, l2, weight, shop_group = "tyres", "Транспорт", "Запчасти и аксессуары", 0.18, "auto"
    fields = ("noun", "brand", "model", "price", "season")
    products = [
        (_TYRES, "Michelin", "X-Ice North 4", 9000, "Зимние шипованные"),
        (_TYRES, "Nokian", "Hakkapeliitta 10", 9500, "Зимние шипованные"),
        (_TYRES, "Continental", "IceContact 3", 8500, "Зимние шипованные"),
        (_TYRES, "Bridgestone", "Blizzak DM-V2", 8000, "Зимние нешипованные"),
        (_TYRES, "Pirelli", "Ice Zero", 7500, "Зимние шипованные"),
        (_TYRES, "Michelin", "Pilot Sport 4", 10000, "Летние"),
        (_TYRES, "Nokian", "Hakka Green 3", 6500, "Летние"),
        (_TYRES, "Cordiant", "Snow Cross 2", 5000, "Зимние шипованные"),
        (_TYRES, "Yokohama", "iceGUARD IG55", 7000, "Зимние шипованные"),
        (_TYRES, "Hankook", "Ventus Prime 3", 6000, "Летние"),
    ]
    variants = {"size": ["175/70 R13", "185/65 R15", "195/65 R15", "205/55 R16", "215/60 R16",
                         "225/65 R17", "235/55 R18", "255/50 R19"],
                "count": [4, 2, 1]}
    variant_weights = {"count": [0.75, 0.2, 0.05]}
    variant_price = {"size": [0.6, 0.7, 0.75, 0.85, 0.95, 1.1, 1.3, 1.6], "count": [4.0, 2.0, 1.0]}
    numeric = {"year": (2016, 2023), "tread": (4, 9)}
    distinct = ("size", "count", "year")
    titles = ["{season} шины {name} {size}", "{name} {size} {count} шт", "{noun} {brand} {size}",
              "{size} {name} комплект", "Резина {name} {size}"]
    sentences = ["Размер {size}, {count} шт.", "Остаток протектора {tread} мм.",
                 "Год производства {year}.", "Без грыж и порезов.", "Шипы на месте, {spikes}%.",
                 "Откатали один сезон.", "Возможна доставка по городу."]

    def path(self, r):
        return (self.l1, self.l2, "Шины, диски и колёса", "Шины")

    def spec(self, r, noun):
        return {"season": r["p"][4], "size": r["size"], "count": str(r["count"]),
                "tread": str(r["tread"]), "year": str(r["year"]), "spikes": str(80 + r["tread"] * 2)}

    def attrs(self, r, s):
        w, rest = s["size"].split("/")
        h, d = rest.split(" ")
        return {"Бренд": r["p"][1], "Модель": r["p"][2], "Сезонность": s["season"],
                "Ширина профиля": w, "Высота профиля": h, "Диаметр": d, "Количество": s["count"],
                "Год выпуска": s["year"]}


_PART = Noun("Запчасть", "запчасть", "f")


class Parts(Goods):
    key, l1, l2, weight, shop_group = "parts", "Транспорт", "Запчасти и аксессуары", 0.15, "auto"
    brand_key = "Марка"
    fields = ("noun", "brand", "model", "price", "part", "oem")
    products = [
        (_PART, "Kia", "Rio", 12000, Noun("Фара передняя левая", "фару переднюю левую", "f"), "92101-4X000"),
        (_PART, "Hyundai", "Solaris", 9000, Noun("Бампер передний", "бампер передний", "m"), "86511-4L000"),
        (_PART, "Toyota", "Camry", 15000, Noun("Генератор", "генератор", "m"), "27060-0V020"),
        (_PART, "Volkswagen", "Polo", 7000, Noun("Радиатор охлаждения", "радиатор охлаждения", "m"), "6R0121253A"),
        (_PART, "Lada", "Vesta", 3500, Noun("Стартер", "стартер", "m"), "8450006590"),
        (_PART, "Renault", "Duster", 4500, Noun("Зеркало правое", "зеркало правое", "n"), "963015873R"),
        (_PART, "BMW", "X5", 25000, Noun("Фара задняя", "фару заднюю", "f"), "63217290101"),
        (_PART, "Ford", "Focus", 6000, Noun("Капот", "капот", "m"), "1848003"),
        (_PART, "Skoda", "Octavia", 8000, Noun("Дверь задняя правая", "дверь заднюю правую", "f"), "5E9833052"),
        (_PART, "Nissan", "Qashqai", 5000, Noun("Амортизатор передний", "амортизатор передний", "m"), "54302-JD01A"),
    ]
    variants = {"orig": ["Оригинал", "Аналог"]}
    cond_weights = (0.25, 0.0, 0.35, 0.35, 0.05)
    variant_weights = {"orig": [0.6, 0.4]}
    variant_price = {"orig": [1.0, 0.55]}
    distinct = ("orig",)
    titles = ["{part} {brand} {model}", "{part} {name} {oem}", "{oem} {part}",
              "{part} на {brand} {model} {orig_low}"]
    sentences = ["Номер {oem}.", "{orig_line}",
                 "Подойдёт на {name} разных годов, уточняйте по VIN.", "Отправлю в регионы транспортной.",
                 "Есть другие запчасти на эту машину, спрашивайте."]

    def path(self, r):
        return (self.l1, self.l2, "Запчасти", "Для автомобилей")

    def spec(self, r, noun):
        orig = r["orig"]
        line = ("Оригинал, не Китай." if orig == "Оригинал" else "Качественный аналог, подходит без доработок.")
        if r["cond"]:
            line += " Снято с машины, всё целое."
        return {"part": r["p"][4].nom, "oem": r["p"][5], "orig": orig, "orig_low": orig.lower(),
                "orig_line": line}

    def render(self, r, ctx, rnd):
        out = super().render(r, ctx, rnd)
        part = r["p"][4]
        out.core[0] = rnd.choice([f"Продаю {part.acc} на {r['p'][1]} {r['p'][2]}.",
                                  f"{part.nom} для {r['p'][1]} {r['p'][2]}."])
        return out

    def attrs(self, r, s):
        return {"Марка": r["p"][1], "Модель": r["p"][2], "Вид": s["part"], "Номер детали": s["oem"],
                "Оригинальность": s["orig"]}


# --------------------------------------------------------------------------- Недвижимость

_ROOMS = ["Квартира-студия", "1-к. квартира", "2-к. квартира", "3-к. квартира", "4-к. квартира"]
_ROOMS_ADJ = ["квартира-студия", "однокомнатная квартира", "двухкомнатная квартира",
              "трёхкомнатная квартира", "четырёхкомнатная квартира"]
_ROOMS_ACC = ["квартиру-студию", "однокомнатную квартиру", "двухкомнатную квартиру",
              "трёхкомнатную квартиру", "четырёхкомнатную квартиру"]
_HOUSE_TYPES = [("Панельный", "панельного"), ("Кирпичный", "кирпичного"), ("Монолитный", "монолитного"),
                ("Блочный", "блочного")]
_RENOV = [("Требует ремонта", "Требуется ремонт."), ("Косметический", "Косметический ремонт."),
          ("Евро", "Хороший евроремонт."), ("Дизайнерский", "Дизайнерский ремонт, встроенная мебель.")]


class Apartment(Kind):
    """Family = a building (address, floors, type); items = flats in it."""

    key, l1, l2, weight = "apartment", "Недвижимость", "Квартиры", 0.6
    family_city = True
    cond_weights = None
    distinct = ("rooms", "floor")
    products = [()]

    def sample_family(self, rng, m):
        floors = rng.choice([5, 9, 10, 12, 14, 16, 17, 25], size=m, p=[.2, .25, .1, .1, .08, .12, .1, .05])
        return {"street": rng.integers(len(W.STREETS), size=m), "house": rng.integers(1, 160, size=m),
                "korpus": rng.choice([0, 0, 0, 1, 2], size=m), "floors": floors,
                "htype": rng.choice(4, size=m, p=[0.4, 0.3, 0.25, 0.05]),
                "built": rng.integers(1960, YEAR_NOW + 1, size=m),
                "deal": rng.choice(3, size=m, p=[0.6, 0.3, 0.1]),     # sale, long rent, daily
                "district": rng.integers(len(W.DISTRICTS), size=m)}

    def sample_item(self, rng, cols, m):
        cols["rooms"] = rng.choice(5, size=m, p=[0.12, 0.33, 0.33, 0.18, 0.04])
        cols["floor"] = 1 + np.floor(rng.random(m) * cols["floors"]).astype(int)
        cols["area10"] = rng.integers(90, 220, size=m)   # rooms only; flats derive it in finish
        cols["renov"] = rng.choice(4, size=m, p=[0.15, 0.45, 0.3, 0.1])
        cols["toilet"] = rng.integers(2, size=m)

    def _bounds(self, name, cols, sel):
        if name == "floor":
            return 1, cols["floors"][sel]
        return 0, 4

    def finish(self, rng, cols, ctx):
        m = len(cols["rooms"])
        base_area = np.array([26, 36, 52, 72, 95.0])[cols["rooms"]]
        cols["area10"] = np.round(base_area * rng.lognormal(0, 0.1, size=m) * 10).astype(int)
        cols["kitchen"] = np.where(cols["rooms"] == 0, 0, rng.integers(6, 16, size=m))
        cf = ctx["city_factor"]
        area = cols["area10"] / 10
        sale = area * 95_000 * cf * np.array([0.85, 1.0, 1.1, 1.25])[cols["renov"]]
        sale *= np.where(cols["built"] >= 2015, 1.15, 1.0)
        rent = np.array([17_000, 20_000, 27_000, 35_000, 48_000])[cols["rooms"]] * cf ** 0.8
        daily = np.array([1_700, 2_000, 2_800, 3_600, 4_500])[cols["rooms"]] * cf ** 0.6
        price = np.select([cols["deal"] == 0, cols["deal"] == 1], [sale, rent], daily)
        cols["price"] = round_price(price * rng.lognormal(0, 0.08, size=m))

    def decode(self, cols):
        return dict(cols)

    def render(self, r, ctx, rnd):
        rooms, floor, floors = r["rooms"], r["floor"], r["floors"]
        area = fmt_dec(r["area10"] / 10)
        street = W.STREETS[r["street"]]
        house = f"{r['house']}" + (f" к{r['korpus']}" if r["korpus"] else "")
        htype, htype_gen = _HOUSE_TYPES[r["htype"]]
        deal = r["deal"]
        renov_attr, renov_text = _RENOV[r["renov"]]
        t0 = f"{_ROOMS[rooms]}, {area} м², {floor}/{floors} эт."
        verb, verb_acc = ("Продаётся", "Продам") if deal == 0 else ("Сдаётся", "Сдам")
        titles = [t0, f"{verb_acc} {_ROOMS_ACC[rooms]} {area} м²", f"{_ROOMS[rooms]} {area} м² {street}",
                  f"{_ROOMS[rooms]}, {area} кв.м, {floor} этаж", t0 + (" посуточно" if deal == 2 else "")]
        core = [rnd.choice([f"{verb} {_ROOMS_ADJ[rooms]} общей площадью {area} м² на {floor} этаже "
                            f"{floors}-этажного {htype_gen} дома.",
                            f"{verb_acc} {_ROOMS_ACC[rooms]}, {area} м², этаж {floor} из {floors}.",
                            f"{verb} {_ROOMS_ADJ[rooms]} в {htype_gen} доме {r['built']} года постройки."]),
                f"Адрес: {street}, д. {house}, {W.DISTRICTS[r['district']]} район.", renov_text]
        extra = [f"Кухня {r['kitchen']} м²." if r["kitchen"] else "Кухня-ниша, всё продумано.",
                 "Санузел раздельный." if r["toilet"] else "Санузел совмещённый, в кафеле.",
                 "Окна пластиковые, балкон застеклён.", "Тихий зелёный двор, парковка.",
                 "Соседи спокойные, подъезд чистый.", "Счётчики на воду и электричество.",
                 f"Дом {r['built']} года постройки, {htype.lower()}."]
        core += _pick(rnd, extra, rnd.randint(1, 3))
        attrs = {"Количество комнат": "студия" if rooms == 0 else str(rooms),
                 "Общая площадь": f"{r['area10'] / 10:.1f} м²", "Этаж": str(floor),
                 "Этажей в доме": str(floors), "Тип дома": htype, "Адрес": f"{street}, {house}",
                 "Ремонт": renov_attr}
        if r["kitchen"]:
            attrs["Площадь кухни"] = f"{r['kitchen']} м²"
        if deal == 0:
            attrs["Год постройки"] = str(r["built"])
            l3, l4 = "Продам", "Новостройка" if r["built"] >= YEAR_NOW - 1 else "Вторичка"
        else:
            l3, l4 = "Сдам", "На длительный срок" if deal == 1 else "Посуточно"
        return Rendered((self.l1, self.l2, l3, l4), attrs, titles, core, "sale" if deal == 0 else "rent")


class Room(Apartment):
    key, l1, l2, weight = "room", "Недвижимость", "Комнаты", 0.1
    distinct = ("area10", "floor")

    def sample_family(self, rng, m):
        fam = super().sample_family(rng, m)
        fam["deal"] = rng.choice(2, size=m, p=[0.5, 0.5])
        fam["flat_rooms"] = rng.integers(2, 6, size=m)
        return fam

    def _bounds(self, name, cols, sel):
        if name == "floor":
            return 1, cols["floors"][sel]
        return 80, 250

    def finish(self, rng, cols, ctx):
        m = len(cols["floor"])
        cols["kitchen"] = np.zeros(m, dtype=int)
        cf = ctx["city_factor"]
        sale = cols["area10"] / 10 * 80_000 * cf
        rent = 11_000 * cf ** 0.8 + 0 * cols["area10"]
        price = np.where(cols["deal"] == 0, sale, rent)
        cols["price"] = round_price(price * rng.lognormal(0, 0.1, size=m))

    def render(self, r, ctx, rnd):
        area = fmt_dec(r["area10"] / 10)
        street = W.STREETS[r["street"]]
        house = f"{r['house']}"
        floor, floors, fr = r["floor"], r["floors"], r["flat_rooms"]
        verb = "Продаётся" if r["deal"] == 0 else "Сдаётся"
        titles = [f"Комната {area} м² в {fr}-к., {floor}/{floors} эт.", f"{verb} комната {area} м²",
                  f"Комната {area} кв.м, {street}", f"Комната в {fr}-комнатной квартире, {area} м²"]
        core = [f"{verb} комната {area} м² в {fr}-комнатной квартире.",
                f"Адрес: {street}, д. {house}, этаж {floor} из {floors}.",
                rnd.choice(["Соседи тихие, работающие.", "Кухня общая, просторная.",
                            "В комнате есть шкаф, кровать и стол.", "Дверь с замком."])]
        attrs = {"Площадь комнаты": f"{r['area10'] / 10:.1f} м²", "Комнат в квартире": str(fr),
                 "Этаж": str(floor), "Этажей в доме": str(floors), "Адрес": f"{street}, {house}"}
        l3 = "Продам" if r["deal"] == 0 else "Сдам"
        return Rendered((self.l1, self.l2, l3, ""), attrs, titles, core, "sale" if r["deal"] == 0 else "rent")


_VILLAGES = ["СНТ «Ромашка»", "СНТ «Берёзка»", "пос. Никольское", "д. Петровка", "КП «Сосновый бор»",
             "СНТ «Рассвет»", "с. Александровка", "пос. Заречный", "д. Ивановка", "КП «Лесная поляна»"]
_MATERIAL = [("Брус", "из бруса"), ("Кирпич", "кирпичный"), ("Газоблок", "из газоблока"),
             ("Каркасный", "каркасный"), ("Бревно", "из бревна")]
_HOUSE_KIND = [("Дом", Noun("Дом", "дом", "m")), ("Дача", Noun("Дача", "дачу", "f")),
               ("Коттедж", Noun("Коттедж", "коттедж", "m")), ("Таунхаус", Noun("Таунхаус", "таунхаус", "m"))]


class House(Kind):
    key, l1, l2, weight = "house", "Недвижимость", "Дома, дачи, коттеджи", 0.22
    family_city = True
    cond_weights = None
    distinct = ("area", "plot", "material")
    products = [()]

    def sample_family(self, rng, m):
        return {"village": rng.integers(len(_VILLAGES), size=m),
                "hkind": rng.choice(4, size=m, p=[0.5, 0.3, 0.12, 0.08]),
                "deal": rng.choice(2, size=m, p=[0.85, 0.15])}

    def sample_item(self, rng, cols, m):
        cols["area"] = np.where(cols["hkind"] == 1, rng.integers(20, 70, size=m), rng.integers(60, 260, size=m))
        cols["plot"] = rng.integers(4, 25, size=m)
        cols["material"] = rng.integers(len(_MATERIAL), size=m)
        cols["levels"] = rng.choice([1, 2, 3], size=m, p=[0.55, 0.4, 0.05])
        cols["built"] = rng.integers(1975, YEAR_NOW + 1, size=m)

    def _bounds(self, name, cols, sel):
        return {"area": (20, 300), "plot": (3, 30), "material": (0, len(_MATERIAL) - 1)}[name]

    def finish(self, rng, cols, ctx):
        m = len(cols["area"])
        cf = ctx["city_factor"]
        sale = (cols["area"] * 45_000 + cols["plot"] * 120_000) * cf ** 0.7
        rent = cols["area"] * 300 * cf ** 0.7
        price = np.where(cols["deal"] == 0, sale, rent) * rng.lognormal(0, 0.12, size=m)
        cols["price"] = round_price(price)

    def decode(self, cols):
        return dict(cols)

    def render(self, r, ctx, rnd):
        hk, noun = _HOUSE_KIND[r["hkind"]]
        mat, mat_adj = _MATERIAL[r["material"]]
        area, plot, village = r["area"], r["plot"], _VILLAGES[r["village"]]
        sot = plural(plot, "сотка", "сотки", "соток")
        sale = r["deal"] == 0
        verb = "Продам" if sale else "Сдам"
        titles = [f"{hk} {area} м² на участке {plot} сот.", f"{verb} {noun.acc} {area} м², {village}",
                  f"{hk} {area} кв.м, {plot} {sot}", f"{hk} {mat_adj} {area} м²"]
        core = [rnd.choice([f"{verb} {noun.acc} {mat_adj}, {area} м², участок {plot} {sot}.",
                            f"{'Продаётся' if sale else 'Сдаётся'} {noun.low} в {village}, {area} м²."]),
                f"Расположение: {village}, {ctx['city_prep']}.",
                f"{r['levels']} {plural(r['levels'], 'этаж', 'этажа', 'этажей')}, построен в {r['built']} году."]
        core += _pick(rnd, ["Свет, вода, септик.", "Газ по границе участка.", "Баня и гараж на участке.",
                            "Круглогодичный подъезд, дорога асфальт.", "Рядом лес и речка.",
                            "Плодовые деревья, теплица."], rnd.randint(1, 3))
        attrs = {"Вид объекта": hk, "Площадь дома": f"{area} м²", "Площадь участка": f"{plot} сот.",
                 "Материал стен": mat, "Этажей": str(r["levels"]), "Адрес": village,
                 "Год постройки": str(r["built"])}
        return Rendered((self.l1, self.l2, "Продам" if sale else "Сдам", hk), attrs, titles, core,
                        "sale" if sale else "rent")


_GSK = ["ГСК «Восток»", "ГСК «Автомобилист»", "ГСК «Север»", "ГСК «Мотор»", "ГСК «Звезда»",
        "ГК «Южный»", "ГСК «Металлург»", "паркинг ЖК «Солнечный»"]


class Garage(Kind):
    key, l1, l2, weight = "garage", "Недвижимость", "Гаражи и машиноместа", 0.08
    family_city = True
    cond_weights = None
    distinct = ("area", "number")
    products = [()]

    def sample_family(self, rng, m):
        return {"gsk": rng.integers(len(_GSK), size=m), "deal": rng.choice(2, size=m, p=[0.6, 0.4]),
                "gtype": rng.integers(3, size=m)}

    def sample_item(self, rng, cols, m):
        cols["area"] = rng.integers(14, 36, size=m)
        cols["number"] = rng.integers(1, 400, size=m)

    def _bounds(self, name, cols, sel):
        return {"area": (12, 40), "number": (1, 400)}[name]

    def finish(self, rng, cols, ctx):
        m = len(cols["area"])
        cf = ctx["city_factor"]
        price = np.where(cols["deal"] == 0, cols["area"] * 25_000 * cf, 3_000 * cf ** 0.6)
        cols["price"] = round_price(price * rng.lognormal(0, 0.15, size=m))

    def decode(self, cols):
        return dict(cols)

    def render(self, r, ctx, rnd):
        gsk, area, num = _GSK[r["gsk"]], r["area"], r["number"]
        parking = gsk.startswith("паркинг")
        what = "Машиноместо" if parking else "Гараж"
        gtype = ["Кирпичный", "Железобетонный", "Металлический"][r["gtype"]]
        sale = r["deal"] == 0
        titles = [f"{what}, {area} м²", f"{what} {area} м² {gsk}", f"{'Продам' if sale else 'Сдам'} "
                  f"{what.lower()} №{num}", f"{what}, {gsk}, {area} кв.м"]
        core = [f"{'Продам' if sale else 'Сдам'} {what.lower()} {area} м² в {gsk}, №{num}.",
                rnd.choice(["Охрана, видеонаблюдение.", "Есть смотровая яма и погреб.",
                            "Свет есть, сухой.", "Удобный заезд, круглосуточный доступ."])]
        attrs = {"Тип": what, "Площадь": f"{area} м²", "Адрес": gsk, "Номер": str(num)}
        if not parking:
            attrs["Тип гаража"] = gtype
        return Rendered((self.l1, self.l2, "Продам" if sale else "Сдам", what), attrs, titles, core,
                        "sale" if sale else "rent")


# --------------------------------------------------------------------------- Личные вещи

_SIZES_RU = ["42", "44", "46", "48", "50", "52", "54", "56"]
_SIZES_INT = ["XS", "S", "M", "L", "XL", "XXL", "XXL", "XXXL"]


def _noun(nom, acc, g):
    return Noun(nom, acc, g)


class Clothes(Goods):
    key, l1, l2, weight, shop_group = "clothes", "Личные вещи", "Одежда, обувь, аксессуары", 0.34, "wear"
    fields = ("noun", "brand", "model", "price", "sex", "l4")
    products = [
        (_noun("Пуховик", "пуховик", "m"), "The North Face", "Nuptse 1996", 15000, "Мужская", "Верхняя одежда"),
        (_noun("Куртка", "куртку", "f"), "Columbia", "Powder Lite", 6000, "Женская", "Верхняя одежда"),
        (_noun("Платье", "платье", "n"), "Zara", "", 2000, "Женская", "Платья и юбки"),
        (_noun("Джинсы", "джинсы", "p"), "Levi's", "501", 3500, "Мужская", "Джинсы"),
        (_noun("Пальто", "пальто", "n"), "Massimo Dutti", "", 9000, "Женская", "Верхняя одежда"),
        (_noun("Худи", "худи", "n"), "Nike", "Sportswear Club", 3000, "Мужская", "Трикотаж и футболки"),
        (_noun("Шуба норковая", "шубу норковую", "f"), "", "", 45000, "Женская", "Верхняя одежда"),
        (_noun("Костюм", "костюм", "m"), "Hugo Boss", "", 12000, "Мужская", "Пиджаки и костюмы"),
        (_noun("Парка", "парку", "f"), "Zara", "", 4000, "Женская", "Верхняя одежда"),
        (_noun("Куртка", "куртку", "f"), "Adidas", "Originals", 5000, "Мужская", "Верхняя одежда"),
        (_noun("Платье", "платье", "n"), "H&M", "", 1200, "Женская", "Платья и юбки"),
        (_noun("Свитер", "свитер", "m"), "Uniqlo", "", 2000, "Мужская", "Трикотаж и футболки"),
        (_noun("Пиджак", "пиджак", "m"), "Mango", "", 3500, "Женская", "Пиджаки и костюмы"),
        (_noun("Пуховик зимний", "пуховик зимний", "m"), "", "", 5000, "Женская", "Верхняя одежда"),
    ]
    variants = {"size": list(range(8)), "color": COLORS}
    variant_weights = {"size": [0.08, 0.2, 0.22, 0.2, 0.14, 0.08, 0.05, 0.03], "color": _CW}
    cond_weights = (0.2, 0.15, 0.35, 0.25, 0.05)
    distinct = ("size", "color")
    titles = ["{noun} {name} {size}", "{noun} {name}, р. {size}", "{noun} {color} {name} {size_int}",
              "{noun} {name} размер {size}", "{name} {low} {size_int}"]
    sentences = ["Размер {size} ({size_int}).", "Цвет {cm}.", "Носила один сезон." ,
                 "Покупали в официальном магазине, оригинал.", "Не подошёл размер, бирки на месте.",
                 "Без пятен и затяжек.", "Замеры пришлю по запросу.", "Сел как влитой, но надоел."]

    def path(self, r):
        p = r["p"]
        return (self.l1, self.l2, f"{p[4]} одежда", p[5])

    def spec(self, r, noun):
        i = r["size"]
        return {"size": _SIZES_RU[i], "size_int": _SIZES_INT[i], "color": self.color(r, noun)}

    def attrs(self, r, s):
        p = r["p"]
        a = {"Вид одежды": p[0].nom, "Размер": s["size"], "Цвет": _color_attr(r)}
        if p[1]:
            a["Бренд"] = p[1]
            if p[2]:
                a["Модель"] = p[2]
        return a


_SNEAK = Noun("Кроссовки", "кроссовки", "p")
_BOOTS = Noun("Ботинки", "ботинки", "p")
_KEDS = Noun("Кеды", "кеды", "p")


class Shoes(Goods):
    key, l1, l2, weight, shop_group = "shoes", "Личные вещи", "Одежда, обувь, аксессуары", 0.2, "wear"
    fields = ("noun", "brand", "model", "price", "sex")
    products = [
        (_SNEAK, "Nike", "Air Max 90", 9000, "Мужская"), (_SNEAK, "Nike", "Air Force 1", 8000, "Женская"),
        (_SNEAK, "New Balance", "574", 7000, "Мужская"), (_SNEAK, "Adidas", "Samba OG", 9000, "Женская"),
        (_SNEAK, "Adidas", "Yeezy Boost 350 V2", 18000, "Мужская"), (_KEDS, "Converse", "Chuck 70", 5000, "Женская"),
        (_BOOTS, "Timberland", "6-Inch Premium", 12000, "Мужская"), (_BOOTS, "Dr. Martens", "1460", 11000, "Женская"),
        (_KEDS, "Vans", "Old Skool", 4500, "Мужская"), (_SNEAK, "Puma", "Suede Classic", 4000, "Мужская"),
        (_SNEAK, "Reebok", "Classic Leather", 4500, "Женская"), (_SNEAK, "New Balance", "990v5", 16000, "Мужская"),
        (Noun("Угги", "угги", "p"), "UGG", "Classic Short", 9000, "Женская"),
    ]
    variants = {"size": list(range(36, 47)), "color": COLORS[:5] + COLORS[6:8]}
    cond_weights = (0.25, 0.2, 0.3, 0.2, 0.05)
    distinct = ("size", "color")
    titles = ["{noun} {name} {size}", "{name} {size} размер", "{noun} {name} оригинал р.{size}",
              "{name} {color} {size}", "{noun} {brand} {model}"]
    sentences = ["Размер {size} EU, по стельке {insole} см.", "Цвет {cm}.", "Оригинал, есть коробка.",
                 "Надевал пару раз, не подошёл размер.", "Подошва без износа.",
                 "Отправлю Авито Доставкой с примеркой."]

    def path(self, r):
        sex = r["p"][4]
        l4 = {"Кроссовки": "Кроссовки и кеды", "Кеды": "Кроссовки и кеды", "Ботинки": "Ботинки и полуботинки",
              "Угги": "Сапоги"}[r["p"][0].nom]
        return (self.l1, self.l2, f"{sex} обувь", l4)

    def spec(self, r, noun):
        return {"size": str(r["size"]), "insole": fmt_dec(r["size"] * 0.667 - 0.5),
                "color": self.color(r, noun)}

    def attrs(self, r, s):
        return {"Бренд": r["p"][1], "Модель": r["p"][2], "Размер": s["size"], "Цвет": _color_attr(r)}


class Kids(Goods):
    key, l1, l2, weight, shop_group = "kids", "Личные вещи", "Детская одежда и обувь", 0.12, "wear"
    fields = ("noun", "brand", "model", "price", "sex")
    products = [
        (_noun("Комбинезон", "комбинезон", "m"), "Reima", "Tec", 5000, "Для мальчиков"),
        (_noun("Куртка", "куртку", "f"), "Kerry", "", 4000, "Для девочек"),
        (_noun("Комбинезон", "комбинезон", "m"), "Lassie", "", 3500, "Для девочек"),
        (_noun("Костюм зимний", "костюм зимний", "m"), "Premont", "", 6000, "Для мальчиков"),
        (_noun("Платье", "платье", "n"), "Zara Kids", "", 1200, "Для девочек"),
        (_noun("Сапоги", "сапоги", "p"), "Kuoma", "", 2500, "Для девочек"),
        (_noun("Ботинки", "ботинки", "p"), "Котофей", "", 1800, "Для мальчиков"),
    ]
    variants = {"height": [80, 86, 92, 98, 104, 110, 116, 122, 128, 134, 140, 146, 152], "color": COLORS}
    variant_weights = {"color": _CW}
    distinct = ("height", "color")
    titles = ["{noun} {name} {height}", "{noun} {name} рост {height}", "{name} {low} {height} см",
              "{noun} детский {name} {height}"]
    sentences = ["Рост {height} см.", "Цвет {cm}.", "Носили одну зиму, состояние хорошее.",
                 "Тёплый, ребёнок не мёрз.", "Вырос, поэтому продаю.", "Без пятен и потёртостей."]

    def path(self, r):
        return (self.l1, self.l2, r["p"][4], "Верхняя одежда")

    def spec(self, r, noun):
        return {"height": str(r["height"]), "color": self.color(r, noun)}

    def attrs(self, r, s):
        a = {"Вид одежды": r["p"][0].nom, "Бренд": r["p"][1], "Рост": f"{s['height']} см",
             "Цвет": _color_attr(r)}
        if r["p"][2]:
            a["Модель"] = r["p"][2]
        return a


_WATCH = Noun("Часы", "часы", "p")
_SMARTW = Noun("Смарт-часы", "смарт-часы", "p")
_BAND = Noun("Фитнес-браслет", "фитнес-браслет", "m")


class Watch(Goods):
    key, l1, l2, weight, shop_group = "watch", "Личные вещи", "Часы и украшения", 0.12, "tech"
    products = [
        (_SMARTW, "Apple", "Watch Series 8", 25000), (_WATCH, "Casio", "G-Shock GA-2100", 9000),
        (_SMARTW, "Samsung", "Galaxy Watch 5", 14000), (_BAND, "Xiaomi", "Smart Band 8", 3000),
        (_SMARTW, "Apple", "Watch SE", 15000), (_WATCH, "Tissot", "PRX Powermatic 80", 55000),
        (_SMARTW, "Garmin", "Fenix 7", 55000), (_WATCH, "Seiko", "5 SNK809", 12000),
        (_WATCH, "Casio", "Edifice EFR-526", 8000), (_SMARTW, "Huawei", "Watch GT 3", 10000),
    ]
    variants = {"mm": [40, 41, 44, 45], "color": COLORS[:4] + COLORS[9:12]}
    distinct = ("mm", "color")
    titles = ["{noun} {name}", "{name} {mm}mm", "{name} {mm} мм {color}", "{name} оригинал"]
    sentences = ["Размер корпуса {mm} мм.", "Цвет {cm}.", "Оригинал, есть коробка и документы.",
                 "Стекло без царапин.", "Ремешок в подарок.", "Аккумулятор держит несколько дней."]

    def path(self, r):
        return (self.l1, self.l2, "Часы", "")

    def spec(self, r, noun):
        return {"mm": str(r["mm"]), "color": self.color(r, noun)}

    def attrs(self, r, s):
        return {"Бренд": r["p"][1], "Модель": r["p"][2], "Размер корпуса": f"{s['mm']} мм",
                "Цвет": _color_attr(r)}


_PERF = Noun("Парфюм", "парфюм", "m")
_DEVICE = Noun("Стайлер", "стайлер", "m")


class Beauty(Goods):
    key, l1, l2, weight = "beauty", "Личные вещи", "Красота и здоровье", 0.06
    products = [
        (_PERF, "Chanel", "Chance Eau Tendre", 12000), (_PERF, "Dior", "Sauvage", 10000),
        (_PERF, "Tom Ford", "Tobacco Vanille", 25000), (_PERF, "Lancome", "La Vie Est Belle", 9000),
        (_PERF, "Zara", "Red Vanilla", 2000), (_PERF, "Giorgio Armani", "Acqua di Gio", 8000),
    ]
    variants = {"vol": [30, 50, 100], "left": [100, 90, 70, 50]}
    variant_price = {"vol": [0.6, 1.0, 1.6], "left": [1.0, 0.85, 0.7, 0.5]}
    cond_weights = (0.4, 0.2, 0.3, 0.1, 0.0)
    distinct = ("vol", "left")
    titles = ["{noun} {name} {vol} мл", "{name} {vol}ml", "{name} оригинал", "{name} {left_text}"]
    sentences = ["Объём {vol} мл, {left_text}.", "Оригинал, покупала в Золотом яблоке.",
                 "Не подошёл аромат.", "Есть коробка и чек.", "Подарили, не пользуюсь."]

    def path(self, r):
        return (self.l1, self.l2, "Парфюмерия", "")

    def spec(self, r, noun):
        left = r["left"]
        return {"vol": str(r["vol"]), "left_text": "полный флакон" if left == 100 else f"осталось {left}%"}

    def attrs(self, r, s):
        return {"Бренд": r["p"][1], "Название": r["p"][2], "Объём": f"{s['vol']} мл",
                "Остаток": f"{r['left']}%"}


class BeautyDevice(Goods):
    key, l1, l2, weight = "beautydevice", "Личные вещи", "Красота и здоровье", 0.04
    products = [
        (_DEVICE, "Dyson", "Airwrap Complete", 45000), (Noun("Фен", "фен", "m"), "Dyson", "Supersonic HD07", 35000),
        (Noun("Эпилятор", "эпилятор", "m"), "Braun", "Silk-epil 9", 8000),
        (Noun("Триммер", "триммер", "m"), "Philips", "OneBlade", 3000),
        (Noun("Выпрямитель", "выпрямитель", "m"), "Rowenta", "Optiliss", 3500),
    ]
    variants = {"color": COLORS[:3] + COLORS[9:12]}
    numeric = {"bought": (2019, 2024)}
    distinct = ("color", "bought")
    titles = ["{noun} {name}", "{name} {color}", "{name} оригинал", "{noun} {name} {bought}"]
    sentences = ["Цвет {cm}.", "Покупала в {bought} году, есть чек.", "Оригинал, не реплика.",
                 "Все насадки в комплекте.", "Пользовалась пару раз."]

    def path(self, r):
        return (self.l1, self.l2, "Приборы и аксессуары", "")

    def spec(self, r, noun):
        return {"color": self.color(r, noun), "bought": str(r["bought"])}

    def attrs(self, r, s):
        return {"Бренд": r["p"][1], "Модель": r["p"][2], "Цвет": _color_attr(r), "Год покупки": s["bought"]}


_TOYS = [
    (_noun("Конструктор", "конструктор", "m"), "LEGO", "Technic 42115", 30000, "Игрушки"),
    (_noun("Коляска", "коляску", "f"), "Cybex", "Priam", 60000, "Детские коляски"),
    (_noun("Конструктор", "конструктор", "m"), "LEGO", "City 60337", 9000, "Игрушки"),
    (_noun("Коляска", "коляску", "f"), "Anex", "m/type", 45000, "Детские коляски"),
    (_noun("Автокресло", "автокресло", "n"), "Britax Romer", "King II", 12000, "Автомобильные кресла"),
    (_noun("Конструктор", "конструктор", "m"), "LEGO", "Star Wars 75192", 70000, "Игрушки"),
    (_noun("Коляска", "коляску", "f"), "Tutis", "Uno 3+", 35000, "Детские коляски"),
    (_noun("Кукольный домик", "кукольный домик", "m"), "Barbie", "Dreamhouse", 12000, "Игрушки"),
    (_noun("Стульчик для кормления", "стульчик для кормления", "m"), "Happy Baby", "William", 5000, "Товары для кормления"),
]


class Toys(Goods):
    key, l1, l2, weight = "toys", "Личные вещи", "Товары для детей и игрушки", 0.12
    fields = ("noun", "brand", "model", "price", "l3")
    products = _TOYS
    variants = {"color": COLORS[:4] + COLORS[6:10], "kit": ["полный комплект", "без коробки", "без инструкции"]}
    distinct = ("color", "kit")
    titles = ["{noun} {name}", "{name}", "{noun} {name} {color}", "{name} {kit}"]
    sentences = ["Цвет {cm}.", "Комплектация: {kit}.", "Всё целое, ничего не сломано.",
                 "После одного ребёнка.", "Некурящая семья, без животных.", "Отдам с подарком."]

    def path(self, r):
        return (self.l1, self.l2, r["p"][4], "")

    def spec(self, r, noun):
        return {"color": self.color(r, noun), "kit": r["kit"]}

    def attrs(self, r, s):
        return {"Бренд": r["p"][1], "Модель": r["p"][2], "Цвет": _color_attr(r), "Комплектация": s["kit"]}


# --------------------------------------------------------------------------- Для дома и дачи

_SOFA = Noun("Диван", "диван", "m")


class Furniture(Goods):
    key, l1, l2, weight, shop_group = "furniture", "Для дома и дачи", "Мебель и интерьер", 0.33, "home"
    fields = ("noun", "brand", "model", "price", "l3")
    products = [
        (_SOFA, "IKEA", "Friheten", 25000, "Кровати, диваны и кресла"),
        (_noun("Стеллаж", "стеллаж", "m"), "IKEA", "Kallax", 5000, "Шкафы, комоды и стеллажи"),
        (_noun("Комод", "комод", "m"), "IKEA", "Malm", 7000, "Шкафы, комоды и стеллажи"),
        (_noun("Шкаф-купе", "шкаф-купе", "m"), "Шатура", "", 18000, "Шкафы, комоды и стеллажи"),
        (_noun("Кровать", "кровать", "f"), "Askona", "", 20000, "Кровати, диваны и кресла"),
        (_noun("Кресло", "кресло", "n"), "IKEA", "Poang", 6000, "Кровати, диваны и кресла"),
        (_noun("Стол обеденный", "стол обеденный", "m"), "Hoff", "", 9000, "Столы и стулья"),
        (_noun("Компьютерное кресло", "компьютерное кресло", "n"), "Бюрократ", "CH-868", 6000,
         "Компьютерные столы и кресла"),
        (_SOFA, "Hoff", "Бостон", 30000, "Кровати, диваны и кресла"),
        (_noun("Матрас", "матрас", "m"), "Аскона", "Balance Forma", 15000, "Кровати, диваны и кресла"),
        (_noun("Стол письменный", "стол письменный", "m"), "IKEA", "Micke", 5000, "Компьютерные столы и кресла"),
    ]
    variants = {"color": COLORS[:4] + COLORS[6:8], "width": [80, 90, 120, 140, 160, 180, 200]}
    distinct = ("color", "width")
    titles = ["{noun} {name}", "{noun} {name} {color}", "{noun} {name} {width} см", "{name} {low}"]
    sentences = ["Ширина {width} см.", "Цвет {cm}.", "Разборка и вынос за покупателем.",
                 "Без сколов и царапин.", "Переезжаем, нужно освободить место.",
                 "Собран по инструкции, не разбирался.", "Ткань не порвана, животных нет."]

    def path(self, r):
        return (self.l1, self.l2, r["p"][4], "")

    def spec(self, r, noun):
        return {"width": str(r["width"]), "color": self.color(r, noun)}

    def attrs(self, r, s):
        a = {"Вид мебели": r["p"][0].nom, "Бренд": r["p"][1], "Ширина": f"{s['width']} см",
             "Цвет": _color_attr(r)}
        if r["p"][2]:
            a["Модель"] = r["p"][2]
        return a


class Appliance(Goods):
    key, l1, l2, weight, shop_group = "appliance", "Для дома и дачи", "Бытовая техника", 0.33, "home"
    fields = ("noun", "brand", "model", "price", "l3", "l4")
    products = [
        (_noun("Холодильник", "холодильник", "m"), "Samsung", "RB37A5200SA", 45000, "Для кухни", "Холодильники и морозильные камеры"),
        (_noun("Стиральная машина", "стиральную машину", "f"), "LG", "F2J3NS0W", 30000, "Для дома", "Стиральные машины"),
        (_noun("Холодильник", "холодильник", "m"), "Атлант", "ХМ-4624-101", 30000, "Для кухни", "Холодильники и морозильные камеры"),
        (_noun("Пылесос", "пылесос", "m"), "Dyson", "V11 Absolute", 40000, "Для дома", "Пылесосы"),
        (_noun("Робот-пылесос", "робот-пылесос", "m"), "Xiaomi", "Robot Vacuum S10", 18000, "Для дома", "Пылесосы"),
        (_noun("Стиральная машина", "стиральную машину", "f"), "Indesit", "IWSB 5085", 17000, "Для дома", "Стиральные машины"),
        (_noun("Кофемашина", "кофемашину", "f"), "DeLonghi", "Magnifica S ECAM 22.110", 35000, "Для кухни", "Кофеварки и кофемашины"),
        (_noun("Микроволновка", "микроволновку", "f"), "Samsung", "ME88SUG", 8000, "Для кухни", "Микроволновые печи"),
        (_noun("Мультиварка", "мультиварку", "f"), "Redmond", "RMC-M90", 5000, "Для кухни", "Мелкая кухонная техника"),
        (_noun("Кондиционер", "кондиционер", "m"), "Haier", "HSU-09HTM", 25000, "Климатическое оборудование", "Кондиционеры"),
        (_noun("Стиральная машина", "стиральную машину", "f"), "Bosch", "WLP20260OE", 35000, "Для дома", "Стиральные машины"),
        (_noun("Кофемашина", "кофемашину", "f"), "Philips", "EP2231 LatteGo", 30000, "Для кухни", "Кофеварки и кофемашины"),
    ]
    variants = {"color": COLORS[:3] + COLORS[10:11]}
    numeric = {"bought": (2015, 2024)}
    distinct = ("color", "bought")
    titles = ["{noun} {name}", "{noun} {brand} {model} {color}", "{name} {low}", "{noun} {brand} б/у"]
    sentences = ["Покупали в {bought} году, есть чек.", "Цвет {cm}.", "Работает идеально, всё проверено.",
                 "Доставка за ваш счёт, помогу погрузить.", "Продаю из-за переезда.",
                 "Гарантия ещё действует.", "Инструкция и документы на месте."]

    def path(self, r):
        return (self.l1, self.l2, r["p"][4], r["p"][5])

    def finish(self, rng, cols, ctx):
        super().finish(rng, cols, ctx)
        cols["price"] = round_price(cols["price"] * 0.92 ** (YEAR_NOW - cols["bought"]))

    def spec(self, r, noun):
        return {"bought": str(r["bought"]), "color": self.color(r, noun)}

    def attrs(self, r, s):
        return {"Вид техники": r["p"][0].nom, "Бренд": r["p"][1], "Модель": r["p"][2],
                "Цвет": _color_attr(r), "Год покупки": s["bought"]}


_DRILL = Noun("Шуруповёрт", "шуруповёрт", "m")


class Tools(Goods):
    key, l1, l2, weight, shop_group = "tools", "Для дома и дачи", "Ремонт и строительство", 0.22, "home"
    products = [
        (_DRILL, "Makita", "DF333DWYE", 9000), (_DRILL, "Bosch", "GSR 120-LI", 8000),
        (Noun("Перфоратор", "перфоратор", "m"), "Makita", "HR2470", 9000),
        (_DRILL, "DeWalt", "DCD791", 15000), (_DRILL, "Интерскол", "ДА-12ЭР", 3500),
        (Noun("Мойка высокого давления", "мойку высокого давления", "f"), "Karcher", "K 5", 20000),
        (Noun("Бензопила", "бензопилу", "f"), "Stihl", "MS 180", 16000),
        (Noun("Болгарка", "болгарку", "f"), "Metabo", "W 750-125", 5000),
        (Noun("Бензопила", "бензопилу", "f"), "Husqvarna", "236", 13000),
    ]
    variants = {"kit": ["в кейсе, два аккумулятора", "один аккумулятор", "без аккумулятора", "в коробке"]}
    variant_price = {"kit": [1.0, 0.85, 0.6, 0.95]}
    distinct = ("kit",)
    titles = ["{noun} {name}", "{name}", "{noun} {name} {kit}", "{low} {brand}"]
    sentences = ["Комплектация: {kit}.", "Рабочий, использовался для дома.", "Мощный, не подводил.",
                 "Зарядка в комплекте.", "Проверка при покупке."]

    def path(self, r):
        return (self.l1, self.l2, "Инструменты", "")

    def spec(self, r, noun):
        return {"kit": r["kit"]}

    def attrs(self, r, s):
        return {"Вид инструмента": r["p"][0].nom, "Бренд": r["p"][1], "Модель": r["p"][2],
                "Комплектация": s["kit"]}


class Plants(Goods):
    key, l1, l2, weight = "plants", "Для дома и дачи", "Растения", 0.12
    products = [
        (Noun("Монстера", "монстеру", "f"), "", "", 1500), (Noun("Фикус Бенджамина", "фикус Бенджамина", "m"), "", "", 1200),
        (Noun("Замиокулькас", "замиокулькас", "m"), "", "", 900), (Noun("Сансевиерия", "сансевиерию", "f"), "", "", 600),
        (Noun("Орхидея фаленопсис", "орхидею фаленопсис", "f"), "", "", 800),
        (Noun("Спатифиллум", "спатифиллум", "m"), "", "", 500), (Noun("Алоэ вера", "алоэ вера", "n"), "", "", 300),
    ]
    variants = {"pot": ["с горшком", "без горшка"]}
    numeric = {"height": (15, 150)}
    cond_weights = None
    distinct = ("height", "pot")
    titles = ["{noun} {height} см", "{noun} {pot}", "{noun}, высота {height} см", "{noun}"]
    sentences = ["Высота около {height} см, {pot}.", "Здоровое растение, без вредителей.",
                 "Хорошо растёт в полутени.", "Отдам в хорошие руки.", "Есть детки, спрашивайте."]

    def finish(self, rng, cols, ctx):
        super().finish(rng, cols, ctx)
        cols["price"] = round_price(cols["price"] * (0.4 + cols["height"] / 60))

    def spec(self, r, noun):
        return {"height": str(r["height"]), "pot": r["pot"]}

    def attrs(self, r, s):
        return {"Вид": r["p"][0].nom, "Высота": f"{s['height']} см", "Горшок": "Есть" if r["pot"] == "с горшком" else "Нет"}


# --------------------------------------------------------------------------- Хобби и отдых

_BIKE = Noun("Велосипед", "велосипед", "m")


class Bike(Goods):
    key, l1, l2, weight, shop_group = "bike", "Хобби и отдых", "Велосипеды", 0.3, "hobby"
    fields = ("noun", "brand", "model", "price", "l3")
    products = [
        (_BIKE, "Stels", "Navigator 700 MD", 15000, "Горные"), (_BIKE, "Forward", "Sporting 27.5", 20000, "Горные"),
        (_BIKE, "Merida", "Big.Nine 100", 45000, "Горные"), (_BIKE, "Trek", "Marlin 5", 50000, "Горные"),
        (_BIKE, "Giant", "Talon 3", 45000, "Горные"), (_BIKE, "Cube", "Aim Race", 55000, "Горные"),
        (_BIKE, "Author", "Outset", 25000, "Горные"), (_BIKE, "Stels", "Pilot 710", 9000, "Детские"),
        (_BIKE, "Format", "1413", 40000, "Горные"), (_BIKE, "Schwinn", "Admiral", 20000, "Городские"),
        (Noun("Электросамокат", "электросамокат", "m"), "Ninebot", "KickScooter Max G30", 40000, "Самокаты"),
        (Noun("Электросамокат", "электросамокат", "m"), "Xiaomi", "Mi Electric Scooter Pro 2", 28000, "Самокаты"),
    ]
    variants = {"frame": ["S", "M", "L", "XL"], "wheel": ["26", "27.5", "29"], "color": COLORS}
    variant_weights = {"color": _CW}
    numeric = {"year": (2016, 2024)}
    distinct = ("frame", "year", "color")
    titles = ["{noun} {name}", "{name} {wheel} рама {frame}", "{noun} {name} {year}",
              "{name} {color}", "{noun} {brand} {model} {wheel}\""]
    sentences = ["Рама {frame}, колёса {wheel} дюймов.", "Модель {year} года.", "Цвет {cm}.",
                 "Обслужен, смазан, тормоза отрегулированы.", "Катался мало, хранился дома.",
                 "Подойдёт на рост от 170 см.", "Насос и замок в подарок."]

    def path(self, r):
        return (self.l1, self.l2, r["p"][4], "")

    def spec(self, r, noun):
        return {"frame": r["frame"], "wheel": r["wheel"], "year": str(r["year"]), "color": self.color(r, noun)}

    def attrs(self, r, s):
        return {"Бренд": r["p"][1], "Модель": r["p"][2], "Размер рамы": s["frame"],
                "Диаметр колёс": s["wheel"], "Год": s["year"], "Цвет": _color_attr(r)}


class Sport(Goods):
    key, l1, l2, weight, shop_group = "sport", "Хобби и отдых", "Спорт и отдых", 0.25, "hobby"
    fields = ("noun", "brand", "model", "price", "l3")
    products = [
        (Noun("Сноуборд", "сноуборд", "m"), "Burton", "Custom", 25000, "Зимние виды спорта"),
        (Noun("Горные лыжи", "горные лыжи", "p"), "Atomic", "Redster X5", 20000, "Зимние виды спорта"),
        (Noun("Беговая дорожка", "беговую дорожку", "f"), "Xiaomi", "WalkingPad A1", 18000, "Тренажёры и фитнес"),
        (Noun("Палатка", "палатку", "f"), "Tramp", "Lite Wonder 3", 9000, "Туризм"),
        (Noun("Ролики", "ролики", "p"), "Rollerblade", "Macroblade 80", 8000, "Ролики и скейтбординг"),
        (Noun("Велотренажёр", "велотренажёр", "m"), "Torneo", "Smarta", 12000, "Тренажёры и фитнес"),
        (Noun("Гантели разборные 2×20 кг", "гантели разборные 2×20 кг", "p"), "", "", 5000, "Тренажёры и фитнес"),
        (Noun("Коньки", "коньки", "p"), "Bauer", "Vapor X3.7", 9000, "Зимние виды спорта"),
        (Noun("Сап-доска", "сап-доску", "f"), "Gladiator", "Pro 10.6", 20000, "Водные виды спорта"),
    ]
    variants = {"size": ["S", "M", "L", "150 см", "155 см", "160 см", "42", "43", "44"], "color": COLORS[:6]}
    distinct = ("size", "color")
    titles = ["{noun} {name}", "{noun} {name} {size}", "{name} {color}", "{low} {brand}"]
    sentences = ["Размер {size}.", "Цвет {cm}.", "Использовали один сезон.", "Хранился в чехле.",
                 "Отличный вариант для начинающих.", "Возможен обмен на велосипед."]

    def path(self, r):
        return (self.l1, self.l2, r["p"][4], "")

    def spec(self, r, noun):
        return {"size": r["size"], "color": self.color(r, noun)}

    def attrs(self, r, s):
        a = {"Вид товара": r["p"][0].nom, "Размер": s["size"], "Цвет": _color_attr(r)}
        if r["p"][1]:
            a["Бренд"], a["Модель"] = r["p"][1], r["p"][2]
        return a


_GUITAR = Noun("Гитара", "гитару", "f")


class Instrument(Goods):
    key, l1, l2, weight, shop_group = "instrument", "Хобби и отдых", "Музыкальные инструменты", 0.15, "hobby"
    fields = ("noun", "brand", "model", "price", "l3")
    products = [
        (_GUITAR, "Yamaha", "F310", 12000, "Гитары и другие струнные"),
        (Noun("Электрогитара", "электрогитару", "f"), "Fender", "Stratocaster Player", 80000, "Гитары и другие струнные"),
        (Noun("Цифровое пианино", "цифровое пианино", "n"), "Yamaha", "P-45", 35000, "Клавишные"),
        (Noun("Электрогитара", "электрогитару", "f"), "Ibanez", "GRG121DX", 20000, "Гитары и другие струнные"),
        (_GUITAR, "Cort", "AD810", 10000, "Гитары и другие струнные"),
        (Noun("Синтезатор", "синтезатор", "m"), "Casio", "CT-S300", 12000, "Клавишные"),
        (Noun("Электронная ударная установка", "электронную ударную установку", "f"), "Roland", "TD-1K", 45000, "Ударные"),
        (Noun("Электрогитара", "электрогитару", "f"), "Gibson", "Les Paul Studio", 150000, "Гитары и другие струнные"),
    ]
    variants = {"color": COLORS[:4] + COLORS[6:8], "kit": ["с чехлом", "с комбиком", "без чехла", "с чехлом и тюнером"]}
    distinct = ("color", "kit")
    titles = ["{noun} {name}", "{name} {kit}", "{noun} {name} {color}", "{name}"]
    sentences = ["Цвет {cm}.", "Отдаю {kit}.", "Строй держит, гриф ровный.", "Играл дома, на сцене не был.",
                 "Струны недавно поменял.", "Подойдёт для обучения."]

    def path(self, r):
        return (self.l1, self.l2, r["p"][4], "")

    def spec(self, r, noun):
        return {"color": self.color(r, noun), "kit": r["kit"]}

    def attrs(self, r, s):
        return {"Вид инструмента": r["p"][0].nom, "Бренд": r["p"][1], "Модель": r["p"][2],
                "Цвет": _color_attr(r), "Комплектация": s["kit"]}


_BOOK = Noun("Книга", "книгу", "f")


class Book(Goods):
    key, l1, l2, weight = "book", "Хобби и отдых", "Книги и журналы", 0.2
    fields = ("noun", "author", "title", "price", "l3")
    products = [
        (_BOOK, "Михаил Булгаков", "Мастер и Маргарита", 500, "Книги"),
        (_BOOK, "Лев Толстой", "Война и мир", 800, "Книги"),
        (_BOOK, "Джоан Роулинг", "Гарри Поттер и философский камень", 700, "Книги"),
        (_BOOK, "Эрих Мария Ремарк", "Три товарища", 400, "Книги"),
        (_BOOK, "Джордж Оруэлл", "1984", 400, "Книги"),
        (Noun("Учебник", "учебник", "m"), "Мордкович", "Алгебра 7 класс", 400, "Учебная литература"),
        (Noun("Учебник", "учебник", "m"), "Ваулина", "Spotlight 5 класс", 500, "Учебная литература"),
        (_BOOK, "Стивен Кинг", "Оно", 600, "Книги"),
        (_BOOK, "Фёдор Достоевский", "Преступление и наказание", 350, "Книги"),
    ]
    variants = {"cover": ["Твёрдая", "Мягкая"], "publisher": ["Эксмо", "АСТ", "Азбука", "Махаон", "Просвещение"]}
    numeric = {"year": (1985, 2023)}
    distinct = ("year", "cover", "publisher")
    titles = ["{title} {author}", "{author} «{title}»", "{noun} {title}", "{title}, {year}"]
    sentences = ["Издательство {publisher}, {year} год.", "Обложка {cover_low}.", "Читали один раз, как новая.",
                 "Страницы целые, без пометок.", "Отдам вместе с другими книгами дешевле."]

    def path(self, r):
        return (self.l1, self.l2, r["p"][4], "")

    def render(self, r, ctx, rnd):
        p = r["p"]
        s = {"noun": p[0].nom, "title": p[2], "author": p[1], "year": str(r["year"]),
             "publisher": r["publisher"], "cover_low": r["cover"].lower()}
        titles = [t.format(**s) for t in self.titles]
        core = [rnd.choice([f"Продаю {p[0].acc} «{p[2]}», автор {p[1]}.", f"{p[1]}, «{p[2]}»."])]
        core += [t.format(**s) for t in _pick(rnd, self.sentences, rnd.randint(1, 3))]
        attrs = {"Автор": p[1], "Название": p[2], "Год издания": s["year"], "Издательство": s["publisher"],
                 "Переплёт": r["cover"], "Состояние": W.CONDITION_ATTR[r["cond"]]}
        return Rendered(self.path(r), attrs, titles, core, "goods", r["cond"])


class Collect(Goods):
    key, l1, l2, weight = "collect", "Хобби и отдых", "Коллекционирование", 0.1
    fields = ("noun", "brand", "model", "price", "l3")
    products = [
        (Noun("Монета", "монету", "f"), "", "10 рублей 2010 Пермский край", 1500, "Монеты"),
        (Noun("Монета", "монету", "f"), "", "5 рублей 1997 ММД", 300, "Монеты"),
        (Noun("Банкнота", "банкноту", "f"), "", "100 рублей Сочи 2014", 400, "Банкноты"),
        (Noun("Марки", "марки", "p"), "", "СССР 1961 Космос", 2000, "Марки"),
        (Noun("Значок", "значок", "m"), "", "Олимпиада-80", 300, "Значки"),
    ]
    variants = {"grade": ["UNC", "AU", "XF", "VF"], "count": [1, 2, 5, 10]}
    variant_price = {"grade": [1.0, 0.8, 0.6, 0.4], "count": [1, 1.9, 4.5, 8.5]}
    cond_weights = None
    distinct = ("grade", "count")
    titles = ["{noun} {model}", "{noun} {model} {grade}", "{model}, {count} шт.", "{noun} {model} в коллекцию"]
    sentences = ["Сохранность {grade}.", "Количество: {count} шт.", "Из личной коллекции.",
                 "Подлинность гарантирую.", "Отправлю почтой по России."]

    def path(self, r):
        return (self.l1, self.l2, r["p"][4], "")

    def spec(self, r, noun):
        return {"grade": r["grade"], "count": str(r["count"])}

    def attrs(self, r, s):
        return {"Вид": r["p"][0].nom, "Название": r["p"][2], "Сохранность": s["grade"], "Количество": s["count"]}


# --------------------------------------------------------------------------- Животные

_COAT = ["Рыжий", "Чёрный", "Белый", "Палевый", "Тигровый", "Чёрно-подпалый", "Голубой", "Шоколадный",
         "Триколор", "Серый", "Кремовый"]


class Dog(Kind):
    key, l1, l2, weight = "dog", "Животные", "Собаки", 0.35
    tails = "animal"
    cond_weights = None
    # breed, genitive singular, genitive plural-friendly form, price
    fields = ("breed", "gen", "price")
    noun_one, noun_many = ("Щенок", "щенка"), ("Щенки", "щенков")
    products = [
        ("Хаски", "хаски", 25000), ("Немецкая овчарка", "немецкой овчарки", 30000),
        ("Йоркширский терьер", "йоркширского терьера", 25000), ("Шпиц", "шпица", 40000),
        ("Французский бульдог", "французского бульдога", 35000), ("Вельш-корги пемброк", "вельш-корги", 50000),
        ("Лабрадор-ретривер", "лабрадора", 30000), ("Чихуахуа", "чихуахуа", 20000), ("Такса", "таксы", 20000),
        ("Джек-рассел-терьер", "джек-рассел-терьера", 25000), ("Мопс", "мопса", 20000),
        ("Бигль", "бигля", 25000), ("Самоед", "самоеда", 45000), ("Метис", "метиса", 500),
        ("Американский булли", "американского булли", 60000),
    ]
    popularity = 0.5
    variants = {"sex": ["Мальчик", "Девочка"], "coat": _COAT, "docs": ["РКФ", "Метрика", "Без документов"]}
    variant_weights = {"docs": [0.35, 0.35, 0.3]}
    variant_price = {"docs": [1.3, 1.0, 0.6]}
    numeric = {"age": (1, 30)}
    distinct = ("sex", "age", "coat")
    price_sigma = 0.25

    def sample_item(self, rng, cols, m):
        super().sample_item(rng, cols, m)
        cols["age"] = np.minimum(1 + rng.geometric(0.35, size=m), 30)
        cols["litter"] = (rng.random(m) < 0.35).astype(int)

    def finish(self, rng, cols, ctx):
        super().finish(rng, cols, ctx)
        cols["price"] = np.where(cols["age"] > 12, round_price(cols["price"] * 0.5), cols["price"])

    def render(self, r, ctx, rnd):
        breed, gen = r["p"][0], r["p"][1]
        one, many = self.noun_one, self.noun_many
        sex, age = r["sex"], age_text(r["age"])
        coat = r["coat"]
        young = r["age"] <= 6
        if r["litter"] and young:
            titles = [f"{many[0]} {gen}", f"{many[0]} породы {breed.lower()}", f"{breed}, {many[0].lower()}",
                      f"Продаются {many[0].lower()} {gen}"]
            opener_ = f"Продаются {many[0].lower()} {gen}, возраст {age}."
        elif young:
            titles = [f"{one[0]} {gen}, {sex.lower()}", f"{breed} {sex.lower()}", f"{one[0]} {gen} {age}",
                      f"{breed}, {sex.lower()}, {age}"]
            opener_ = f"Продаётся {one[0].lower()} {gen}, {sex.lower()}, возраст {age}."
        else:
            titles = [f"{breed}, {sex.lower()}, {age}", f"Отдам {breed.lower()} {age}",
                      f"{breed} {sex.lower()} {coat.lower()}", f"{breed} в добрые руки"]
            opener_ = f"{breed}, {sex.lower()}, {age}, ищет новый дом."
        core = [opener_, f"Окрас {coat.lower()}.",
                {"Метрика": "Есть метрика.", "Без документов": "Без документов."}.get(
                    r["docs"], f"Документы {r['docs']}, клеймо.")]
        core += _pick(rnd, ["Родители чемпионы.", "Очень ласковые и игривые.", "Здоровые, активные.",
                            "Хорошо ладит с детьми.", "Обработаны от паразитов."], rnd.randint(1, 2))
        attrs = {"Порода": breed, "Пол": sex, "Возраст": age, "Окрас": coat, "Документы": r["docs"]}
        return Rendered((self.l1, self.l2, breed, ""), attrs, titles, core, self.tails)


class Cat(Dog):
    key, l1, l2, weight = "cat", "Животные", "Кошки", 0.3
    noun_one, noun_many = ("Котёнок", "котёнка"), ("Котята", "котят")
    products = [
        ("Британская короткошёрстная", "британской короткошёрстной кошки", 15000),
        ("Шотландская вислоухая", "шотландской вислоухой кошки", 12000),
        ("Мейн-кун", "мейн-куна", 35000), ("Сфинкс", "сфинкса", 20000),
        ("Бенгальская", "бенгальской кошки", 30000), ("Беспородная", "беспородной кошки", 0),
        ("Сиамская", "сиамской кошки", 8000), ("Русская голубая", "русской голубой кошки", 15000),
        ("Scottish Fold", "Scottish Fold", 15000), ("Мейн-кун (Maine Coon)", "мейн-куна", 40000),
    ]
    variants = {"sex": ["Мальчик", "Девочка"], "coat": ["Голубой", "Серебристый", "Рыжий", "Чёрный", "Белый",
                                                       "Мраморный", "Черепаховый", "Кремовый", "Биколор"],
                "docs": ["WCF", "Метрика", "Без документов"]}


class Bird(Goods):
    key, l1, l2, weight = "bird", "Животные", "Птицы", 0.1
    tails = "animal"
    products = [
        (Noun("Волнистый попугай", "волнистого попугая", "m"), "", "", 800),
        (Noun("Корелла", "кореллу", "f"), "", "", 3000), (Noun("Неразлучники", "неразлучников", "p"), "", "", 4000),
        (Noun("Канарейка", "канарейку", "f"), "", "", 2500), (Noun("Жако", "жако", "m"), "", "", 90000),
    ]
    variants = {"sex": ["Мальчик", "Девочка", "Пара"], "color": COLORS[:6]}
    numeric = {"age": (2, 24)}
    cond_weights = None
    distinct = ("sex", "age", "color")
    titles = ["{noun}", "{noun}, {sex_low}", "{noun} {age}", "{noun} с клеткой"]
    sentences = ["Возраст {age}.", "Окрас {color}.", "Ручные, берут корм с руки.", "Клетка в подарок.",
                 "Поют каждое утро."]

    def spec(self, r, noun):
        return {"sex_low": r["sex"].lower(), "age": age_text(r["age"]), "color": r["color"][0].lower()}

    def attrs(self, r, s):
        return {"Вид": r["p"][0].nom, "Пол": r["sex"], "Возраст": s["age"], "Окрас": r["color"][0]}


class PetFood(Goods):
    key, l1, l2, weight, shop_group = "petfood", "Животные", "Товары для животных", 0.12, "pets"
    products = [
        (Noun("Корм", "корм", "m"), "Royal Canin", "Maxi Adult", 6000),
        (Noun("Корм", "корм", "m"), "Purina Pro Plan", "Sterilised", 4000),
        (Noun("Корм", "корм", "m"), "Acana", "Adult Dog", 7000),
        (Noun("Корм", "корм", "m"), "Hill's", "Science Plan", 5500),
        (Noun("Корм", "корм", "m"), "Monge", "Cat Adult", 3500),
    ]
    variants = {"weight": [2, 3, 10, 12, 15]}
    variant_price = {"weight": [0.25, 0.35, 0.8, 0.9, 1.0]}
    cond_weights = (0.85, 0.0, 0.15, 0.0, 0.0)
    distinct = ("weight",)
    titles = ["{noun} {name} {weight} кг", "{name} {weight}кг", "{noun} {name}", "{name} {weight} кг"]
    sentences = ["Вес {weight} кг.", "Не подошёл нашему питомцу.", "Срок годности отличный.",
                 "Мешок не вскрывали.", "Доставка по городу."]

    def path(self, r):
        return (self.l1, self.l2, "Корма", "")

    def spec(self, r, noun):
        return {"weight": str(r["weight"])}

    def attrs(self, r, s):
        return {"Вид товара": "Корм", "Бренд": r["p"][1], "Модель": r["p"][2], "Вес": f"{s['weight']} кг"}


class PetGoods(Goods):
    key, l1, l2, weight, shop_group = "petgoods", "Животные", "Товары для животных", 0.13, "pets"
    fields = ("noun", "brand", "model", "price", "l3")
    products = [
        (Noun("Переноска", "переноску", "f"), "Trixie", "Capri 2", 2000, "Переноски и клетки"),
        (Noun("Клетка", "клетку", "f"), "Ferplast", "Piano 6", 5000, "Переноски и клетки"),
        (Noun("Лежанка", "лежанку", "f"), "", "", 1200, "Лежаки и домики"),
        (Noun("Когтеточка", "когтеточку", "f"), "", "", 1500, "Лежаки и домики"),
        (Noun("Аквариум", "аквариум", "m"), "Juwel", "Rio 125", 12000, "Аквариумистика"),
        (Noun("Фильтр для аквариума", "фильтр для аквариума", "m"), "Tetra", "EX 600", 4000, "Аквариумистика"),
    ]
    variants = {"size": ["S", "M", "L", "XL"], "color": COLORS[:4]}
    variant_price = {"size": [0.8, 1.0, 1.2, 1.4]}
    distinct = ("size", "color")
    titles = ["{noun} {name}", "{noun} {name} {size}", "{name} размер {size}", "{noun} {name} {color}"]
    sentences = ["Размер {size}.", "Цвет {cm}.", "Не подошло нашему питомцу.", "Чистое, без запаха.",
                 "Доставка по городу."]

    def path(self, r):
        return (self.l1, self.l2, r["p"][4], "")

    def spec(self, r, noun):
        return {"size": r["size"], "color": self.color(r, noun)}

    def attrs(self, r, s):
        a = {"Вид товара": r["p"][0].nom, "Размер": s["size"], "Цвет": _color_attr(r)}
        if r["p"][1]:
            a["Бренд"], a["Модель"] = r["p"][1], r["p"][2]
        return a


# --------------------------------------------------------------------------- registry

TOP_LEVEL = {  # top-level category -> share of listings
    "Личные вещи": 0.24, "Для дома и дачи": 0.17, "Электроника": 0.16, "Транспорт": 0.14,
    "Хобби и отдых": 0.11, "Недвижимость": 0.11, "Животные": 0.07,
}

KINDS: list[Kind] = [k() for k in (
    Phone, Laptop, Tablet, Audio, TV, Console, Camera,
    Car, Moto, Tyres, Parts,
    Apartment, Room, House, Garage,
    Clothes, Shoes, Kids, Watch, Beauty, BeautyDevice, Toys,
    Furniture, Appliance, Tools, Plants,
    Bike, Sport, Instrument, Book, Collect,
    Dog, Cat, Bird, PetFood, PetGoods,
)]


def kind_weights() -> np.ndarray:
    """Share of listings of each kind in KINDS order."""
    w = np.zeros(len(KINDS))
    for l1, share in TOP_LEVEL.items():
        idx = [i for i, k in enumerate(KINDS) if k.l1 == l1]
        kw = np.array([KINDS[i].weight for i in idx])
        w[idx] = share * kw / kw.sum()
    return w / w.sum()
