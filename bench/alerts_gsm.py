"""The GSM modem part of bench/alerts.py (``--gsm``), on Gammu's dummy phone (real Gammu code on a folder).

1. event committed -> message accepted by the modem channel, p50/p99 (the modem is the only channel);
   the time of acceptance is when the channel's record of the send was marked sent in the modem's
   memory (the record file's mtime), right after the modem's answer to the last part.
2. failover: event committed -> accepted by the modem when Twilio is dead and tried first each time
   (``channel_down_hold_s`` near zero so every alert meets the dead Twilio): answering 500, and
   refusing connections (no internet).
Reference, same run: ``Modem.send`` alone on the same kind of dummy phone (call -> accepted), the floor
the outbox, the sender and the failover add to.
"""

from __future__ import annotations

import re
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from sqlalchemy import select
from tqdm import tqdm

from tests.support.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER
from yaguar.alerts.channels.gsm_modem import RECORD_FOLDER, Modem
from yaguar.alerts.config import GsmConfig
from yaguar.alerts.models import Delivery
from yaguar.server.alerts_component import AlertsComponent
from yaguar.server.config import config_from_dict
from yaguar.server.context import StationContext, StationHooks
from yaguar.server.schema import upgrade
from yaguar.storage import make_db_engine, make_session_factory
from yaguar.storage.models import Device, Event

RANGER = {"name": "ana", "phone": "+573001112233", "language": "es"}
RULE = {"name": "cats", "species": ["Panthera onca"], "severity": "high"}
_RECORD = re.compile(r"^; yaguar d=(\d+) mr=", re.MULTILINE)


def dummy(folder: Path, **over: Any) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    return {"device": str(folder), "connection": "none", "model": "dummy", "keep_records": 500, **over}


def accepted_at(folder: Path) -> dict[int, float]:
    """Delivery id -> when its send record was marked sent (the modem had accepted every part)."""
    out = {}
    for path in (folder / "sms" / str(RECORD_FOLDER)).iterdir():
        match = _RECORD.search(path.read_text(errors="replace"))
        if match:
            out[int(match.group(1))] = path.stat().st_mtime
    return out


def reference(folder: Path, count: int) -> list[float]:
    modem = Modem(GsmConfig(**dummy(folder)), None)
    took = []
    for index in range(count):
        start = time.perf_counter()
        modem.send(100_000 + index, RANGER["phone"], f"Yaguar: referencia {index} http://st.lan/e/{index}")
        took.append(time.perf_counter() - start)
    modem.disconnect()
    return took


def commit_events(ctx: StationContext, count: int, rate: float, label: str) -> dict[int, float]:
    """A jaguar event on cam-01 ``rate`` times a second, committed with the station's event hooks (the
    alert rules run in its transaction, as in the pipeline); the wall time of each commit, by event id."""
    committed: dict[int, float] = {}
    next_at = time.perf_counter()
    for _ in tqdm(range(count), desc=label, unit="event"):
        now = datetime.now(UTC)
        with ctx.session_factory.begin() as session:
            event = Event(
                device_id="cam-01", started_at=now, ended_at=now, category="animal",
                species="Panthera onca", count=1, confidence=0.9, utc_offset_min=-300,
            )  # fmt: skip
            session.add(event)
            session.flush()
            for hook in ctx.hooks.event_in_transaction:
                hook(session, event)
            event_id = event.id
        committed[event_id] = time.time()
        next_at += 1.0 / rate
        time.sleep(max(next_at - time.perf_counter(), 0))
    return committed


