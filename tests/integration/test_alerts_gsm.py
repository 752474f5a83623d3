"""The GSM modem channel on Gammu's dummy phone: multipart and UCS-2 sends cut as ``segments.py`` counts,
delivery reports, ``OK <code>`` replies read from the modem (and refused from strangers or with a wrong
code), the modem's faults: absent, SIM locked, not registered, silent, unplugged mid-send, and a
station killed between the modem's accept and the outbox commit."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine
from sqlalchemy.exc import OperationalError

from tests.support.alert_harness import BIG_CATS, RANGERS, Harness, alerts_config
from tests.support.gsm_modem import DummyNetwork, FaultyMachine, dummy_section
from yaguar.alerts.channels.base import DeliveryView
from yaguar.alerts.channels.gsm import GsmChannel, references_of
from yaguar.alerts.config import GsmConfig
from yaguar.alerts.modem_watch import ModemWatch
from yaguar.alerts.segments import count_segments

REPO = Path(__file__).resolve().parents[2]
ANA = RANGERS[0]["phone"]
ANA_ONLY = [{**BIG_CATS, "recipients": ["ana"]}]


@pytest.fixture
def network(tmp_path: Path) -> Iterator[DummyNetwork]:
    FaultyMachine.reset()
    yield DummyNetwork(tmp_path / "modem")
    FaultyMachine.reset()


def gsm_harness(db_url: str, network: DummyNetwork, gsm_pin: str | None = None, **over: Any) -> Harness:
    gsm = dummy_section(network.folder, **over.pop("gsm", {}))
    config = alerts_config(None, gsm_pin=gsm_pin, rules=over.pop("rules", ANA_ONLY), gsm=gsm, **over)
    return Harness(db_url, config, modem_factory=FaultyMachine)


def watch_of(h: Harness) -> ModemWatch:
    channel = h.channels["gsm"]
    assert isinstance(channel, GsmChannel)
    return ModemWatch(channel, h.config.alerts, h.sessions, h.metrics, h.sender, h.clock)


async def one_alert_sent(h: Harness) -> str:
    """One alert sent through the modem; returns its acknowledgement code."""
    h.add_event()
    await h.settle(until=lambda: h.alerts()[0].state == "sent")
    return h.alerts()[0].ack_code


def view(body: str, delivery_id: int = 1) -> DeliveryView:
    return DeliveryView(delivery_id, 1, "gsm", ANA, body, 1, None, None)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "body",
    [
        "Yaguar: jaguar en Sendero Norte 02:14 92% http://st.lan/e/123 Responda OK 3F",  # GSM-7, one
        "Yaguar: pecarí de collar en Sendero Norte 02:14 92% http://st.lan/e/123 Responda OK 3F",  # UCS-2
        "Yaguar: [jaguar] {x2} € " * 12,  # GSM-7 with two-septet characters, several parts
        "Yaguar: pecarí, danta, oso hormiguero, ñeque " * 5,  # UCS-2, several parts
    ],
)
async def test_parts_and_encoding_match_the_segment_rules(network: DummyNetwork, body: str) -> None:
    channel = GsmChannel(GsmConfig(**dummy_section(network.folder)), None, FaultyMachine)
    try:
        result = await channel.send(view(body))
    finally:
        await channel.close()
    cost = count_segments(body)
    assert result.outcome == "sent"
    assert len(FaultyMachine.sent) == cost.segments
    codings = {part["Coding"] for part in FaultyMachine.sent}
    assert codings == ({"Unicode_No_Compression"} if cost.encoding == "UCS-2" else {"Default_No_Compression"})
    assert all(part["Type"] == "Status_Report" for part in FaultyMachine.sent), "delivery reports asked for"
    assert references_of(result.provider_sid) == list(range(1, cost.segments + 1))
    assert network.records() == ["Sent"]


@pytest.mark.asyncio
async def test_alert_sent_then_delivery_report_marks_it_delivered(db_url: str, network: DummyNetwork) -> None:
    h = gsm_harness(db_url, network, gsm={"unicode": True})
    try:
        h.add_event()
        await h.settle(until=lambda: h.alerts()[0].state == "sent")
        delivery = h.deliveries()[0]
        assert delivery.channel == "gsm" and delivery.provider_status == "accepted"
        for reference in references_of(delivery.provider_sid):
            network.report(ANA, reference, status=0)
        assert await watch_of(h).read_inbox() == len(references_of(delivery.provider_sid))
        assert h.deliveries()[0].provider_status == "delivered"
        assert h.metric("yaguar_gsm_delivery_reports_total", outcome="delivered") >= 1
        assert network.inbox_count() == 0, "reports are deleted from the modem once read"
    finally:
        await h.close()


@pytest.mark.asyncio
async def test_a_failed_delivery_report_marks_the_delivery_failed(db_url: str, network: DummyNetwork) -> None:
    h = gsm_harness(db_url, network)
    try:
        h.add_event()
        await h.settle(until=lambda: h.alerts()[0].state == "sent")
        reference = references_of(h.deliveries()[0].provider_sid)[0]
        network.report(ANA, reference, status=0x41)  # permanent error: incompatible destination
        network.report("+573009999999", 200, status=0)  # about nothing we sent
        await watch_of(h).read_inbox()
        delivery = h.deliveries()[0]
        assert delivery.state == "failed" and delivery.provider_status == "undelivered"
        assert "TP-Status 65" in (delivery.last_error or "")
        assert h.metric("yaguar_gsm_delivery_reports_total", outcome="unmatched") == 1
    finally:
        await h.close()


@pytest.mark.asyncio
async def test_ok_reply_read_from_the_modem_acknowledges_and_is_answered(
    db_url: str, network: DummyNetwork
) -> None:
    h = gsm_harness(db_url, network)
    try:
        code = await one_alert_sent(h)
        network.deliver(ANA, f"ok {code.lower()}")
        await watch_of(h).read_inbox()
        alert = h.alerts()[0]
        assert alert.acked_by == "ana" and alert.next_escalation_at is None
        assert h.metric("yaguar_alert_acks_total", via="gsm") == 1
        assert FaultyMachine.sent[-1]["Number"] == ANA
        assert FaultyMachine.sent[-1]["Text"] == f"Alerta {code} confirmada. Gracias."
    finally:
        await h.close()


@pytest.mark.asyncio
async def test_replies_from_a_stranger_or_with_a_wrong_code_are_refused(
    db_url: str, network: DummyNetwork
) -> None:
    h = gsm_harness(db_url, network)
    try:
        code = await one_alert_sent(h)
        sent_before = len(FaultyMachine.sent)
        network.deliver("+573009999999", f"OK {code}")  # not a recipient
        network.deliver(ANA, f"OK {code[:-1]}Z")  # the check character is wrong
        network.deliver(ANA, "gracias")  # not an acknowledgement
        assert await watch_of(h).read_inbox() == 3
        assert h.alerts()[0].acked_at is None
        rejected = "yaguar_alert_requests_rejected_total"
        assert h.metric(rejected, endpoint="gsm_inbound", reason="unknown_sender") == 1
        assert h.metric(rejected, endpoint="gsm_inbound", reason="unknown_code") == 1
        assert h.metric(rejected, endpoint="gsm_inbound", reason="not_an_ack") == 1
        answers = FaultyMachine.sent[sent_before:]
        assert [a["Number"] for a in answers] == [ANA], "only the recipient's wrong code is answered"
        assert answers[0]["Text"].startswith("No hay alerta abierta")
        assert network.inbox_count() == 0
    finally:
        await h.close()


# -- faults ------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_modem_absent_is_a_retry_and_shows_in_state(tmp_path: Path) -> None:
    FaultyMachine.reset()
    channel = GsmChannel(GsmConfig(**dummy_section(tmp_path / "no" / "such" / "port")), None, FaultyMachine)
    try:
        result = await channel.send(view("Yaguar: prueba"))
        state = await channel.refresh()
    finally:
        await channel.close()
    assert result.outcome == "retry" and "gsm absent" in (result.error or "")
    assert not state.present and not state.registered and "no modem at" in (state.error or "")
    assert FaultyMachine.sent == []


@pytest.mark.asyncio
async def test_sim_locked_without_pin_then_unlocked_with_the_pin_entered_once(network: DummyNetwork) -> None:
    FaultyMachine.security, FaultyMachine.accept_pin = "PIN", "4321"
    config = GsmConfig(**dummy_section(network.folder))
    locked = GsmChannel(config, None, FaultyMachine)
    wrong = GsmChannel(config, "1111", FaultyMachine)
    right = GsmChannel(config, "4321", FaultyMachine)
    try:
        no_pin = await locked.send(view("Yaguar: prueba"))
        assert no_pin.outcome == "retry" and "YAGUAR_GSM_PIN" in (no_pin.error or "")
        assert locked.state.sim == "PIN" and not locked.state.registered
        refused = await wrong.send(view("Yaguar: prueba"))
        assert refused.outcome == "retry" and "refused the PIN" in (refused.error or "")
        assert wrong.modem.pin is None, "a refused PIN is never tried again (the SIM would lock for good)"
        again = await wrong.send(view("Yaguar: prueba"))
        assert again.outcome == "retry" and "sim_locked" in (again.error or "")
        assert (await right.send(view("Yaguar: prueba"))).outcome == "sent"
    finally:
        for channel in (locked, wrong, right):
            await channel.close()
    assert len(FaultyMachine.sent) == 1


@pytest.mark.asyncio
async def test_not_registered_is_a_retry_and_nothing_is_written(network: DummyNetwork) -> None:
    FaultyMachine.network_state = "NoNetwork"
    channel = GsmChannel(GsmConfig(**dummy_section(network.folder)), None, FaultyMachine)
    try:
        result = await channel.send(view("Yaguar: prueba"))
    finally:
        await channel.close()
    assert result.outcome == "retry" and "not_registered" in (result.error or "")
    assert FaultyMachine.sent == [] and network.records() == []


@pytest.mark.asyncio
async def test_silent_modem_is_unknown_and_never_sent_again(db_url: str, network: DummyNetwork) -> None:
    FaultyMachine.hang_send_s = 1.0
    h = gsm_harness(db_url, network, gsm={"send_timeout_s": 0.3})
    try:
        h.add_event()
        await h.settle(until=lambda: h.deliveries()[0].state == "unknown")
        assert "silent" in (h.deliveries()[0].last_error or "")
        FaultyMachine.hang_send_s = 0.0
        await asyncio.sleep(1.0)  # the blocked send finishes on the modem's thread meanwhile
        await h.settle(until=lambda: h.deliveries()[0].state != "unknown")
        delivery = h.deliveries()[0]
        # The record says the modem accepted it after all: settled as sent, not sent a second time.
        assert delivery.state == "sent" and len(FaultyMachine.sent) == 1
        assert h.metric("yaguar_alert_reconciliations_total", outcome="sent") == 1
    finally:
        await h.close()


@pytest.mark.asyncio
async def test_unplugged_mid_send_stays_unknown_and_is_not_resent(db_url: str, network: DummyNetwork) -> None:
    FaultyMachine.unplug_after_parts = 1  # the first part goes out, then the port is gone
    long_link = "{base}/eventos/{event_id}?origen=" + "alerta-sms-de-la-estacion-yaguar-" * 4  # two parts
    h = gsm_harness(db_url, network, link_template=long_link)
    try:
        h.add_event()
        await h.settle(until=lambda: h.deliveries()[0].state == "unknown")
        lost = h.deliveries()[0]
        assert lost.segments == 2 and "part 2 of 2" in (lost.last_error or "")
        FaultyMachine.unplug_after_parts = None  # plugged back in
        reconciled = "yaguar_alert_reconciliations_total"
        await h.settle(until=lambda: h.metric(reconciled, outcome="unknown") >= 2)
        after = h.deliveries()[0]
        assert after.state == "unknown" and "may have gone out" in (after.last_error or "")
        assert network.records() == ["UnSent"]
        assert len(FaultyMachine.sent) == 1, "the part that went out was not sent again"
    finally:
        await h.close()


CHILD = """
import asyncio, sys, time
from tests.support.alert_harness import BIG_CATS, Harness, alerts_config
from tests.support.gsm_modem import FaultyMachine, dummy_section
from yaguar.alerts.channels.gsm import GsmChannel
db_url, folder = sys.argv[1:3]
config = alerts_config(None, rules=[{**BIG_CATS, "recipients": ["ana"]}], gsm=dummy_section(folder))
h = Harness(db_url, config, modem_factory=FaultyMachine)
send = GsmChannel.send

