"""Bodies of device alerts in Spanish and English, one SMS segment where they can be::

Yaguar: camara Sendero Norte sin senal desde 02:14 (35 min). http://st.lan/cameras/cam-01
Yaguar: camera Sendero Norte is back at 03:02 after 48 min offline.
Yaguar: 50 camaras sin senal desde 02:14: cam-01, cam-02, cam-03 y 47 mas. http://st.lan/cameras
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from .segments import first_in_one_segment, fit

TEMPLATES = {
    "es": {
        "offline": "Yaguar: cámara {camera} sin señal desde {time} ({duration}). {link}",
        "back": "Yaguar: cámara {camera} volvió a dar señal a las {time} tras {duration} sin señal.",
        "battery": "Yaguar: batería baja en {camera}: {value:.1f} V. {link}",
        "spool": "Yaguar: se llena la cola de {camera}: {value:.0f} fotos sin enviar. {link}",
        "disk": "Yaguar: poco disco en {camera}: {value} libres. {link}",
        "clock": "Yaguar: el reloj de {camera} está desfasado ({value}). {link}",
        "storm_offline": "Yaguar: {n} cámaras sin señal desde {time}: {cameras}. {link}",
        "storm_back": "Yaguar: {n} cámaras volvieron a dar señal a las {time}: {cameras}.",
        "more": "{shown} y {rest} más",
        "unsynced": "sin sincronizar",
    },
    "en": {
        "offline": "Yaguar: camera {camera} silent since {time} ({duration}). {link}",
        "back": "Yaguar: camera {camera} is back at {time} after {duration} offline.",
        "battery": "Yaguar: battery low on {camera}: {value:.1f} V. {link}",
        "spool": "Yaguar: {camera}'s spool is filling: {value:.0f} frames not sent. {link}",
        "disk": "Yaguar: disk low on {camera}: {value} free. {link}",
        "clock": "Yaguar: {camera}'s clock is off ({value}). {link}",
        "storm_offline": "Yaguar: {n} cameras silent since {time}: {cameras}. {link}",
        "storm_back": "Yaguar: {n} cameras are back at {time}: {cameras}.",
        "more": "{shown} and {rest} more",
        "unsynced": "not synced",
    },
}
_CAMERA_LIMITS = (40, 24, 14, 10)


@dataclass(frozen=True)
class DeviceNotice:
    """What one device message says."""

    kind: str  # offline, back, battery, spool, disk, clock, storm_offline, storm_back
    cameras: list[str]  # names; one unless a storm
    since: datetime  # UTC: when the trouble started (offline: last heard), or when it ended (back)
    utc_offset_min: int
    value: float | None = None  # seconds silent (offline/back), volts, frames, bytes, drift seconds
    link: str = ""


def duration(seconds: float, lang: str) -> str:
    minutes = round(seconds / 60)
    if minutes < 120:
        return f"{minutes} min"
    hours = minutes / 60
    return (
        f"{hours:.0f} h"
        if hours < 48
        else (f"{hours / 24:.0f} días" if lang == "es" else f"{hours / 24:.0f} days")
    )


def _value(notice: DeviceNotice, lang: str) -> object:
    value = notice.value
    if notice.kind == "disk" and value is not None:
        return f"{value / 1e6:.0f} MB"
    if notice.kind == "clock":
        return TEMPLATES[lang]["unsynced"] if value is None else f"{value:+.0f} s"
    return value if value is not None else 0.0


def _camera_list(names: list[str], lang: str, limit: int) -> str:
    shown = [fit(n, limit) for n in names[:3]]
    if len(names) <= 3:
        return ", ".join(shown)
    return TEMPLATES[lang]["more"].format(shown=", ".join(shown), rest=len(names) - 3)


def render(notice: DeviceNotice, lang: str, unicode: bool = False) -> str:
    """The body in ``lang``; camera names shortened step by step until it fits one segment."""
    local = notice.since + timedelta(minutes=notice.utc_offset_min)
    bodies = (
        TEMPLATES[lang][notice.kind]
        .format(
            camera=fit(notice.cameras[0], limit),
            cameras=_camera_list(notice.cameras, lang, limit),
            n=len(notice.cameras),
            time=local.strftime("%H:%M"),
            duration=duration(notice.value or 0.0, lang),
            value=_value(notice, lang),
            link=notice.link,
        )
        .strip()
        for limit in _CAMERA_LIMITS
    )
    return first_in_one_segment(bodies, unicode)
