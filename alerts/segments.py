"""SMS segment arithmetic (3GPP TS 23.038): what a body costs, and how to keep it to one segment.

A body made only of GSM-7 characters costs one segment up to 160 septets (153 each when split; the
extension characters such as ``€ [ ] { }`` take two septets). One character outside GSM-7 turns the
whole body into UCS-2: 70 UTF-16 code units in one segment, 67 each when split. Spanish needs care:
``é ñ ü`` are GSM-7 but ``á í ó ú`` are not, so "pecarí" alone makes a message UCS-2.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

GSM7_SINGLE, GSM7_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67


@dataclass(frozen=True)
class SegmentCount:
    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    segments: int


def is_gsm7(text: str) -> bool:
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def count_segments(text: str) -> SegmentCount:
    if is_gsm7(text):
        units = sum(2 if ch in GSM7_EXTENSION else 1 for ch in text)
        single, multi, encoding = GSM7_SINGLE, GSM7_MULTI, "GSM-7"
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, multi, encoding = UCS2_SINGLE, UCS2_MULTI, "UCS-2"
    if units <= single:
        return SegmentCount(encoding, units, 1 if units else 0)
    return SegmentCount(encoding, units, -(-units // multi))


def first_in_one_segment(bodies: Iterable[str], unicode: bool) -> str:
    """The first of ``bodies`` (each with its names shorter than the one before) that fits one segment,
    folded to GSM-7 unless ``unicode``; when none does, the first, with the names in full."""
    texts = [body if unicode else fold_to_gsm7(body) for body in bodies]
    return next((text for text in texts if count_segments(text).segments <= 1), texts[0])


def fold_to_gsm7(text: str) -> str:
    """Replace each character outside GSM-7 by its unaccented letter (í -> i, ó -> o), or by '?' when it
    has none. Characters that are already GSM-7 (é, ñ, ü) are kept."""
    out = []
    for ch in text:
        if ch in GSM7_BASIC or ch in GSM7_EXTENSION:
            out.append(ch)
            continue
        base = "".join(c for c in unicodedata.normalize("NFD", ch) if not unicodedata.combining(c))
        out.append(base if base and is_gsm7(base) else _SUBSTITUTES.get(ch, "?"))
    return "".join(out)


# Typographic characters a template or a camera name may carry, and their plain forms.
_SUBSTITUTES = {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-"}


def fit(text: str, limit: int) -> str:
    """Shorten text to at most ``limit`` characters, marking the cut with '.'."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)].rstrip() + "."
