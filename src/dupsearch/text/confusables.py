"""Look-alike Cyrillic and Latin letters (homoglyphs).

Marketplace spam filters are dodged by swapping letters between alphabets
("Ноутбук" written with a Latin 'o'); the generator injects such swaps and the
cleaner undoes them. One table serves both, so they always agree.
"""

from __future__ import annotations

# Cyrillic letter -> Latin letter that renders (nearly) the same.
CYR_TO_LAT: dict[str, str] = {
    "а": "a", "в": "b", "е": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c",
    "т": "t", "у": "y", "х": "x", "і": "i", "ј": "j", "ѕ": "s",
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C",
    "Т": "T", "У": "Y", "Х": "X", "І": "I", "Ј": "J", "Ѕ": "S",
}
# Latin letter -> Cyrillic letter. Where several Cyrillic letters map to one Latin
# letter, the common Russian one wins.
LAT_TO_CYR: dict[str, str] = {lat: cyr for cyr, lat in CYR_TO_LAT.items()
                              if cyr not in "іјѕІЈЅ"}
LAT_TO_CYR.update({"i": "і", "I": "І"})  # no Russian look-alike; Ukrainian 'і' is used in practice

CYRILLIC_RANGE = ("\u0400", "\u04ff")


def is_cyrillic(ch: str) -> bool:
    return CYRILLIC_RANGE[0] <= ch <= CYRILLIC_RANGE[1]


def is_latin(ch: str) -> bool:
    return ("a" <= ch <= "z") or ("A" <= ch <= "Z")
