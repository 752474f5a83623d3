"""Message bodies in Spanish and English, kept to one SMS segment where they can be.

A first alert: what, how many, which camera, local time, confidence, a link, and how to acknowledge::

    Yaguar: jaguar x2 en Sendero Norte 02:14 92% http://st.lan/e/123 Responda OK 3F

A summary tells what followed during the cooldown. Names are shortened step by step until the body
fits one segment; accents outside GSM-7 are folded (pecarí -> pecari) unless Unicode is asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from yaguar.taxonomy import common_name

from .segments import count_segments, first_in_one_segment, fit, fold_to_gsm7

CATEGORY_NAMES = {
    "es": {"person": "persona", "vehicle": "vehículo", "animal": "animal"},
    "en": {"person": "person", "vehicle": "vehicle", "animal": "animal"},
}
TEMPLATES = {
    "es": {
        "first": "Yaguar: {what}{many} en {camera} {time} {conf}% {link} Responda OK {code}",
        "summary": "Yaguar: {n} más {what} en {camera} {time}-{end} máx {conf}% {link} Responda OK {code}",
        "backlog": "Yaguar: {n} avisos atrasados sin señal {time}-{end}: {what}. {link} Responda OK {code}",
        "test": "Yaguar: mensaje de prueba de {station} por {channel}, {time} UTC. No responda.",
        "ack": "Alerta {code} confirmada. Gracias.",
        "unknown_code": "No hay alerta abierta con el código {code}.",
    },
    "en": {
        "first": "Yaguar: {what}{many} at {camera} {time} {conf}% {link} Reply OK {code}",
        "summary": "Yaguar: {n} more {what} at {camera} {time}-{end} max {conf}% {link} Reply OK {code}",
        "backlog": "Yaguar: {n} delayed alerts, no signal {time}-{end}: {what}. {link} Reply OK {code}",
        "test": "Yaguar: test message from {station} via {channel}, {time} UTC. No reply needed.",
        "ack": "Alert {code} acknowledged. Thank you.",
        "unknown_code": "No open alert has the code {code}.",
    },
}
# (species or category name, camera name) lengths tried in turn until the body is one segment.
_NAME_LIMITS = ((40, 30), (24, 18), (16, 12), (10, 8))


@dataclass(frozen=True)
class AlertFacts:
    """What a message says about an alert; taken from the alert row when the message is written."""

    kind: str  # first | summary
    category: str
    species: str | None
    count: int
    confidence: float
    camera: str
    first_seen_at: datetime
    last_seen_at: datetime
    utc_offset_min: int
    event_id: int
    event_count: int
    ack_code: str


def subject(facts: AlertFacts, lang: str) -> str:
    if facts.species:
        return common_name(facts.species, lang)
    return CATEGORY_NAMES[lang].get(facts.category, facts.category)


def local_hhmm(when: datetime, utc_offset_min: int) -> str:
    return (when + timedelta(minutes=utc_offset_min)).strftime("%H:%M")


def render(facts: AlertFacts, lang: str, link: str, unicode: bool = False) -> str:
    """The body for one recipient: one segment when the names can be shortened enough; when no
    shortening gets there (a UCS-2 body cannot: the link alone takes half a segment), the full names."""
    bodies = (
        TEMPLATES[lang][facts.kind].format(
            what=fit(subject(facts, lang), what_limit),
            many=f" x{facts.count}" if facts.count > 1 else "",
            n=max(facts.event_count, 1),
            camera=fit(facts.camera, camera_limit),
            time=local_hhmm(facts.first_seen_at, facts.utc_offset_min),
            end=local_hhmm(facts.last_seen_at, facts.utc_offset_min),
            conf=round(facts.confidence * 100),
            link=link,
            code=facts.ack_code,
        )
        for what_limit, camera_limit in _NAME_LIMITS
    )
    return first_in_one_segment(bodies, unicode)


def render_backlog(
    counts: dict[str, int],
    lang: str,
    first: datetime,
    last: datetime,
    utc_offset_min: int,
    link: str,
    code: str,
    unicode: bool = False,
) -> str:
    """One message for many stale ones: how many, of what (most frequent first), when."""
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    body = ""
    for limit in (len(ranked), 3, 2, 1):
        what = ", ".join(f"{n} {name}" for name, n in ranked[:limit])
        if limit < len(ranked):
            what += ", ..."
        body = TEMPLATES[lang]["backlog"].format(
            n=sum(counts.values()),
            time=local_hhmm(first, utc_offset_min),
            end=local_hhmm(last, utc_offset_min),
            what=fit(what, 60),
            link=link,
            code=code,
        )
        if not unicode:
            body = fold_to_gsm7(body)
        if count_segments(body).segments <= 1:
            return body
    return body


def render_test(lang: str, station: str, channel: str, when: datetime) -> str:
    return fold_to_gsm7(
        TEMPLATES[lang]["test"].format(station=fit(station, 30), channel=channel, time=when.strftime("%H:%M"))
    )


def reply(kind: str, lang: str, code: str, unicode: bool = False) -> str:
    text = TEMPLATES[lang][kind].format(code=code)
    return text if unicode else fold_to_gsm7(text)
