"""SMS segment counting (GSM-7 and UCS-2) and the bodies written in Spanish and English: measured, not
assumed. The figures asserted here are the ones reported for issue 5."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from yaguar.alerts.messages import AlertFacts, render, reply
from yaguar.alerts.segments import SegmentCount, count_segments, fold_to_gsm7, is_gsm7

LINK = "https://yaguar.example.org/e/123456"


def facts(species: str | None, camera: str, kind: str = "first", category: str = "animal") -> AlertFacts:
    at = datetime(2026, 11, 26, 7, 14, tzinfo=UTC)
    return AlertFacts(
        kind=kind, category=category, species=species, count=2, confidence=0.87, camera=camera,
        first_seen_at=at, last_seen_at=at, utc_offset_min=-300, event_id=123456, event_count=14,
        ack_code="3FQ",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        ("", "GSM-7", 0, 0),
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("€" * 80, "GSM-7", 160, 1),  # extension characters take two septets
        ("[" * 81, "GSM-7", 162, 2),
        ("ñandú", "UCS-2", 5, 1),  # ú is not GSM-7 (ñ is)
        ("é" * 160, "GSM-7", 160, 1),
        ("á" * 70, "UCS-2", 70, 1),
        ("á" * 71, "UCS-2", 71, 2),
        ("á" * 135, "UCS-2", 135, 3),
        ("🐆" * 35, "UCS-2", 70, 1),  # outside the BMP: two UTF-16 units each
    ],
)
def test_count_segments(text: str, encoding: str, units: int, segments: int) -> None:
    assert count_segments(text) == SegmentCount(encoding, units, segments)


def test_folding_keeps_gsm7_letters_and_drops_other_accents() -> None:
    assert (
        fold_to_gsm7("pecarí ñeque chigüiro páramo Río “Claro” – ok")
        == 'pecari ñeque chigüiro paramo Rio "Claro" - ok'
    )
    assert fold_to_gsm7("漢") == "?"


@given(st.text(max_size=200))
def test_folded_text_is_always_gsm7_and_same_length(text: str) -> None:
    folded = fold_to_gsm7(text)
    assert is_gsm7(folded)
    assert len(folded) == len(text)


# (species, camera, kind, language): (encoding, units, segments) with accents folded | kept (unicode).
MEASURED = {
    ("Panthera onca", "Sendero Norte", "first", "es"): (("GSM-7", 96, 1), ("GSM-7", 96, 1)),
    ("Panthera onca", "Sendero Norte", "first", "en"): (("GSM-7", 93, 1), ("GSM-7", 93, 1)),
    ("Panthera onca", "Sendero Norte", "summary", "es"): (("GSM-7", 110, 1), ("UCS-2", 110, 2)),
    ("Panthera onca", "Sendero Norte", "summary", "en"): (("GSM-7", 108, 1), ("GSM-7", 108, 1)),
    ("Tayassu pecari", "Quebrada Río Claro", "first", "es"): (("GSM-7", 102, 1), ("GSM-7", 92, 1)),
    ("Tayassu pecari", "Quebrada Río Claro", "summary", "es"): (("GSM-7", 116, 1), ("UCS-2", 116, 2)),
    ("Herpailurus yagouaroundi", "Cámara 12", "first", "es"): (("GSM-7", 96, 1), ("UCS-2", 96, 2)),
    (None, "Puente", "first", "es"): (("GSM-7", 90, 1), ("GSM-7", 90, 1)),
    (None, "Puente", "summary", "es"): (("GSM-7", 104, 1), ("UCS-2", 104, 2)),
}


@pytest.mark.parametrize("key", list(MEASURED))
def test_measured_body_segments(key: tuple[str | None, str, str, str]) -> None:
    species, camera, kind, lang = key
    message = facts(species, camera, kind, category="animal" if species else "person")
    folded, kept = render(message, lang, LINK, unicode=False), render(message, lang, LINK, unicode=True)
    got = tuple((c.encoding, c.units, c.segments) for c in (count_segments(folded), count_segments(kept)))
    assert got == MEASURED[key], (folded, kept)
    assert LINK in folded and folded.endswith("OK 3FQ")


def test_bodies_read_right() -> None:
    es = render(facts("Tayassu pecari", "Quebrada Río Claro"), "es", LINK)
    assert es == f"Yaguar: cafuche x2 en Quebrada Rio Claro 02:14 87% {LINK} Responda OK 3FQ"
    en = render(facts("Tayassu pecari", "Quebrada Río Claro", "summary"), "en", LINK)
    what = "14 more white-lipped peccary at Quebrada Rio Claro 02:14-02:14 max 87%"
    assert en == f"Yaguar: {what} {LINK} Reply OK 3FQ"
    assert reply("ack", "es", "3FQ") == "Alerta 3FQ confirmada. Gracias."


def test_long_names_are_shortened_to_one_segment() -> None:
    body = render(facts("Bradypus variegatus", "Cámara del sendero que baja al río grande " * 3), "es", LINK)
    assert count_segments(body).segments == 1
    assert body.startswith("Yaguar: perezoso de tres dedos x2 en Camara del sendero ")
