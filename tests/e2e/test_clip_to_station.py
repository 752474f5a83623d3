"""End to end for clips: a PIR edge -> the agent's H.264 ring (replay camera of real frames) -> a clip with
pre-roll -> chunks through the crash-safe spool -> real Mosquitto -> the station joins them once ->
the pipeline analyses the clip's frames -> an event and an alert, as for a burst."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.integration.agent_support import agent_config, wait_until
from tests.support.broker import Broker
from tests.support.dashboard_web import WebClient, add_user
from tests.support.station import running_station
from yaguar.agent.service import Agent
from yaguar.alerts.models import Alert
from yaguar.storage.models import Event, Media

pytestmark = pytest.mark.processes  # one after another under xdist: tests/conftest.py

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def test_a_pir_clip_reaches_the_station_and_alerts(
    broker: Broker, tmp_path: Path, images: Path, models_dir: Path
) -> None:
    config = agent_config(
        tmp_path / "agent",
        broker,
        images / "jaguar",
        device_id="cam-clip",
        pir={"enabled": True, "pin": 17, "holdoff_s": 30, "sample_rate": 50},
        clips={
            "enabled": True,
            "dir": str(tmp_path / "agent" / "clips"),
            "fps": 10,
            "pre_roll_s": 1.0,
            "post_roll_s": 2.0,
            "width": 640,
            "chunk_bytes": 16 * 1024,
        },
    )
    sections = {
        "ingest": {"clips": True, "clip_sample_s": 0.5},
        "pipeline": {
            "enabled": True,
            "model_dir": str(models_dir),
            "classifiers": [],
            "skip_without_motion": False,
            "batch_wait_ms": 5,
        },
        "alerts": {
            "enabled": True,
            "recipients": [{"name": "ranger", "phone": "+573001234567"}],
            "rules": [{"name": "animals", "categories": ["animal"], "min_confidence": 0.1}],
        },
    }
    with running_station(broker, tmp_path / "station", **sections) as station:
        receiver = next(c for c in station.components if c.name == "clips")
        assert receiver.link.wait_connected(10)
        agent = Agent(config).start()
        try:
            assert agent.publisher.connected.wait(10)
            time.sleep(1.5)  # the ring fills with a second and a half of frames
            pin = agent.pin_factory.pin(17)
            pin.drive_high()
            assert wait_until(lambda: agent.clips is not None and len(agent.clips.clips) == 1, 20)
            pin.drive_low()
            assert wait_until(lambda: agent.spool.depth == 0, 30), f"{agent.spool.depth} chunks not acked"
            chunks = agent.metrics.total("yaguar_agent_frames_sent")
            assert chunks >= 2 and agent.spool.quarantined() == []

            def analysed() -> bool:
                with station.session_factory() as session:
                    states = session.scalars(
                        select(Media.process_state).where(Media.device_id == "cam-clip")
                    ).all()
                return bool(states) and "pending" not in states

            assert wait_until(analysed, 60)
        finally:
            agent.stop()
        clip = agent.clips.clips[0] if agent.clips else None
        assert clip is not None
        with station.session_factory() as session:
            frames = session.scalars(
                select(Media).where(Media.device_id == "cam-clip").order_by(Media.captured_at)
            ).all()
            assert len(frames) == round(clip.meta["duration_s"] / 0.5 + 0.49)
            assert frames[0].burst_index < 0 <= frames[-1].burst_index  # the pre-roll came along
            assert {m.agent_event_id for m in frames} == {clip.meta["event_id"]}
            events = session.scalars(select(Event).where(Event.device_id == "cam-clip")).all()
            assert len(events) == 1 and events[0].category == "animal"
            assert session.scalar(select(func.count(Alert.id))) >= 1
            boxed = next(i for i, f in enumerate(frames) if f.process_state == "done" and f.detections)

        # The event's page plays the clip, with each analysed frame's boxes at its time.
        add_user(station.session_factory, "ana", "viewer")
        web = WebClient(station.http_url or "")
        web.login("ana")
        page = web.get(f"/events/{events[0].id}").text
        url = f"/clips/cam-clip/{clip.clip_id}.mp4"
        assert f'<video src="{url}"' in page and '<script src="/static/clip.js">' in page
        assert page.count("<template data-t=") == len(frames) and 'class="box animal"' in page
        video = web.get(url, headers={"Range": "bytes=0-99"})
        assert video.status_code == 206 and video.headers["Content-Type"] == "video/mp4"
        assert len(video.content) == 100
        assert web.get("/static/clip.js").status_code == 200
        assert web.get("/clips/cam-clip/clip-nope.mp4").status_code == 404

        # In a real browser: seeking to an analysed frame with an animal shows its boxes over the video.
        overlay = _boxes_in_browser(station.http_url or "", web, f"/events/{events[0].id}", boxed * 0.5)
        assert overlay == (f"{boxed * 0.5:.3f}", True)


def _boxes_in_browser(base: str, web: WebClient, page: str, time_s: float) -> tuple[str, bool]:
    """(the data-t of the boxes shown, whether an animal box is among them) after seeking to time_s."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.get(base + "/login")  # the session cookie belongs to this origin
        for cookie in web.http.cookies:
            driver.add_cookie({"name": cookie.name, "value": cookie.value or "", "path": "/"})
        driver.get(base + page)
        script = (
            "const [seconds, done] = arguments; const v = document.querySelector('.clip-stage video');"
            "const ready = () => { v.currentTime = seconds; v.addEventListener('seeked', () => done("
            "[document.querySelector('.clip-overlay').dataset.t,"
            " !!document.querySelector('.clip-overlay .box.animal')]), {once: true}); };"
            "if (v.readyState >= 1) ready(); else v.addEventListener('loadedmetadata', ready, {once: true});"
        )
        driver.set_script_timeout(20)
        found = driver.execute_async_script(script, time_s)
        return str(found[0]), bool(found[1])
    finally:
        driver.quit()
