"""Headless Chromium on a real station, the ecologist's way through the dashboard: log in, set a
camera's position on its page, see the camera on the map, open the activity plot and the abundance
table. Screenshots go to $YAGUAR_SCREENSHOT_DIR (default: a temp folder, printed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_browser import browser, screenshots  # noqa: F401 - fixtures
from tests.support.dashboard_web import PASSWORD, add_user, seed
from tests.support.station import running_station

pytestmark = pytest.mark.processes  # one after another under xdist: tests/conftest.py

PERIOD = "from=2026-11-01&to=2026-11-30"


def test_ecologist_places_a_camera_sees_it_on_the_map_and_reads_the_analysis(
    broker,
    tmp_path: Path,
    browser,  # noqa: F811
    screenshots: Path,  # noqa: F811
    shared_data: Path,
) -> None:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 60, ignored_exceptions=(StaleElementReferenceException,))
    with running_station(broker, tmp_path / "station") as station:
        seed(station.session_factory, station.context.media_root, shared_data, events=20)
        add_user(station.session_factory, "ecologa", "admin")
        url = station.http_url

        # 1. log in
        browser.get(url + "/cameras/cam-01")
        wait.until(ec.presence_of_element_located((By.ID, "login-form")))
        browser.find_element(By.ID, "username").send_keys("ecologa")
        browser.find_element(By.ID, "password").send_keys(PASSWORD)
        browser.find_element(By.ID, "login-submit").click()

        # 2. set the camera's position (since 1 November, camera time) on its page
        wait.until(ec.presence_of_element_located((By.ID, "position-form")))
        assert "(-03:00)" in browser.find_element(By.ID, "camera-facts").text
        browser.find_element(By.ID, "position-latitude").send_keys("-22.25")
        browser.find_element(By.ID, "position-longitude").send_keys("-60.75")
        browser.execute_script(
            "document.querySelector('#position-form input[name=at]').value = '2026-11-01T06:00'"
        )
        browser.save_screenshot(str(screenshots / "eco-01-camera-position.png"))
        browser.find_element(By.ID, "position-save").click()
        wait.until(lambda d: "-22.250000, -60.750000" in d.find_element(By.ID, "camera-position").text)
        rows = browser.find_elements(By.CSS_SELECTOR, "#deployments tr[data-deployment-id]")
        assert len(rows) == 1
        browser.save_screenshot(str(screenshots / "eco-02-camera-deployed.png"))

        # 3. the camera on the map, linked to its page
        browser.get(url + "/map")
        marker = wait.until(ec.visibility_of_element_located((By.ID, "map-cam-cam-01")))
        assert marker.size["width"] > 5
        other = browser.find_element(By.ID, "map-cam-cam-02")  # seeded with the station's position
        assert marker.location != other.location, "the moved camera stands apart on the plan"
        browser.save_screenshot(str(screenshots / "eco-03-map.png"))
        marker.click()
        wait.until(ec.presence_of_element_located((By.ID, "deployments")))
        assert browser.current_url.endswith("/cameras/cam-01")

        # 4. the activity plot (drawn on the station, inline SVG)
        browser.get(url + "/analysis/activity?" + PERIOD)
        chart = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "#analysis-chart svg")))
        assert chart.size["width"] > 300 and chart.size["height"] > 100
        assert browser.find_element(By.ID, "day-night").text
        browser.save_screenshot(str(screenshots / "eco-04-activity.png"))

        # 5. the abundance table: cam-01 now has effort, so its index is a number
        browser.get(url + "/analysis/abundance?" + PERIOD + "&camera=cam-01")
        table = wait.until(ec.visibility_of_element_located((By.ID, "analysis-table")))
        cells = [
            row.find_elements(By.TAG_NAME, "td") for row in table.find_elements(By.CSS_SELECTOR, "tbody tr")
        ]
        assert cells and any(float(c[4].text) > 0 for c in cells if c[4].text not in ("—", ""))
        browser.save_screenshot(str(screenshots / "eco-05-abundance.png"))
        browser.get(url + "/help/ranger")
        wait.until(ec.presence_of_element_located((By.ID, "guide-title")))
        browser.save_screenshot(str(screenshots / "eco-06-ranger-guide.png"))

        severe = [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
        assert severe == []
    assert len(list(screenshots.glob("eco-*.png"))) == 6