def run_station(
    workdir: Path, alerts: dict[str, Any], count: int, rate: float, label: str
) -> tuple[list[float], list[float]]:
    """Commit ``count`` matching events at ``rate``; returns commit -> modem accept, per alert, and of it
    the part from commit to the GSM delivery claimed by the sender (the rest is the modem's queue)."""
    config = config_from_dict(
        {
            "storage": {"database_url": f"sqlite:///{workdir / 'station.db'}", "media_root": str(workdir)},
            "alerts": {
                "enabled": True,
                "recipients": [RANGER],
                "rules": [RULE],
                "flood": {"cooldown_s": 0, "recipient_hourly_cap": 1000},
                **alerts,
            },
        },
        env={},
    )
    engine = make_db_engine(config.storage.database_url, config.storage.sqlite_synchronous)
    upgrade(engine)
    ctx = StationContext(
        config, engine, make_session_factory(engine), workdir, CollectorRegistry(), StationHooks()
    )
    component = AlertsComponent(ctx)
    component.start()
    with ctx.session_factory.begin() as session:
        session.add(Device(id="cam-01", name="Sendero Norte"))
    committed = commit_events(ctx, count, rate, label)
    folder = Path(alerts["gsm"]["device"])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(accepted_at(folder)) < count:
        time.sleep(0.2)
    component.stop()
    accepted = accepted_at(folder)
    with ctx.session_factory() as session:
        rows = session.scalars(select(Delivery).where(Delivery.channel == "gsm")).all()
        event_of = {d.id: d.alert.event_id for d in rows}
        claimed = {d.id: d.claimed_at.timestamp() for d in rows if d.claimed_at is not None}
        sent = [d for d in rows if d.state == "sent"]
    engine.dispose()
    once = len(sent) == count and len({event_of[d.id] for d in sent}) == count
    print(f"{label}: {len(accepted)} accepted by the modem for {count} alerts; each exactly once: {once}")
    total = [accepted[d] - committed[event_of[d]] for d in accepted if d in event_of]
    waits = [claimed[d] - committed[event_of[d]] for d in accepted if d in event_of and d in claimed]
    return total, waits


def gsm_bench(count: int, rate: float, ref_count: int, fake: Any, show: Any, percentiles: Any) -> None:
    with tempfile.TemporaryDirectory(prefix="yaguar-bench-gsm-") as tmp:
        work = Path(tmp)
        ref = percentiles(reference(work / "ref-modem", ref_count))
        runs: dict[str, tuple[list[float], list[float]]] = {}
        runs["modem only"] = run_station(
            work / "alone", {"gsm": dummy(work / "alone" / "modem")}, count, rate, "modem only"
        )
        # What a send queued behind the station's periodic read of the modem's memory waits for.
        lister = Modem(GsmConfig(**dummy(work / "alone" / "modem")), None)
        start = time.perf_counter()
        lister.read_incoming()
        listing_s = time.perf_counter() - start
        lister.disconnect()
        fast_failover = {"channel_down_hold_s": 0.001}  # every alert meets the dead Twilio first
        twilio = {
            "twilio": {"account_sid": ACCOUNT_SID, "from_number": FROM_NUMBER, "api_base_url": fake.base_url},
            "twilio_auth_token": AUTH_TOKEN,
            "sms_channels": ["twilio", "gsm"],
        }
        fake.down("500")
        runs["Twilio answering 500"] = run_station(
            work / "t500",
            {**twilio, "gsm": dummy(work / "t500" / "modem"), "sender": fast_failover},
            count,
            rate,
            "Twilio answers 500",
        )
        tried = len([r for r in fake.creates() if r["status"] == 500])
        print(f"Twilio attempts answered 500 (each then passed to the modem): {tried}")
        fake.up()
        refused = {**twilio, "twilio": {**twilio["twilio"], "api_base_url": "http://127.0.0.1:9"}}
        runs["Twilio unreachable"] = run_station(
            work / "off",
            {**refused, "gsm": dummy(work / "off" / "modem"), "sender": fast_failover},
            count,
            rate,
            "Twilio unreachable",
        )
    for name, (total, waits) in runs.items():
        title = "modem only" if name == "modem only" else f"failover, {name}"
        show(f"event committed -> accepted by the modem ({title})", percentiles(total))
        show("  of which: event committed -> GSM delivery claimed", percentiles(waits))
    show("reference: Modem.send alone (call -> accepted)", ref)
    print(
        f"one read of the modem's memory (replies, reports, {count} send records): {listing_s * 1000:.0f} ms; "
        "a send that arrives during it waits for it"
    )
    for name, (total, _waits) in runs.items():
        stats = percentiles(total)
        print(
            f"ratio to reference, {name}: p50 x{stats['p50'] / ref['p50']:.1f}, p99 x{stats['p99'] / ref['p99']:.1f}"
        )
