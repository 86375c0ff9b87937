"""Headless Chromium for the report tests (Debian's chromium + chromium-driver, driven by Selenium)."""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import ROOT

ARTIFACTS = ROOT / "test-artifacts"


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert browser and driver, "Debian chromium and chromium-driver are needed (make setup installs them)"
    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1600",
                "--allow-file-access-from-files", "--autoplay-policy=no-user-gesture-required"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=opts)


PLAYABLE = """
    var done = arguments[arguments.length - 1], audios = document.querySelectorAll('audio'), left = audios.length, out = [];
    if (!left) done(out);
    audios.forEach(function (a, i) {
      a.addEventListener('loadedmetadata', function () { out[i] = a.duration; if (--left === 0) done(out); });
      a.addEventListener('error', function () { out[i] = 'error'; if (--left === 0) done(out); });
      a.load();
    });"""


def check_in_browser(page: Path, artifact: str) -> int:
    """Open a report in Chromium: no console errors, no injected script ran, every player loads;
    save a screenshot to test-artifacts/. Returns the number of players."""
    ARTIFACTS.mkdir(exist_ok=True)
    d = browser()
    try:
        d.get(page.as_uri())
        durations = d.execute_async_script(PLAYABLE)
        assert all(isinstance(x, (int, float)) and x > 0.1 for x in durations), durations
        assert d.execute_script("return window.__xss === undefined")
        d.save_screenshot(str(ARTIFACTS / artifact))
        errors = [e for e in d.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
    finally:
        d.quit()
    assert (ARTIFACTS / artifact).stat().st_size > 10_000
    return len(durations)


