"""Alert HTTP routes on a real aiohttp server: Twilio's signed callbacks (forgeries get 403), a ranger's
``OK <code>`` reply stopping the escalation, and the API listing for the dashboard."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tests.support.alert_harness import Clock, Harness, alerts_config
from tests.support.fake_twilio import FakeTwilio
from yaguar.alerts.web import INBOUND_PATH, STATUS_PATH, AlertRoutes
from yaguar.server.api.auth import AUTHENTICATORS, api_auth, token_authenticator

TOKEN = "alerts-test-token"
ANA, BOB, STRANGER = "+573001112233", "+573004445566", "+15550001111"


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        yield fake


@pytest_asyncio.fixture
async def setup(db_url: str, twilio: FakeTwilio) -> AsyncIterator[tuple[Harness, TestClient, Clock]]:
    clock = Clock()
    h = Harness(db_url, alerts_config(twilio.base_url, escalation={"after_s": 600}), clock)
    app = web.Application(middlewares=[api_auth])
    app[AUTHENTICATORS] = [token_authenticator([TOKEN])]
    AlertRoutes(h.config.alerts, h.sessions, h.metrics, clock).register(app)
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        yield h, client, clock
    finally:
        await client.close()
        await h.close()


async def post_signed(
    client: TestClient, twilio: FakeTwilio, path: str, form: dict[str, str], forge: bool = False
) -> tuple[int, str]:
    url = str(client.make_url(path))
    signature = twilio.sign(url, form)
    if forge:
        form = {**form, "MessageStatus": "delivered", "Body": form.get("Body", "") + "x"}
    response = await client.post(path, data=form, headers={"X-Twilio-Signature": signature})
    return response.status, await response.text()


@pytest.mark.asyncio
async def test_forged_callback_gets_403_and_a_signed_one_is_applied(
    setup: tuple[Harness, TestClient, Clock], twilio: FakeTwilio
) -> None:
    h, client, _clock = setup
    h.add_event()
    await h.settle()
    delivery = h.deliveries()[0]
    path = f"{STATUS_PATH}?d={delivery.id}"
    form = {
        "MessageSid": delivery.provider_sid or "",
        "MessageStatus": "sent",
        "AccountSid": twilio.account_sid,
    }

    status, _ = await post_signed(client, twilio, path, form, forge=True)
    assert status == 403
    response = await client.post(path, data=form)  # no signature at all
    assert response.status == 403
    assert h.metric("yaguar_alert_requests_rejected_total", endpoint="status", reason="bad_signature") == 2
    assert h.deliveries()[0].provider_status == "queued"

    status, _ = await post_signed(client, twilio, path, {**form, "MessageStatus": "delivered"})
    assert status == 204
    assert h.deliveries()[0].provider_status == "delivered"
    status, _ = await post_signed(
        client, twilio, path, {**form, "MessageStatus": "undelivered", "ErrorCode": "30003"}
    )
    assert status == 204
    assert (h.deliveries()[0].state, h.alerts()[0].state) == ("failed", "failed")
    status, _ = await post_signed(client, twilio, f"{STATUS_PATH}?d=x", form)
    assert status == 400


@pytest.mark.asyncio
async def test_ok_code_stops_the_escalation(
    setup: tuple[Harness, TestClient, Clock], twilio: FakeTwilio
) -> None:
    h, client, clock = setup
    h.add_event(device="cam-01")
    h.add_event(device="cam-02")
    await h.settle()
    acked, ignored = h.alerts()
    assert [d.recipient for d in h.deliveries()] == ["ana", "ana"]  # level 0 only, so far

    status, text = await post_signed(
        client, twilio, INBOUND_PATH, {"From": STRANGER, "Body": f"OK {acked.ack_code}"}
    )
    assert status == 200 and "<Message>" not in text
    status, text = await post_signed(client, twilio, INBOUND_PATH, {"From": ANA, "Body": "OK ZZZ"})
    assert status == 200 and "No hay alerta abierta" in text
    status, text = await post_signed(
        client, twilio, INBOUND_PATH, {"From": ANA, "Body": f" ok {acked.ack_code.lower()} "}, forge=True
    )
    assert status == 403
    status, text = await post_signed(
        client, twilio, INBOUND_PATH, {"From": ANA, "Body": f" ok {acked.ack_code.lower()} "}
    )
    assert status == 200 and f"Alerta {acked.ack_code} confirmada" in text

    clock.advance(601)
    await h.settle()
    escalated = [
        (d.alert_id, d.recipient, d.escalation_level) for d in h.deliveries() if d.recipient == "bob"
    ]
    assert escalated == [(ignored.id, "bob", 1)], "only the unacknowledged alert goes to the next level"
    bob_bodies = [c.form["Body"] for c in twilio.creates() if c.form["To"] == BOB]
    assert len(bob_bodies) == 1 and bob_bodies[0].startswith("Yaguar: jaguar at Sendero 02")
    alerts = {a.id: a for a in h.alerts()}
    assert alerts[acked.id].acked_by == "ana" and alerts[acked.id].next_escalation_at is None
    assert alerts[ignored.id].escalation_level == 1 and alerts[ignored.id].acked_at is None
    assert h.metric("yaguar_alert_acks_total", via="sms") == 1
    assert h.metric("yaguar_alert_requests_rejected_total", endpoint="inbound", reason="unknown_sender") == 1


@pytest.mark.asyncio
async def test_api_lists_alerts_with_their_deliveries(setup: tuple[Harness, TestClient, Clock]) -> None:
    h, client, _clock = setup
    h.add_event(count=2)
    await h.settle()
    assert (await client.get("/api/v1/alerts")).status == 401
    auth = {"Authorization": f"Bearer {TOKEN}"}
    body = await (await client.get("/api/v1/alerts", headers=auth)).json()
    [alert] = body["items"]
    assert alert["state"] == "sent" and alert["species"] == "Panthera onca" and alert["count"] == 2
    assert [(d["recipient"], d["state"], d["segments"]) for d in alert["deliveries"]] == [("ana", "sent", 1)]
    assert (await client.get("/api/v1/alerts?state=bogus", headers=auth)).status == 400
    assert (await client.get("/api/v1/alerts?limit=x", headers=auth)).status == 400
    assert (await client.get("/api/v1/alerts/999", headers=auth)).status == 404
    acked = await (await client.post(f"/api/v1/alerts/{alert['id']}/ack", headers=auth)).json()
    assert acked["acked_by"] == "dashboard"
    short = await client.get("/e/1", allow_redirects=False)  # the link in the message
    assert short.status == 302 and short.headers["Location"] == "/events/1"