async def accept_then_hang(self, delivery):
    result = await send(self, delivery)  # the modem accepted it and the record says so
    print("accepted", result.provider_sid, flush=True)
    await asyncio.sleep(600)  # killed here: before the answer reaches the outbox

GsmChannel.send = accept_then_hang
h.add_event()
async def main():
    h.sender.bind_loop()
    await h.sender.step()
    await asyncio.sleep(600)
asyncio.run(main())
"""


@pytest.mark.asyncio
async def test_killed_between_modem_accept_and_commit_is_reconciled_not_resent(
    db_url: str, network: DummyNetwork
) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, db_url, str(network.folder)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline().strip()
        assert line.startswith("accepted gsm:"), f"child said {line!r}"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    assert network.records() == ["Sent"]
    h = gsm_harness(db_url, network)  # the restarted station
    try:
        assert h.deliveries()[0].state == "sending"
        assert h.sender.recover() == 1
        assert h.deliveries()[0].state == "unknown"
        await h.settle(until=lambda: h.alerts()[0].state == "sent")
        delivery = h.deliveries()[0]
        assert delivery.provider_sid == line.split()[1], "settled from the modem's record"
        assert FaultyMachine.sent == [], "the restarted station sent nothing again"
        assert h.metric("yaguar_alert_reconciliations_total", outcome="sent") == 1
    finally:
        await h.close()


@pytest.mark.asyncio
async def test_send_records_are_bounded_and_a_sent_mark_wins_over_its_unsent_twin(
    network: DummyNetwork,
) -> None:
    channel = GsmChannel(GsmConfig(**dummy_section(network.folder, keep_records=5)), None, FaultyMachine)
    try:
        for delivery_id in range(1, 9):
            assert (await channel.send(view(f"Yaguar: prueba {delivery_id}", delivery_id))).outcome == "sent"
        # What a crash between writing the sent mark and deleting the first record leaves behind.
        network.machine.AddSMS(
            {"Folder": 2, "State": "UnSent", "Number": ANA, "SMSC": {"Location": 1}, "Text": "yaguar d=8"}
        )
        assert (await channel.reconcile(view("x", 8))).outcome == "sent"
        assert await channel.read_incoming() == []  # the periodic read also drops old records
        assert network.records() == ["Sent"] * 5
        assert (await channel.reconcile(view("x", 2))).outcome == "absent"  # dropped: older than the 5
    finally:
        await channel.close()


@pytest.mark.asyncio
async def test_a_reply_the_database_could_not_take_is_read_again(db_url: str, network: DummyNetwork) -> None:
    h = gsm_harness(db_url, network)
    try:
        code = await one_alert_sent(h)
        network.deliver(ANA, f"OK {code}")
        watch = watch_of(h)
        h.engine.dispose()
        broken = h.sessions.kw["bind"]
        h.sessions.configure(bind=create_engine("sqlite:////nonexistent/folder/station.db"))
        with pytest.raises(OperationalError):
            await watch.read_inbox()
        assert network.inbox_count() == 1, "the reply stays in the modem"
        h.sessions.configure(bind=broken)
        assert await watch.read_inbox() == 1
        assert h.alerts()[0].acked_by == "ana" and network.inbox_count() == 0
    finally:
        await h.close()
