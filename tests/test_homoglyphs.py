"""dupsearch.text.homoglyphs and dupsearch.text.charlm: homoglyph cleaning and the char LM."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from dupsearch.text.charlm import BOS, EOS, CharLM
from dupsearch.text.confusables import CYR_TO_LAT, LAT_TO_CYR
from dupsearch.text.homoglyph_bench import inject, measure, swap_word, synthetic_corpus
from dupsearch.text.homoglyphs import (
    CleanStats,
    HomoglyphCleaner,
    mixed_script_share,
    script_counts,
)

# Russian ads with Latin brand names and model codes: the training corpus of these tests.
ADS = [
    "Продаю ноутбук Lenovo IdeaPad 3 в отличном состоянии.",
    "Продаю смартфон Apple iPhone 13 Pro, память 256 ГБ, без царапин.",
    "Samsung Galaxy S21 в хорошем состоянии, есть коробка и чек.",
    "Продам автомобиль BMW X5 2015 года, пробег 120 000 км.",
    "Toyota Camry, один владелец, все ТО у дилера.",
    "Видеокарта MSI RTX3060 Ventus, не майнила, с гарантией.",
    "Кот британский, привит, к лотку приучен.",
    "Котенок мейн-кун ищет дом, отдам в добрые руки.",
    "Торг уместен, обмен не предлагать.",
    "Самовывоз от метро, могу привезти к вам домой.",
    "Звоните в любое время, отвечу на все вопросы.",
    "Куртка Nike, размер M, надевал пару раз.",
    "Кроссовки Adidas Superstar, цвет белый, размер 42.",
    "Стиральная машина Bosch Serie 4 с документами и чеком.",
    "Холодильник Атлант в рабочем состоянии, самовывоз с третьего этажа.",
    "Mercedes-Benz C 200 в идеальном состоянии, не бит, не крашен.",
    "Диван IKEA Kallax, как новый, доставка по городу.",
    "Кофемашина DeLonghi Magnifica S, чистая, все работает.",
    "Ваз 2107 на ходу, цена окончательная.",
    "Монитор Samsung Odyssey G5, 144 Гц, коробка на месте.",
    "Продаю велосипед, рама алюминиевая, тормоза дисковые.",
    "Цена указана за комплект, торг у капота.",
    "Смартфон Xiaomi Redmi Note 10 Pro, экран без царапин, в чехле.",
    "Kia Rio 2018 года, кондиционер работает, зимняя резина в подарок.",
    "Пылесос Dyson V11 с насадками, аккумулятор держит долго.",
    "Собака ищет хозяина, ласковая, с документами.",
    "Процессор AMD Ryzen 5 5600X с кулером, не разгонялся.",
    "Платье Zara, размер S, цвет красный, новое с биркой.",
    "Отправлю почтой по всей России, оплата на карту.",
    "Метро рядом, встреча в центре города.",
    "Платье H&M, размер S, как новое.",
]


def training_corpus(copies: int = 8, rate: float = 0.3, seed: int = 0) -> list[str]:
    """The ads twice as written, and ``copies`` times with letters swapped in ``rate`` of words."""
    rng = random.Random(seed)
    out = list(ADS) * 2
    for _ in range(copies):
        out += [inject(rng, t, rate, "mixed") for t in ADS]
    return out


@pytest.fixture(scope="module")
def cleaner() -> HomoglyphCleaner:
    # Without wordfreq, so that the answers do not depend on what is installed.
    return HomoglyphCleaner(wordfreq=False).fit(training_corpus())


# --------------------------------------------------------------------------- mixed words


@pytest.mark.parametrize("swapped, clean", [
    ("Прoдаю нoутбук Lenovo", "Продаю ноутбук Lenovo"),        # Latin o in Russian words
    ("мaшинa", "машина"),
    ("Цeна окончательная", "Цена окончательная"),
    ("Sаmsung Galaxy S21", "Samsung Galaxy S21"),              # Cyrillic а in a Latin brand
    ("iPhоne 13 Pro", "iPhone 13 Pro"),
    ("Lеnоvо IdeaPad 3", "Lenovo IdeaPad 3"),
])
def test_mixed_words_are_fixed_both_directions(cleaner, swapped, clean):
    assert cleaner.clean(swapped) == clean


def test_case_is_preserved(cleaner):
    assert cleaner.clean("ПРOДАЮ НOУТБУК") == "ПРОДАЮ НОУТБУК"
    assert cleaner.clean("Мoскве и мOСКВЕ") == "Москве и мОСКВЕ"
    assert cleaner.clean("SаMSUNG") == "SaMSUNG"       # a lowercase twin stays lowercase
    assert cleaner.clean("SAMSUNG".replace("A", "А")) == "SAMSUNG"


def test_all_caps_words(cleaner):
    assert cleaner.clean("BМW X5") == "BMW X5"        # Cyrillic М in BMW
    assert cleaner.clean("ВAЗ 2107") == "ВАЗ 2107"    # Latin A in ВАЗ
    assert cleaner.clean("ВАЗ 2107") == "ВАЗ 2107"
    assert cleaner.clean("BMW") == "BMW"


@pytest.mark.parametrize("text", [
    "Продаю iPhone 13 Pro, BMW X5, Galaxy S21, видеокарта RTX3060",
    "Samsung Galaxy S21 в хорошем состоянии",
    "Toyota Camry и Kia Rio",
    "Mercedes-Benz C 200 в идеальном состоянии",
    "Куртка Nike, размер M",
    "Платье H&M, размер S",
    "Xiaomi Mi",
    "Процессор AMD Ryzen 5 5600X",
])
def test_latin_brands_and_model_codes_are_left_alone(cleaner, text):
    assert cleaner.clean(text) == text


def test_model_codes_with_swapped_letters(cleaner):
    assert cleaner.clean("Видеокарта RТX3060") == "Видеокарта RTX3060"   # Cyrillic Т, forced by R
    assert cleaner.clean("Продаю BMW Х5") == "Продаю BMW X5"             # whole code in Cyrillic


def test_digits_and_punctuation_are_kept_exactly(cleaner):
    assert cleaner.clean("Цeна: 15 000 рyб.!!! (тoрг)") == "Цена: 15 000 руб.!!! (торг)"
    text = "  №5,  12/34 —  «кот»\n\t… 100% !"
    assert cleaner.clean(text) == text


def test_empty_and_missing_text(cleaner):
    assert cleaner.clean("") == ""
    assert cleaner.clean(None) == ""
    assert cleaner.clean(float("nan")) == ""
    assert cleaner.clean_many(["", None]) == ["", ""]


# ------------------------------------------------------------- look-alike-only words


def test_word_of_look_alike_letters_is_decided_by_the_language_model(cleaner):
    # "kот" can be written as Cyrillic "кот" and Latin "kot": the word model decides.
    assert cleaner.clean("kот британский") == "кот британский"
    assert cleaner.clean("Koт британский") == "Кот британский"
    # "Тoyota": Т and o both have twins; Toyota is the word the corpus knows.
    assert cleaner.clean("Тoyota Camry") == "Toyota Camry"
    assert cleaner.clean("Toyota Саmrу") == "Toyota Camry"
    assert cleaner.clean("mетро рядом") == "метро рядом"


def test_whole_word_swaps_in_russian_context(cleaner):
    assert cleaner.clean("Продаю машину b отличном состоянии") == "Продаю машину в отличном состоянии"
    assert cleaner.clean("Стиральная машина c документами") == "Стиральная машина с документами"
    assert cleaner.clean("Встреча y метро") == "Встреча у метро"


def test_russian_words_of_look_alike_letters_are_left_alone(cleaner):
    for text in ("Торг у капота", "Отдам в добрые руки", "Метро рядом", "Кот британский, привит",
                 "Самовывоз с третьего этажа", "СССР"):
        assert cleaner.clean(text) == text


def test_clean_with_stats_counts_words(cleaner):
    text, stats = cleaner.clean_with_stats("Прoдаю машину b отличном состоянии, iPhone 13")
    assert text == "Продаю машину в отличном состоянии, iPhone 13"
    assert stats == CleanStats(words=6, mixed=1, changed=2, changed_mixed=1, changed_whole=1)
    texts, total = cleaner.clean_many_with_stats(["Прoдаю", "", "BМW и ВАЗ"])
    assert texts == ["Продаю", "", "BMW и ВАЗ"]
    assert total == CleanStats(words=4, mixed=2, changed=2, changed_mixed=2, changed_whole=0)


def test_clean_many_matches_clean(cleaner):
    texts = ["Прoдаю нoутбук", "Прoдаю нoутбук", "BМW X5", "", "Торг у капота"]
    assert cleaner.clean_many(texts) == [cleaner.clean(t) for t in texts]


def test_unfitted_cleaner_fixes_forced_words_and_majorities():
    c = HomoglyphCleaner(wordfreq=False)
    assert c.clean("мaшинa BМW") == "машина BMW"      # writable in one script only
    assert c.clean("кoт") == "кот"                    # 2 Cyrillic letters against 1 Latin
    assert c.clean("c b") == "c b"                    # whole words need a fitted model


def test_save_load_gives_identical_output(cleaner, tmp_path):
    cleaner.save(tmp_path / "hg")
    loaded = HomoglyphCleaner.load(tmp_path / "hg")
    texts = training_corpus(copies=2, seed=7) + ["Продаю машину b отличном состоянии", "Xiaomi Mi",
                                                 "kот британский", "Mercedes-Benz C 200"]
    assert loaded.clean_many(texts) == cleaner.clean_many(texts)
    assert not [p for p in (tmp_path / "hg").iterdir() if p.name.endswith(".tmp")]


def test_wordfreq_backed_cleaner_if_installed(tmp_path):
    pytest.importorskip("wordfreq")
    c = HomoglyphCleaner().fit(training_corpus())
    assert c.uses_wordfreq_
    assert c.clean("Продаю машину b отличном состоянии") == "Продаю машину в отличном состоянии"
    assert c.clean("Продаю iPhone 13 Pro, BMW X5") == "Продаю iPhone 13 Pro, BMW X5"
    c.save(tmp_path / "wf")
    # The wordfreq part is saved with the model: loading does not need the package.
    assert HomoglyphCleaner.load(tmp_path / "wf").clean("Meтро b центре") == c.clean("Meтро b центре")


def test_held_out_restoration_on_a_small_synthetic_corpus():
    train, test, orig = synthetic_corpus(2500, rate=0.3, mode="mixed", seed=1, filler_share=0.0)
    c = HomoglyphCleaner(wordfreq=False).fit(train)
    rep = measure(test, c.clean_many(test), orig).numbers()
    assert rep["substituted"] > 1000
    assert rep["recall"] >= 0.99
    assert rep["false_change_rate"] <= 0.005


# --------------------------------------------------------------------- mixed-script share


def test_mixed_script_share_by_hand():
    assert mixed_script_share("Прoдаю ноутбук") == 0.5
    assert mixed_script_share("Продаю ноутбук Lenovo") == 0.0
    assert mixed_script_share("BМW X5 и ВAЗ 2107") == pytest.approx(2 / 4)   # 2107 is no word
    assert mixed_script_share("") == 0.0
    assert mixed_script_share(None) == 0.0
    assert mixed_script_share("123 456") == 0.0
    assert script_counts("Прoдаю, ноутбук! 15") == (2, 1)


# --------------------------------------------------------------------------- the swap helpers


def test_swap_word_uses_the_shared_table():
    rng = random.Random(0)
    w = swap_word(rng, "корова", "all")
    assert w == "".join(CYR_TO_LAT.get(ch, ch) for ch in "корова") == "kopoba"
    assert swap_word(rng, "BMW", "all") == "".join(LAT_TO_CYR.get(ch, ch) for ch in "BMW")
    assert swap_word(rng, "шлю", "partial") == "шлю"   # no letter has a twin


# ------------------------------------------------------------------------------- CharLM

RUSSIAN = ("кот кошка котенок собака собаки машина машины мама мыла раму дом дома домик "
           "работа работает работают продаю продам ноутбук ноутбуки телефон телефоны "
           "хороший хорошее хорошая состояние состоянии отличное отличном новый новая").split()


@pytest.fixture(scope="module")
def lm() -> CharLM:
    return CharLM(order=4).fit(RUSSIAN * 3)


def test_charlm_real_word_beats_a_scrambled_one(lm):
    for word, scrambled in [("машина", "мшанаи"), ("кошка", "кшока"), ("телефон", "тфоелне"),
                            ("работает", "ратобает")]:
        assert lm.logprob(word) > lm.logprob(scrambled) + 3
    # an unseen but well-formed word beats letters the corpus never had
    assert lm.logprob("котики") > lm.logprob("qwerty")


def test_charlm_distributions_sum_to_one(lm):
    chars = sorted({c for w in RUSSIAN for c in w}) + [EOS, "Z"]  # 'Z': an unknown character
    for h in ["", BOS, BOS + "ко", "аши", "зз", "ма"]:
        total = sum(math.exp(lm._logp(h[-(lm.order - 1):] if h else "", c)) for c in chars)
        assert total == pytest.approx(1.0, abs=1e-9)


def test_charlm_logprob_of_a_word_is_the_sum_over_its_characters(lm):
    w = "кот"
    s = BOS + w + EOS
    by_hand = sum(lm._logp(s[max(0, i - lm.order + 1):i], s[i]) for i in range(1, len(s)))
    assert lm.logprob(w) == pytest.approx(by_hand)
    assert lm.logprob("КОТ") == lm.logprob("кот")          # lowercased by default
    assert lm.perplexity("кот") == pytest.approx(math.exp(-lm.logprob("кот") / 4))


def test_charlm_fit_on_texts_and_counts_agree():
    a = CharLM(order=3).fit(["кот и кошка", "кот"])
    b = CharLM(order=3).fit({"кот": 2, "и": 1, "кошка": 1})
    c = CharLM(order=3).fit(["кот", "и", "кошка", "zzz"], weights=[2, 1, 1, 0])
    for w in ["кот", "кошка", "и", "кит"]:
        assert a.logprob(w) == pytest.approx(b.logprob(w))
        assert a.logprob(w) == pytest.approx(c.logprob(w))


def test_charlm_many_matches_single(lm):
    words = ["кот", "машина", "кот", "xyz"]
    assert np.allclose(lm.logprob_many(words), [lm.logprob(w) for w in words])


def test_charlm_save_load_roundtrip(lm, tmp_path):
    path = tmp_path / "sub" / "lm.npz"
    lm.save(path)
    assert [p.name for p in path.parent.iterdir()] == ["lm.npz"]   # no temporary file left
    back = CharLM.load(path)
    for w in ["кот", "машина", "qq", ""]:
        assert back.logprob(w) == lm.logprob(w)


def test_charlm_unfitted_raises():
    with pytest.raises(RuntimeError):
        CharLM().logprob("кот")


def test_pickled_cleaner_cleans_the_same(cleaner):
    import pickle

    texts = ["Продаю машину b отличном состоянии", "kот британский", "BМW X5"]
    expected = cleaner.clean_many(texts)
    back = pickle.loads(pickle.dumps(cleaner))
    assert back.clean_many(texts) == expected


def test_other_scripts_and_the_string_none(cleaner):
    assert cleaner.clean("Ωμέγα и кoт") == "Ωμέγα и кот"
    _, stats = cleaner.clean_with_stats("Ωμέγα и кoт")
    assert stats.words == 3
    assert cleaner.clean_many([None, "None", None]) == ["", "None", ""]


def test_bench_reads_a_listings_parquet(tmp_path):
    import json

    import pandas as pd

    from dupsearch.text.homoglyph_bench import main

    rng = random.Random(3)
    rows = []
    for i in range(400):
        t, d = ADS[i % len(ADS)], ADS[(i * 7 + 3) % len(ADS)]
        rows.append({"item_id": f"i{i}", "title": inject(rng, t, 0.3, "mixed"),
                     "description": inject(rng, d, 0.3, "mixed"), "original_title": t,
                     "original_description": d})
    pd.DataFrame(rows).to_parquet(tmp_path / "listings.parquet")
    out = tmp_path / "bench.json"
    assert main(["--listings", str(tmp_path / "listings.parquet"), "--no-wordfreq",
                 "--json", str(out)]) == 0
    rep = json.loads(out.read_text(encoding="utf-8"))
    assert rep["substituted"] > 100 and rep["skipped_texts"] == 0
    # a few hundred ads are little to learn from: this checks the plumbing, not the targets
    assert rep["recall"] >= 0.95 and rep["false_change_rate"] <= 0.01
