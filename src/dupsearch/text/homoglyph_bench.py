"""Measure homoglyph cleaning: ``python -m dupsearch.text.homoglyph_bench``.

With ``--listings PATH`` it reads a listings Parquet file that holds the
generator's ``title``, ``description`` (with swaps) and ``original_title``,
``original_description`` (without); otherwise it builds its own corpus: Russian
ads from templates with Latin brand names and model codes, optionally padded
with Russian words from ``wordfreq`` (train and test words disjoint), and swaps
letters with the shared look-alike table (``confusables``).

The cleaner is fitted on the training part (swapped text, as in real use) and
measured on the held-out part, word by word against the original:

* recall: share of substituted words restored exactly;
* precision: share of the cleaner's changes that restore the original exactly;
* false change rate: share of clean words the cleaner changed.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import zlib
from collections import Counter
from dataclasses import asdict, dataclass, field

from dupsearch.text.confusables import CYR_TO_LAT, LAT_TO_CYR
from dupsearch.text.homoglyphs import WORD_RE, CleanerConfig, HomoglyphCleaner

_TO_LAT = str.maketrans(CYR_TO_LAT)

# ------------------------------------------------------------------ corpus
CITIES = ["Москве", "Санкт-Петербурге", "Казани", "Екатеринбурге", "Новосибирске", "Самаре",
          "Краснодаре", "Воронеже", "Перми", "Уфе", "Ростове-на-Дону", "Нижнем Новгороде"]
COLOURS = ["черный", "белый", "серый", "синий", "красный", "зеленый", "серебристый", "золотой",
           "бежевый", "коричневый", "розовый", "графитовый"]

# category -> (product nouns (nominative, accusative), brand/model pairs, specific sentences)
CATEGORIES: dict[str, dict] = {
    "phones": {
        "nouns": [("Смартфон", "смартфон"), ("Телефон", "телефон"),
                  ("Мобильный телефон", "мобильный телефон")],
        "models": [("Apple", "iPhone 13 Pro"), ("Apple", "iPhone 12 mini"), ("Apple", "iPhone 11"),
                   ("Apple", "iPhone XR"), ("Samsung", "Galaxy S21"), ("Samsung", "Galaxy A52"),
                   ("Samsung", "Galaxy Note 20 Ultra"), ("Xiaomi", "Redmi Note 10 Pro"),
                   ("Xiaomi", "Mi 11 Lite"), ("Xiaomi", "Poco X3 Pro"), ("Huawei", "P30 Lite"),
                   ("Honor", "50"), ("Realme", "8 Pro"), ("Google", "Pixel 6"), ("OnePlus", "9 Pro"),
                   ("Nokia", "3310"), ("Tecno", "Spark 8C"), ("Vivo", "Y31")],
        "sentences": [
            "Память {mem} ГБ, аккумулятор держит целый день.",
            "Экран без царапин, всегда был в чехле и под защитным стеклом.",
            "Face ID и Touch ID работают, все камеры исправны.",
            "Состояние батареи {pct}%, заряжается быстро.",
            "В комплекте коробка, зарядное устройство и кабель USB Type-C.",
            "Поддерживает две SIM-карты и карту памяти microSD.",
            "Не битый, не тонул, в ремонте не был.",
            "Продаю в связи с покупкой нового телефона.",
            "Цвет {colour}, корпус без сколов.",
            "Разблокирован, работает с любым оператором.",
        ],
    },
    "laptops": {
        "nouns": [("Ноутбук", "ноутбук"), ("Игровой ноутбук", "игровой ноутбук"), ("Ультрабук", "ультрабук")],
        "models": [("Apple", "MacBook Air M1"), ("Apple", "MacBook Pro 14"), ("Lenovo", "IdeaPad 3"),
                   ("Lenovo", "ThinkPad T480"), ("Asus", "ROG Strix G15"), ("Asus", "VivoBook 15"),
                   ("Acer", "Aspire 5"), ("Acer", "Nitro 5"), ("HP", "Pavilion 15"), ("Dell", "XPS 13"),
                   ("MSI", "Katana GF66"), ("Huawei", "MateBook D 14"), ("Honor", "MagicBook 15")],
        "sentences": [
            "Процессор {cpu}, оперативная память {ram} ГБ, SSD {ssd} ГБ.",
            "Видеокарта {gpu}, тянет все современные игры на высоких настройках.",
            "Матрица IPS {inch} дюйма, разрешение Full HD.",
            "Батарея держит до {hours} часов в режиме работы с документами.",
            "Установлена Windows 11, есть Microsoft Office.",
            "Клавиатура с подсветкой, все кнопки работают.",
            "Корпус металлический, есть небольшие потертости на крышке.",
            "Отдам вместе с сумкой и беспроводной мышкой.",
            "Использовался для учебы, ни разу не ремонтировался.",
        ],
    },
    "computers": {
        "nouns": [("Видеокарта", "видеокарту"), ("Игровой компьютер", "игровой компьютер"),
                  ("Монитор", "монитор"), ("Процессор", "процессор")],
        "models": [("MSI", "RTX3060 Ventus"), ("Palit", "GeForce RTX 3070"), ("Gigabyte", "RX 6600 Eagle"),
                   ("Asus", "TUF RTX3080"), ("Intel", "Core i5-12400F"), ("AMD", "Ryzen 5 5600X"),
                   ("Samsung", "Odyssey G5"), ("LG", "27GL850"), ("AOC", "24G2"),
                   ("Zotac", "GTX 1660 Super")],
        "sentences": [
            "Не майнила, использовалась только для игр.",
            "Температуры в норме, термопаста заменена месяц назад.",
            "Гарантия DNS до {year} года, чек сохранен.",
            "Частота обновления {hz} Гц, время отклика 1 мс.",
            "Сборка: {cpu}, {ram} ГБ DDR4, блок питания 650 Вт.",
            "Проверка при покупке, можно подключить и протестировать.",
        ],
    },
    "cars": {
        "nouns": [("Автомобиль", "автомобиль"), ("Машина", "машину"), ("Кроссовер", "кроссовер"),
                  ("Седан", "седан")],
        "models": [("BMW", "X5"), ("BMW", "320i"), ("Toyota", "Camry"), ("Toyota", "RAV4"),
                   ("Mercedes-Benz", "C 200"), ("Mercedes-Benz", "E-Class"), ("Kia", "Rio"),
                   ("Kia", "Sportage"), ("Hyundai", "Solaris"), ("Hyundai", "Creta"), ("Lada", "Granta"),
                   ("Lada", "Vesta"), ("ВАЗ", "2107"), ("Volkswagen", "Polo"), ("Volkswagen", "Tiguan"),
                   ("Skoda", "Octavia"), ("Audi", "A6"), ("Ford", "Focus"), ("Nissan", "Qashqai"),
                   ("Renault", "Logan"), ("Mazda", "CX-5"), ("Chevrolet", "Cruze"),
                   ("Mitsubishi", "Outlander")],
        "sentences": [
            "Год выпуска {year}, пробег {km} км.",
            "Двигатель {engine} л, {hp} л.с., коробка автомат.",
            "Один владелец, ПТС оригинал, все ТО пройдены у официального дилера.",
            "Кузов без ржавчины, не крашен, все элементы в заводской краске.",
            "Зимняя резина на дисках в подарок.",
            "Машина на ходу, заводится в любой мороз.",
            "Салон чистый, не курили, сиденья с подогревом.",
            "Торг у капота, обмен не предлагать.",
            "Возможен кредит и трейд-ин.",
            "Цвет кузова {colour}, кондиционер работает.",
            "По ОСАГО и КАСКО без ограничений, штрафов нет.",
        ],
    },
    "clothes": {
        "nouns": [("Кроссовки", "кроссовки"), ("Куртка", "куртку"), ("Пуховик", "пуховик"),
                  ("Платье", "платье"), ("Джинсы", "джинсы"), ("Ботинки", "ботинки")],
        "models": [("Nike", "Air Max 90"), ("Nike", "Air Force 1"), ("Adidas", "Superstar"),
                   ("Adidas", "Yeezy Boost 350"), ("Puma", "Suede"), ("Reebok", "Classic"),
                   ("New Balance", "574"), ("Zara", ""), ("The North Face", "Nuptse"), ("Levi's", "501"),
                   ("Columbia", ""), ("Mango", ""), ("Timberland", "6 Inch")],
        "sentences": [
            "Размер {size}, по стельке {cm} см.",
            "Надевали всего пару раз, состояние новых.",
            "Оригинал, есть чек из магазина.",
            "Не подошел размер, поэтому продаю.",
            "Цвет {colour}, очень теплая и легкая.",
            "Без дефектов, пятен и затяжек.",
            "Могу отправить почтой или СДЭКом.",
        ],
    },
    "home": {
        "nouns": [("Диван", "диван"), ("Холодильник", "холодильник"),
                  ("Стиральная машина", "стиральную машину"),
                  ("Кофемашина", "кофемашину"), ("Пылесос", "пылесос"), ("Шкаф", "шкаф"), ("Стол", "стол")],
        "models": [("IKEA", "Kallax"), ("IKEA", "Hemnes"), ("Bosch", "Serie 4"), ("Samsung", "RB37"),
                   ("LG", "F2J3"), ("DeLonghi", "Magnifica S"), ("Philips", "EP2231"), ("Dyson", "V11"),
                   ("Xiaomi", "Mi Robot Vacuum"), ("Indesit", "IWSC 5105"), ("Атлант", "ХМ 4024"),
                   ("Tefal", ""), ("Redmond", "RMC-M90"), ("Karcher", "WD 3")],
        "sentences": [
            "Размеры {w} на {h} см, глубина {d} см.",
            "Все функции работают, шумит не сильно.",
            "Самовывоз с {floor} этажа, лифт есть.",
            "Доставка по городу за отдельную плату.",
            "Куплен {years} года назад, отдаю из-за переезда.",
            "Есть небольшие следы использования, на работу не влияют.",
            "Инструкция и все комплектующие на месте.",
            "Механизм трансформации исправен, обивка без пятен.",
        ],
    },
    "animals": {
        "nouns": [("Котенок", "котенка"), ("Щенок", "щенка"), ("Попугай", "попугая"), ("Кошка", "кошку"),
                  ("Собака", "собаку")],
        "models": [("мейн-кун", ""), ("британская короткошерстная", ""), ("шотландская вислоухая", ""),
                   ("лабрадор-ретривер", ""), ("йоркширский терьер", ""), ("немецкая овчарка", ""),
                   ("корги", ""), ("сфинкс", ""), ("хаски", ""), ("волнистый", "")],
        "sentences": [
            "Возраст {months} месяца, приучен к лотку.",
            "Привит по возрасту, есть ветеринарный паспорт.",
            "Родители с хорошей родословной, можно посмотреть маму.",
            "Очень ласковый и игривый, хорошо ладит с детьми.",
            "Кушает сухой корм и натуралку.",
            "Отдаем только в добрые руки.",
            "Документы РКФ, клеймо, чип.",
        ],
    },
}

GENERAL = [
    "Продаю в отличном состоянии.",
    "Состояние хорошее, все работает.",
    "Торг уместен.",
    "Небольшой торг возможен при осмотре.",
    "Обмен не интересует.",
    "Звоните в любое время, отвечу на все вопросы.",
    "Пишите в сообщения, на звонки отвечаю не всегда.",
    "Самовывоз от метро, могу привезти к вам.",
    "Отправлю по всей России транспортной компанией.",
    "Цена окончательная, без торга.",
    "Срочно, поэтому такая цена.",
    "Причина продажи — переезд в другой город.",
    "Фото реальные, сделаны сегодня.",
    "Подробности по телефону.",
    "Находимся в {city}, встреча в центре.",
    "Покупал за {price} рублей, отдаю дешевле.",
    "Пользовался аккуратно, без царапин и сколов.",
    "Полный комплект: коробка, документы, чек.",
    "Все вопросы в чате.",
    "Возможна проверка перед покупкой.",
    "Если объявление активно — значит товар в наличии.",
    "Перекупщикам не беспокоить.",
    "На все вопросы отвечу, присылаю дополнительные фото.",
    "Гарантия магазина ещё {months} месяцев.",
    "С моей стороны честная сделка, без обмана.",
    "Кто первый приедет, тот и заберет.",
    "Оплата наличными или переводом на карту.",
    "Есть ещё много вещей в профиле, смотрите другие объявления.",
    "Хозяин бережно относился, хранилось в сухом месте.",
    "Могу скинуть видео, как все работает.",
    "Подойдет как подарок на новый год.",
    "Вещь в идеале, как из магазина.",
]
ENGLISH = [
    "Brand new, never used.",
    "Original box and charger included.",
    "Fast delivery, cash on pickup.",
    "Great condition, smoke free home.",
]
TITLE_TEMPLATES = [
    "{noun} {brand} {model}",
    "{brand} {model}",
    "{noun} {brand} {model} {spec}",
    "Продам {noun_acc} {brand} {model}",
    "{brand} {model} в отличном состоянии",
    "{noun} {brand} {model}, {colour}",
    "Новый {noun_lc} {brand} {model}",
]


def _fill(rng: random.Random, s: str) -> str:
    vals = {
        "mem": rng.choice([32, 64, 128, 256, 512]), "pct": rng.randint(78, 100),
        "colour": rng.choice(COLOURS),
        "cpu": rng.choice(["Intel Core i5", "Intel Core i7", "AMD Ryzen 7", "Apple M1"]),
        "ram": rng.choice([8, 16, 32]), "ssd": rng.choice([256, 512, 1024]),
        "gpu": rng.choice(["NVIDIA GeForce RTX 3060", "GTX 1650", "Radeon RX 6600M"]),
        "inch": rng.choice(["15,6", "14", "17,3"]), "hours": rng.randint(4, 12),
        "year": rng.randint(2005, 2024), "hz": rng.choice([75, 144, 165, 240]),
        "km": rng.randint(5, 250) * 1000, "engine": rng.choice(["1,6", "2,0", "2,5", "3,0"]),
        "hp": rng.randint(90, 300), "size": rng.choice([38, 40, 42, 44, 46, 48, "S", "M", "L", "XL"]),
        "cm": rng.randint(22, 30), "w": rng.randint(40, 220), "h": rng.randint(40, 220),
        "d": rng.randint(30, 90), "floor": rng.randint(1, 16), "years": rng.randint(2, 4),
        "months": rng.randint(2, 11), "city": rng.choice(CITIES), "price": rng.randint(2, 300) * 1000,
    }
    return s.format(**vals)


def _filler_vocab():
    """Russian words from wordfreq (ranks 200..40000), split in two disjoint halves."""
    try:
        import wordfreq
    except ImportError:
        return None
    words = [w for w in wordfreq.top_n_list("ru", 40_000)[200:]
             if w.isalpha() and all("\u0430" <= ch <= "\u044f" or ch == "ё" for ch in w)]
    halves = ([], [])
    for w in words:
        halves[zlib.crc32(w.encode()) & 1].append(w)
    return halves


def make_listing(rng: random.Random, filler: list[str] | None, filler_share: float) -> tuple[str, str]:
    cat = CATEGORIES[rng.choice(list(CATEGORIES))]
    noun, noun_acc = rng.choice(cat["nouns"])
    brand, model = rng.choice(cat["models"])
    spec = rng.choice(["128 ГБ", "256GB", "8/256", "2021 г.", "новый", "б/у", "XL", "1 TB"])
    title = rng.choice(TITLE_TEMPLATES).format(noun=noun, noun_acc=noun_acc, noun_lc=noun.lower(),
                                               brand=brand, model=model, spec=spec,
                                               colour=rng.choice(COLOURS))
    title = " ".join(title.split())
    sents = [f"Продаю {noun_acc} {brand} {model}.".replace(" .", ".")]
    pool = cat["sentences"] + GENERAL
    for s in rng.sample(pool, k=rng.randint(2, 6)):
        sents.append(_fill(rng, s))
    if rng.random() < 0.05:
        sents.append(rng.choice(ENGLISH))
    if filler and rng.random() < filler_share:
        words = rng.choices(filler, k=rng.randint(5, 15))
        sents.insert(rng.randint(1, len(sents)), " ".join(words).capitalize() + ".")
    tail = sents[1:]
    rng.shuffle(tail)
    return title, " ".join(" ".join(sents[:1] + tail).split())


def swap_word(rng: random.Random, tok: str, mode: str) -> str:
    """Swap look-alike letters of one word into the other script ('partial' or 'all')."""
    pos = [i for i, ch in enumerate(tok) if ch in CYR_TO_LAT or ch in LAT_TO_CYR]
    if not pos:
        return tok
    if mode == "all":
        chosen = pos
    else:
        chosen = [i for i in pos if rng.random() < 0.5] or [rng.choice(pos)]
    chars = list(tok)
    for i in chosen:
        ch = chars[i]
        chars[i] = CYR_TO_LAT.get(ch) or LAT_TO_CYR.get(ch) or ch
    return "".join(chars)


def inject(rng: random.Random, text: str, rate: float, mode: str) -> str:
    """Swap letters in a share ``rate`` of the words; mode 'partial', 'all' or 'mixed'
    (either, per word). Mode 'letters' swaps every look-alike letter with probability ``rate``."""
    if mode == "letters":
        return "".join((CYR_TO_LAT.get(ch) or LAT_TO_CYR.get(ch) or ch) if rng.random() < rate else ch
                       for ch in text)
    parts, pos = [], 0
    for m in WORD_RE.finditer(text):
        parts.append(text[pos:m.start()])
        tok = m.group()
        if rng.random() < rate:
            md = mode if mode != "mixed" else rng.choice(("partial", "all"))
            tok = swap_word(rng, tok, md)
        parts.append(tok)
        pos = m.end()
    parts.append(text[pos:])
    return "".join(parts)


def synthetic_corpus(n: int, rate: float, mode: str, seed: int, filler_share: float = 0.5,
                     test_share: float = 0.2):
    """(train swapped texts, test swapped texts, test original texts)."""
    rng = random.Random(seed)
    halves = _filler_vocab()
    n_test = int(n * test_share)
    train, test, orig = [], [], []
    for i in range(n):
        is_test = i < n_test
        filler = None if halves is None else halves[1 if is_test else 0]
        title, desc = make_listing(rng, filler, filler_share)
        r = rate if rng.random() < 0.8 else 0.0  # some sellers do not swap at all
        for t in (title, desc):
            s = inject(rng, t, r, mode)
            if is_test:
                test.append(s)
                orig.append(t)
            else:
                train.append(s)
    return train, test, orig


def parquet_corpus(path: str, seed: int, test_share: float = 0.2):
    import pandas as pd

    from dupsearch.errors import DataError
    from dupsearch.io import read_table

    df = read_table(path)  # any supported format; clear DataError for a bad or empty file
    need = ["title", "description", "original_title", "original_description"]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise DataError(f"missing columns {missing} (have {list(df.columns)}); the generator "
                        "(`dupsearch generate`) writes them", path=str(path))
    for c in need:  # missing text is empty text, not the string "None"
        df[c] = df[c].fillna("").astype(str)
    # Split by item (cluster_id) where the table has it, so that re-posts of one item do not
    # sit on both sides; else by listing.
    col = next((c for c in ("cluster_id", "item_id") if c in df.columns), None)
    key = df[col].astype(str) if col else pd.Series(range(len(df)), index=df.index).astype(str)
    salt = str(seed).encode()
    is_test = key.map(lambda k: (zlib.crc32(salt + k.encode()) % 1000) < test_share * 1000).to_numpy()
    fix = lambda s: s.fillna("").astype(str).tolist()  # noqa: E731
    train = fix(df.loc[~is_test, "title"]) + fix(df.loc[~is_test, "description"])
    test = fix(df.loc[is_test, "title"]) + fix(df.loc[is_test, "description"])
    orig = fix(df.loc[is_test, "original_title"]) + fix(df.loc[is_test, "original_description"])
    return train, test, orig


# ----------------------------------------------------------------- measure
@dataclass
class Report:
    words: int = 0
    substituted: int = 0
    substituted_whole: int = 0      # substituted words with no letter of the other script left
    restored: int = 0
    restored_whole: int = 0
    changed: int = 0
    changed_right: int = 0
    clean: int = 0
    clean_changed: int = 0
    skipped_texts: int = 0
    skipped_words: int = 0          # differ from the original beyond look-alike swaps
    missed: Counter = field(default_factory=Counter)
    false_changes: Counter = field(default_factory=Counter)

    def numbers(self) -> dict:
        div = lambda a, b: a / b if b else float("nan")  # noqa: E731
        return {
            "words": self.words, "substituted": self.substituted, "clean": self.clean,
            "recall": div(self.restored, self.substituted),
            "recall_whole_word_swaps": div(self.restored_whole, self.substituted_whole),
            "substituted_whole": self.substituted_whole,
            "precision": div(self.changed_right, self.changed),
            "false_change_rate": div(self.clean_changed, self.clean),
            "changed": self.changed, "skipped_texts": self.skipped_texts,
            "skipped_words": self.skipped_words,
        }


def _one_script(tok: str) -> bool:
    has_c = any("\u0400" <= ch <= "\u04ff" for ch in tok)
    has_l = any(ch.isascii() and ch.isalpha() for ch in tok)
    return not (has_c and has_l)


def measure(swapped: list[str], cleaned: list[str], original: list[str]) -> Report:
    rep = Report()
    for s, c, o in zip(swapped, cleaned, original):
        ts, tc, to = WORD_RE.findall(s), WORD_RE.findall(c), WORD_RE.findall(o)
        if not (len(ts) == len(tc) == len(to)):
            rep.skipped_texts += 1
            continue
        for ws, wc, wo in zip(ts, tc, to):
            if not any(ch.isalpha() for ch in wo):
                continue
            if ws.translate(_TO_LAT) != wo.translate(_TO_LAT):
                rep.skipped_words += 1
                continue
            rep.words += 1
            if wc != ws:
                rep.changed += 1
                rep.changed_right += wc == wo
            if ws != wo:
                rep.substituted += 1
                rep.restored += wc == wo
                whole = _one_script(ws)
                rep.substituted_whole += whole
                rep.restored_whole += whole and wc == wo
                if wc != wo:
                    rep.missed[f"{ws} -> {wc} (want {wo})"] += 1
            else:
                rep.clean += 1
                if wc != ws:
                    rep.clean_changed += 1
                    rep.false_changes[f"{ws} -> {wc}"] += 1
    return rep


def run(train: list[str], test: list[str], orig: list[str], config: CleanerConfig) -> dict:
    t0 = time.perf_counter()
    cleaner = HomoglyphCleaner(config).fit(train)
    t1 = time.perf_counter()
    cleaned = cleaner.clean_many(test)
    t2 = time.perf_counter()
    rep = measure(test, cleaned, orig)
    out = rep.numbers()
    out.update(fit_s=round(t1 - t0, 2), clean_s=round(t2 - t1, 2), train_texts=len(train),
               test_texts=len(test), uses_wordfreq=cleaner.uses_wordfreq_,
               top_missed=rep.missed.most_common(15), top_false_changes=rep.false_changes.most_common(15))
    return out


def main(argv: list[str] | None = None) -> int:
    from dupsearch.errors import DupsearchError
    try:
        return _main(argv)
    except DupsearchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def _main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dupsearch.text.homoglyph_bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--listings",
                    help="Parquet with title, description, original_title, original_description")
    ap.add_argument("--n", type=int, default=20_000, help="synthetic listings (without --listings)")
    ap.add_argument("--rate", type=float, default=0.3, help="share of words swapped (synthetic)")
    ap.add_argument("--mode", default="mixed", choices=["partial", "all", "mixed", "letters"],
                    help="swap some look-alike letters of a word, all of them, either, or each "
                         "look-alike letter of the text with probability RATE (synthetic)")
    ap.add_argument("--filler-share", type=float, default=0.5,
                    help="share of synthetic ads padded with wordfreq words unseen in training")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-wordfreq", action="store_true", help="fit the cleaner without wordfreq")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a CleanerConfig field (repeatable)")
    ap.add_argument("--json", help="also write the numbers to this file")
    args = ap.parse_args(argv)

    cfg = CleanerConfig(wordfreq=not args.no_wordfreq)
    for kv in args.set:
        k, _, v = kv.partition("=")
        cur = getattr(cfg, k)
        setattr(cfg, k, type(cur)(v) if cur is not None and not isinstance(cur, bool)
                else (v.lower() in ("1", "true", "yes") if isinstance(cur, bool) else
                      (None if v.lower() == "none" else int(v))))
    if args.listings:
        train, test, orig = parquet_corpus(args.listings, args.seed)
        source = args.listings
    else:
        train, test, orig = synthetic_corpus(args.n, args.rate, args.mode, args.seed, args.filler_share)
        source = f"synthetic n={args.n} rate={args.rate} mode={args.mode} filler={args.filler_share}"
    out = {"source": source, "config": asdict(cfg), **run(train, test, orig, cfg)}
    print(f"{source}")
    print(f"  words {out['words']:,}  substituted {out['substituted']:,}  clean {out['clean']:,}")
    print(f"  recall (substituted words restored exactly): {out['recall']:.4%}"
          f"  [whole-word swaps: {out['recall_whole_word_swaps']:.4%} of {out['substituted_whole']:,}]")
    print(f"  precision (changes that are right):          {out['precision']:.4%}")
    print(f"  false change rate (clean words changed):     {out['false_change_rate']:.4%}")
    print(f"  fit {out['fit_s']} s on {out['train_texts']:,} texts, clean {out['clean_s']} s on "
          f"{out['test_texts']:,} texts, wordfreq {'on' if out['uses_wordfreq'] else 'off'}")
    if out["top_missed"]:
        print("  most missed:", "; ".join(f"{k} x{v}" for k, v in out["top_missed"][:8]))
    if out["top_false_changes"]:
        print("  most false changes:", "; ".join(f"{k} x{v}" for k, v in out["top_false_changes"][:8]))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(out, fh, ensure_ascii=False, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
