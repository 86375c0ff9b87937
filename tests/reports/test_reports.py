"""HTML reports in a real headless Chromium (Debian's `chromium` + `chromedriver`, via Selenium;
no browser download), from a store the test fills with real speech and hostile text."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from browser import ARTIFACTS, PLAYABLE, browser, check_in_browser
from conftest import run_cli

from clonebench.core.audio import write_wav
from clonebench.instruments.speakers import ENCODER
from clonebench.store import ASR, GIVEN, Clip, Enrolment, Recording, Store, Transcript, Verdict, Word
from clonebench.testing import corpus

XSS = ['<script>window.__xss = 1</script>', '"><img src=x onerror="window.__xss = 2">']


@pytest.fixture(scope="session")
def hostile_store(tmp_path_factory) -> Path:
    """A vetted-looking speaker with 12 real clips; transcripts, file names and advice carry
    HTML and script payloads."""
    root = tmp_path_factory.mktemp("reportstore")
    db = root / "clonebench.duckdb"
    rng = np.random.default_rng(0)
    with Store(db) as store:
        store.put_speaker("mallory", "en")
        prompts = corpus.prompts("en")[:12]
        for k, p in enumerate(prompts):
            x = corpus.load_prompt(p)
            sha, dur = f"{k:064x}", len(x) / 16000
            source = f'{XSS[1]}take{k}.wav' if k == 0 else f"take{k}.wav"
            p16, p32 = root / "clips" / f"c{k}_16k.wav", root / "clips" / f"c{k}_32k.wav"
            write_wav(p16, x, 16000)
            write_wav(p32, np.repeat(x, 2), 32000)
            cid = f"clip{k:02d}"
            store.add_recording(Recording(sha, "mallory", source, None, None, None, dur),
                                [Clip(cid, sha, "mallory", 0.0, dur, dur, str(p32), str(p16), "test")], {}, "test")
            rejected = k % 4 == 0
            store.record_verdicts("vet-rules-1+test", [cid], [Verdict(cid, "vet-rules-1+test", "rejected" if rejected
                                                                      else "accepted", ("noise",) if rejected else (),
                                                                      ("possible_second_voice",) if k == 2 else ())])
            text = f"{XSS[k % 2]} {p.text}" if k < 4 else p.text
            store.put_asr(Transcript(cid, ASR, text, producer="test"),
                          [Word(cid, i, w, 0.0, 0.0, 0.3 if i == 1 else 0.9) for i, w in enumerate(text.split())])
            if k == 1:
                store.put_clip_texts([Transcript(cid, GIVEN, XSS[0] + " hello", producer="test")])
            store.put_metrics(cid, {"snr_db": 40 - 30 * rejected + k, "dnsmos_ovrl": 3.0 - rejected, "speech_rate": 4.0 + k / 10,
                                    "spk_centroid_cos": 0.9}, "test")
            store.put_embedding(cid, ENCODER, rng.normal(size=256), None)
        store.record_enrolment(Enrolment("mallory", "vet-rules-1+test", "insufficient", 30, 12,
                                         [f"background noise in 3 clips {XSS[0]}"]))
    return db


def test_speaker_report_escapes_hostile_text(hostile_store, tmp_path):
    out = tmp_path / "mallory.html"
    code, _, err = run_cli("report", "speaker", "mallory", "--db", str(hostile_store), "--out", str(out), check_json=False)
    assert code == 0, err
    html = out.read_text()
    for payload in XSS:
        assert payload not in html
    assert "&lt;script&gt;window.__xss = 1&lt;/script&gt;" in html
    assert "&#34;&gt;&lt;img src=x onerror=" in html
    assert html.count("<audio") == 12 and "<mark" in html and "<del>" in html
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', html)  # nothing loaded from the network


def test_speaker_report_in_chromium(hostile_store):
    from selenium.webdriver.common.by import By

    ARTIFACTS.mkdir(exist_ok=True)
    out = hostile_store.parent / "reports" / "mallory.html"
    code, _, err = run_cli("report", "speaker", "mallory", "--db", str(hostile_store), check_json=False)
    assert code == 0, err
    assert out.exists()  # the default place: beside the store
    d = browser()
    try:
        d.get(out.as_uri())
        assert d.execute_script("return window.__xss === undefined")
        assert d.find_element(By.ID, "banner").text.startswith("INSUFFICIENT")
        # the clip table sorts: click the speaking-rate column twice
        header = [th for th in d.find_elements(By.CSS_SELECTOR, "#clips th") if th.text.startswith("rate")][0]
        col = d.execute_script("return Array.prototype.indexOf.call(arguments[0].parentNode.children, arguments[0])", header)
        read = lambda: [float(r.find_elements(By.TAG_NAME, "td")[col].get_attribute("data-sort"))  # noqa: E731
                        for r in d.find_elements(By.CSS_SELECTOR, "#clips tbody tr")]
        header.click()
        up = read()
        header.click()
        down = read()
        assert up == sorted(up) and down == sorted(up, reverse=True) and up != down
        # the filter hides rejected clips
        d.execute_script("var s = document.getElementById('status'); s.value = 'rejected'; s.dispatchEvent(new Event('change'))")
        assert len([r for r in d.find_elements(By.CSS_SELECTOR, "#clips tbody tr") if r.is_displayed()]) == 3
        # and "flagged to check" shows the one accepted clip with weak evidence, its flag on it
        d.execute_script("var s = document.getElementById('status'); s.value = 'flagged'; s.dispatchEvent(new Event('change'))")
        shown = [r for r in d.find_elements(By.CSS_SELECTOR, "#clips tbody tr") if r.is_displayed()]
        assert len(shown) == 1 and "possible_second_voice" in shown[0].text and "accepted" in shown[0].text
        # every player has a source the browser can load
        states = d.execute_async_script(PLAYABLE)
        assert len(states) == 12 and all(isinstance(s, (int, float)) and s > 0.5 for s in states), states
        d.save_screenshot(str(ARTIFACTS / "speaker-report.png"))
        errors = [e for e in d.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
        assert d.execute_script("return window.__xss === undefined")
    finally:
        d.quit()
    assert (ARTIFACTS / "speaker-report.png").stat().st_size > 10_000


def test_dataset_report(hostile_store):
    code, _, err = run_cli("report", "dataset", "--db", str(hostile_store), check_json=False)
    assert code == 0, err
    out = hostile_store.parent / "reports" / "dataset.html"
    assert out.exists()                                            # beside the store, with the speaker reports
    from selenium.webdriver.common.by import By

    d = browser()
    try:
        d.get(out.as_uri())
        assert d.find_element(By.ID, "banner").text.startswith("0 OF 1 SPEAKERS READY")
        cells = [td.text for td in d.find_elements(By.CSS_SELECTOR, "#speakers tbody tr td")]
        assert cells[:4] == ["mallory", "en", "insufficient", "12"]
        assert cells[6] == "75%"                                   # 9 of 12 clips accepted
        link = d.find_element(By.CSS_SELECTOR, "#speakers a").get_attribute("href")
        assert link.endswith("/reports/mallory.html")              # the speaker report's default place
        reasons = [[td.text for td in tr.find_elements(By.TAG_NAME, "td")] for tr in d.find_elements(By.CSS_SELECTOR, "#reasons tbody tr")]
        assert reasons == [["noise", "background noise or chatter", "3", "1"]]
        assert d.find_elements(By.CSS_SELECTOR, "#reasons-chart svg")
    finally:
        d.quit()
    check_in_browser(out, "dataset-report.png")
