"""``yaguar-station alerts ...``: recent alerts and their delivery state, acknowledging one by its code,
a preview of the messages each recipient would get (with their SMS segment cost), and a test SMS."""

from __future__ import annotations

import argparse
import asyncio
import socket
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from yaguar.alerts.deliveries import acknowledge
from yaguar.alerts.messages import AlertFacts, render
from yaguar.alerts.models import Alert
from yaguar.alerts.rules import parse_ack_code
from yaguar.alerts.segments import count_segments
from yaguar.alerts.test_sms import TestAttempt, TestSmsError, check_request, send_test_sms

from .config import StationConfig


def _sessions(config: StationConfig) -> sessionmaker[Session]:
    from yaguar.server.schema import upgrade
    from yaguar.storage import make_db_engine, make_session_factory

    engine = make_db_engine(config.storage.database_url)
    upgrade(engine)
    return make_session_factory(engine)


def cmd_list(args: argparse.Namespace, config: StationConfig) -> int:
    with _sessions(config)() as session:
        alerts = session.scalars(
            select(Alert).options(selectinload(Alert.deliveries)).order_by(Alert.id.desc()).limit(args.limit)
        ).all()
        if not alerts:
            print("No alerts yet.")
            return 0
        print(f"{'code':6} {'when (UTC)':20} {'rule':16} {'severity':8} {'state':10} {'what':28} deliveries")
        for alert in alerts:
            what = f"{alert.species or alert.category} at {alert.device_id}"
            if alert.category == "device":  # the rule says the trouble (device-offline...); this, where
                what = (
                    f"{alert.event_count} cameras" if alert.device_id == "*" else f"camera {alert.device_id}"
                )
            if alert.kind == "summary":
                what = f"{alert.event_count} more {what}"
            sent = (
                ", ".join(
                    f"{d.recipient or d.channel}: {d.state}"
                    + (f" via {d.channel}" if d.state == "sent" else "")
                    for d in alert.deliveries
                    if d.state != "passed"  # handed to the next channel: the delivery that follows says it
                )
                or "-"
            )
            acked = f" (acknowledged by {alert.acked_by})" if alert.acked_by else ""
            when = alert.created_at.strftime("%Y-%m-%d %H:%M:%S")
            print(
                f"{alert.ack_code:6} {when:20} {alert.rule:16} {alert.severity:8} {alert.state:10} "
                f"{what[:28]:28} {sent}{acked}"
            )
    return 0


def cmd_ack(args: argparse.Namespace, config: StationConfig) -> int:
    alert_id = parse_ack_code(args.code)
    if alert_id is None:
        print(
            f"yaguar-station alerts ack: {args.code!r} is not an alert code (see: yaguar-station alerts list)"
        )
        return 2
    with _sessions(config).begin() as session:
        alert = session.get(Alert, alert_id)
        if alert is None:
            print(f"yaguar-station alerts ack: no alert has the code {args.code.upper()}")
            return 2
        if not acknowledge(session, alert, args.by, datetime.now(UTC)):
            print(f"Alert {alert.ack_code} was already acknowledged by {alert.acked_by}.")
            return 0
    print(f"Alert {args.code.upper()} acknowledged; it will not escalate further.")
    return 0


def cmd_preview(args: argparse.Namespace, config: StationConfig) -> int:
    alerts = config.alerts
    unicode = alerts.twilio.unicode if alerts.twilio else False
    link = alerts.link_template.format(base=config.http.public_url.rstrip("/"), event_id=123456)
    now = datetime.now(UTC)
    languages = sorted({r.language for r in alerts.recipients}) or ["es", "en"]
    for kind in ("first", "summary"):
        facts = AlertFacts(
            kind=kind, category="animal", species=args.species, count=1, confidence=0.87,
            camera=args.camera, first_seen_at=now, last_seen_at=now, utc_offset_min=args.utc_offset_min,
            event_id=123456, event_count=14, ack_code="3FQ",
        )  # fmt: skip
        for lang in languages:
            body = render(facts, lang, link, unicode)
            cost = count_segments(body)
            print(f"[{lang} {kind}] {cost.segments} segment(s), {cost.encoding}, {cost.units} units")
            print(f"  {body}")
    return 0


OUTCOME_WORDS = {
    "sent": "accepted",
    "retry": "down, nothing sent",
    "failed": "refused",
    "unknown": "no answer: it may have gone out",
}


def cmd_test(args: argparse.Namespace, config: StationConfig) -> int:
    from .alerts_component import make_channels

    try:
        check_request(config.alerts, args.number, args.channel)
    except TestSmsError as exc:
        print(f"yaguar-station alerts test: {exc}")
        return 2

    async def run() -> list[TestAttempt]:
        channels = make_channels(config.alerts)
        try:
            gsm = channels.get("gsm")
            if gsm is not None and hasattr(gsm, "refresh"):
                state = await gsm.refresh()
                signal = f"{state.signal_percent}%" if state.signal_percent is not None else "-"
                print(
                    f"GSM modem: SIM {state.sim}, network {state.registration}, signal {signal}"
                    + (f" ({state.error})" if state.error else "")
                )
            return await send_test_sms(
                config.alerts, channels, args.number, socket.gethostname(), args.channel
            )
        finally:
            for channel in channels.values():
                await channel.close()

    attempts = asyncio.run(run())
    for attempt in attempts:
        words = OUTCOME_WORDS.get(attempt.outcome, attempt.outcome)
        print(f"{attempt.channel}: {words}" + (f" ({attempt.detail})" if attempt.detail else ""))
    if attempts and attempts[-1].outcome == "sent":
        print(f"Test SMS sent to {args.number} via {attempts[-1].channel}. Check that the phone got it.")
        return 0
    print(f"No channel sent the test SMS to {args.number}.")
    return 1


def add_commands(sub: argparse._SubParsersAction) -> None:
    alerts = sub.add_parser("alerts", help="recent alerts, acknowledging one, previewing messages")
    actions = alerts.add_subparsers(dest="alerts_command", required=True)
    listing = actions.add_parser("list", help="recent alerts and the state of each message")
    listing.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    listing.set_defaults(func=cmd_list)
    ack = actions.add_parser("ack", help="acknowledge an alert by the code in its message")
    ack.add_argument("code")
    ack.add_argument("--by", default="console", help="who acknowledges (default: console)")
    ack.set_defaults(func=cmd_ack)
    preview = actions.add_parser("preview", help="the messages recipients would get, and their SMS cost")
    preview.add_argument("--species", default="Panthera onca", help="scientific name")
    preview.add_argument("--camera", default="Sendero Norte", help="camera name as in the message")
    preview.add_argument("--utc-offset-min", type=int, default=-300, help="the camera's UTC offset")
    preview.set_defaults(func=cmd_preview)
    test = actions.add_parser(
        "test",
        help="send a test SMS now, through the SMS channels in order; with the station running, use the "
        "dashboard's Alerts page instead (the station holds the modem)",
    )
    test.add_argument("number", help="the phone to send to, in E.164 form: +573001234567")
    test.add_argument(
        "--channel", choices=["twilio", "gsm"], help="only this channel (default: each in turn)"
    )
    test.set_defaults(func=cmd_test)
