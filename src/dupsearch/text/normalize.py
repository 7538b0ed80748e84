"""Text normalization and tokenization shared by every feature family.

All functions work on one string; callers apply them once per *unique* text
(listings repeat across pairs), never once per pair.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import numpy as np

# Words are runs of letters/digits; a model code may contain inner '-', '/' or '.'
# ("dvd-3800bdci", "mb13-pnk-see-v2", "2.26ghz") and is kept whole.
TOKEN_RE = re.compile(r"[^\W_]+(?:[-/.][^\W_]+)*", re.UNICODE)
_SPACE_RE = re.compile(r"\s+")
_SEPARATORS_RE = re.compile(r"[-/.]")
_DIGIT_RE = re.compile(r"\d")
_ALPHA_RE = re.compile(r"[^\W\d_]")
_NUMBER_RE = re.compile(r"^\d+(?:[.,]\d+)?$")
# Unicode format characters (category Cf: zero-width spaces and joiners, bidi marks and
# overrides, soft hyphen, BOM, tag characters). Invisible to a reader, so "iPh<U+200B>one" must
# compare equal to "iPhone". Written out as ranges (Unicode 14, Python 3.11; a test checks the
# class against unicodedata) because scanning all code points at import would cost 0.2 s.
FORMAT_CHARS_RE = re.compile(
    "[\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u180e\u200b-\u200f"
    "\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd"
    "\U00013430-\U00013438\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001"
    "\U000e0020-\U000e007f]")

# Units that make "<number><unit>" a size/spec token (English and Russian).
UNITS = frozenset(
    """
    b kb mb gb tb pb bit bps kbps mbps gbps hz khz mhz ghz w kw mw v mv a mah wh kwh
    mm cm m km in inch inches ft ' " g kg mg lb lbs oz ml l gal mp px dpi ppm rpm x p k
    ms s sec min h db
    мм см м км г кг мг мл л гб мб тб кб гц мгц ггц вт квт в а мач дюйм дюйма дюймов шт мп
    """.split()
)

COLOURS = frozenset(
    """
    black white silver gray grey red blue green yellow orange pink purple violet brown gold
    beige navy teal cyan magenta graphite titanium bronze ivory cream khaki maroon turquoise
    rose charcoal chrome transparent clear
    черный чёрный белый серебристый серебряный серый красный синий голубой зеленый зелёный
    желтый жёлтый оранжевый розовый фиолетовый коричневый золотой золотистый бежевый
    бирюзовый бордовый графитовый хромированный прозрачный
    """.split()
)

NEGATIONS = frozenset(
    """
    no not without non none excluding except only
    не без нет кроме только ни
    """.split()
)


def strip_format_chars(text: str) -> str:
    """``text`` without Unicode format characters (zero-width, bidi controls, soft hyphen)."""
    return FORMAT_CHARS_RE.sub("", text)


def normalize_text(text: object) -> str:
    """Drop format characters, NFKC-fold, lowercase, unify 'ё', collapse whitespace. None/NaN -> ''."""
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return ""
    s = unicodedata.normalize("NFKC", FORMAT_CHARS_RE.sub("", str(text))).lower().replace("ё", "е")
    return _SPACE_RE.sub(" ", s).strip()


def tokenize(text: str) -> list[str]:
    """Tokens of normalized text: words, numbers and whole model codes."""
    return TOKEN_RE.findall(text)


def compact(token: str) -> str:
    """A model code without its separators, so 'dvd-3800bdci' == 'dvd3800bdci'."""
    return _SEPARATORS_RE.sub("", token)


def is_number(token: str) -> bool:
    return bool(_NUMBER_RE.match(token))


def is_model_code(token: str) -> bool:
    """Letters and digits mixed (or a long digit run): how product codes look."""
    c = compact(token)
    has_digit = bool(_DIGIT_RE.search(c))
    if not has_digit:
        return False
    if _ALPHA_RE.search(c):
        # "16gb", "2.26ghz", "1080p" are sizes, not codes.
        return not is_size(token) and len(c) >= 3
    return len(c) >= 5  # part numbers such as 388504


def is_size(token: str) -> bool:
    """A number glued to a unit: '16gb', '2.26ghz', '55"', '500мл'."""
    m = re.match(r"^(\d+(?:[.,]\d+)?)([^\W\d_]+|['\"])$", token)
    return bool(m) and m.group(2) in UNITS


@lru_cache(maxsize=1 << 20)
def _token_class(t: str) -> tuple[str, str | None, str | None, str | None]:
    """(kind, number, size, code) of one token; cached: tokens repeat across listings."""
    if is_number(t):
        return "number", t.replace(",", "."), None, t if is_model_code(t) else None
    if is_size(t):
        return "size", re.match(r"^\d+(?:[.,]\d+)?", t).group(0).replace(",", "."), t.replace(",", "."), None
    if is_model_code(t):
        return "code", None, None, compact(t)
    return "", None, None, None


def split_tokens(tokens: list[str]) -> dict[str, list[str]]:
    """Distinguishing token classes used by the anti-word and code features."""
    numbers, codes, sizes, colours, negations = [], [], [], [], []
    for i, t in enumerate(tokens):
        kind, number, size, code = _token_class(t)
        if kind == "number":
            # "16 gb" written apart is a size as well.
            nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
            if nxt in UNITS:
                sizes.append(number + nxt)
            numbers.append(number)
            if code is not None:  # long digit runs are part numbers ("388504") as well
                codes.append(code)
        elif kind == "size":
            sizes.append(size)
            numbers.append(number)
        elif kind == "code":
            codes.append(code)
        if t in COLOURS:
            colours.append(t)
        elif t in NEGATIONS:
            negations.append(t)
    return {"number": numbers, "code": codes, "size": sizes, "colour": colours,
            "negation": negations}
