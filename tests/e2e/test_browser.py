"""A real headless Chromium drives the dashboard of a real station: log in, watch a new event arrive in
the live feed after a simulated agent publishes real frames (ingest -> pipeline with the real models ->
events_committed -> SSE), open it, see the boxes, correct the species, switch to English and back.

Screenshots of the main pages go to $YAGUAR_SCREENSHOT_DIR (default: a temp folder; the path is
printed) so a person can look at them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.support.dashboard_web import PASSWORD, add_heartbeat, add_user
from tests.support.station import running_station
from yaguar.server.dashboard.models import Review
from yaguar.server.simulator import SimAgent
from yaguar.storage.models import Event

pytestmark = pytest.mark.processes  # one after another under xdist: tests/conftest.py

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1000",
    "--lang=es",
]

webdriver = pytest.importorskip("selenium.webdriver")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    if CHROMIUM is None or not Path(CHROMEDRIVER).exists():
        pytest.skip(
            "chromium and chromium-driver are not installed (apt-get install -y chromium chromium-driver)"
        )
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # console errors, CSP violations
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def screenshots(request: pytest.FixtureRequest) -> Path:
    folder = Path(os.environ.get("YAGUAR_SCREENSHOT_DIR") or tempfile.mkdtemp(prefix="yaguar-screenshots-"))
    folder.mkdir(parents=True, exist_ok=True)
    # Written past pytest's output capture, so the path shows in every run, passing or not.
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if capture is not None and reporter is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"\nscreenshots of the dashboard: {folder}")
    else:
        print(f"screenshots of the dashboard: {folder}")
    return folder


def test_ranger_sees_a_new_event_live_reviews_it_and_switches_language(
    broker, tmp_path: Path, browser, screenshots: Path, images: Path, models_dir: Path
) -> None:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    # a page being replaced by the next one makes elements stale for a moment: keep waiting then
    wait = WebDriverWait(browser, 120, ignored_exceptions=(StaleElementReferenceException,))
    pipeline = {
        "enabled": True,
        "model_dir": str(models_dir),
        "threads": 1,
        "classifiers": [],
        "skip_without_motion": False,
        "event_gap_s": 5.0,
    }
    # a real alert rule (SMS to the log: no Twilio), so the alerts page has a delivery to show
    alerts = {
        "enabled": True,
        "rules": [{"name": "fauna", "categories": ["animal", "person"], "min_confidence": 0.2}],
        "recipients": [{"name": "ana", "phone": "+573001234567"}],
    }
    with running_station(broker, tmp_path / "station", pipeline=pipeline, alerts=alerts) as station:
        add_user(station.session_factory, "guardaparque", "reviewer")
        url = station.http_url

        # 1. an unauthenticated visit lands on the log-in page (in Spanish)
        browser.get(url + "/")
        wait.until(ec.presence_of_element_located((By.ID, "login-form")))
        assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "es"
        browser.save_screenshot(str(screenshots / "01-login.png"))
        browser.find_element(By.ID, "username").send_keys("guardaparque")
        browser.find_element(By.ID, "password").send_keys(PASSWORD)
        browser.find_element(By.ID, "login-submit").click()
        wait.until(ec.presence_of_element_located((By.ID, "feed")))
        wait.until(lambda d: "off" not in d.find_element(By.ID, "live-state").get_attribute("class"))
        assert browser.find_elements(By.CSS_SELECTOR, "tr.event-row") == []

        # 2. a simulated agent publishes a burst of a real camera-trap frame; the feed shows the event
        # without a reload (the page object survives: no navigation happened)
        marker = browser.find_element(By.ID, "feed")
        frame = (images / "camera-trap" / "2021-06-30_SYFR0218_cougar.JPG").read_bytes()
        agent = SimAgent("cam-07", broker.host, broker.port, [frame], burst_size=2).connect()
        agent.publish_burst()
        assert agent.wait_acked(30)
        add_heartbeat(
            station.session_factory,
            "cam-07",
            {
                "battery_v": 12.6,
                "spool_depth": 0,
                "spool_bytes": 0,
                "disk_free_bytes": 12 * 1024**3,
                "clock_synced": True,
            },
            drift_s=-1.5,
        )
        row = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "tr.event-row")))
        assert marker.is_displayed()  # same document: it arrived live
        event_id = int(row.get_attribute("data-event-id"))
        browser.save_screenshot(str(screenshots / "02-feed-live.png"))

        # 3. open it: the frames with their boxes
        with station.session_factory() as db:
            event = db.get(Event, event_id)
            machine = (event.category, event.species, event.count)
        row.find_element(By.CSS_SELECTOR, "a.event-link").click()
        wait.until(ec.presence_of_element_located((By.ID, "review-form")))
        boxes = browser.find_elements(By.CSS_SELECTOR, ".stage .box")
        if event.category != "blank":
            assert boxes, "the event has detections but no box was drawn"
            assert all(b.size["width"] > 5 and b.size["height"] > 5 for b in boxes)
        images_loaded = (
            "return Array.from(document.querySelectorAll('.stage img'))"
            ".every(i => i.complete && i.naturalWidth > 0)"
        )
        wait.until(lambda d: d.execute_script(images_loaded))
        browser.save_screenshot(str(screenshots / "03-event-boxes.png"))

        # 4. correct the species
        species = browser.find_element(By.ID, "review-species")
        species.clear()
        species.send_keys("Panthera onca")
        browser.find_element(By.ID, "review-category").send_keys("animal")
        count = browser.find_element(By.ID, "review-count")
        count.clear()
        count.send_keys("1")
        browser.find_element(By.ID, "review-correct").click()
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#reviews .review-item")))
        assert "Panthera onca" in browser.find_element(By.ID, "reviews").text
        with station.session_factory() as db:
            reviews = list(db.scalars(select(Review).where(Review.event_id == event_id)))
            again = db.get(Event, event_id)
            assert (again.category, again.species, again.count) == machine  # never overwritten
        assert [(r.species, r.action) for r in reviews] == [("Panthera onca", "correct")]
        browser.save_screenshot(str(screenshots / "04-event-reviewed.png"))

        # 5. English, then Spanish again
        browser.find_element(By.ID, "lang-switch").click()
        wait.until(lambda d: d.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en")
        assert "Reviews" in browser.page_source and "Save correction" in browser.page_source
        browser.get(url + "/")
        wait.until(ec.presence_of_element_located((By.ID, "feed")))
        assert "Events" in browser.find_element(By.TAG_NAME, "h1").text
        browser.save_screenshot(str(screenshots / "05-feed-english.png"))
        browser.get(url + "/cameras")
        wait.until(ec.presence_of_element_located((By.ID, "cameras")))
        browser.save_screenshot(str(screenshots / "06-cameras-english.png"))
        browser.find_element(By.ID, "lang-switch").click()
        wait.until(lambda d: d.find_element(By.TAG_NAME, "html").get_attribute("lang") == "es")
        assert "Cámaras" in browser.find_element(By.TAG_NAME, "h1").text
        browser.save_screenshot(str(screenshots / "07-cameras.png"))
        browser.get(url + "/alerts")
        if machine[0] in ("animal", "person"):  # the rule matched: the alert and its delivery are listed
            wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "tr.alert-row li.delivery")))
            assert "fauna" in browser.find_element(By.ID, "alerts").text
        for path, name in (("/alerts", "08-alerts"), ("/rules", "09-rules"), ("/export", "10-export")):
            browser.get(url + path)
            wait.until(ec.presence_of_element_located((By.TAG_NAME, "h1")))
            browser.save_screenshot(str(screenshots / f"{name}.png"))
        agent.close()
        # no script error and no blocked resource on any page of the visit
        severe = [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
        assert severe == []
    assert len(list(screenshots.glob("*.png"))) >= 10
