"""The review app as people and programs meet it: a real `clonebench review` server, httpx for
its errors and keys, and headless Chromium driving the keys on a real store."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from browser import ARTIFACTS, browser
from conftest import start_server

from clonebench.store import Store
from clonebench.testing.review_store import build


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    db = build(tmp_path_factory.mktemp("review") / "store", speakers=("ann", "bob"), clips=12, reject_every=4,
               texts={"bob-0002": '<img src=x onerror="window.__xss=1">'})
    proc, base = start_server("--db", str(db), "--reviewer", "rita", command="review")
    yield {"db": db, "base": base}
    proc.terminate()
    proc.wait(10)


def _post(base, clip, body, **kw):
    return httpx.post(f"{base}/api/clips/{clip}/review", json=body, timeout=30, **kw)


def test_bad_requests_get_one_line_json_errors(site):
    base = site["base"]
    cases = [
        (httpx.post(f"{base}/api/clips/bob-0001/review", content=b"action=accept", timeout=30,
                    headers={"content-type": "application/x-www-form-urlencoded"}), 415, "application/json"),
        (httpx.post(f"{base}/api/clips/bob-0001/review", content=b"{", timeout=30,
                    headers={"content-type": "application/json"}), 422, "not valid JSON"),
        (_post(base, "bob-0001", {"action": "accept", "version": 0, "colour": "red"}), 422, "colour"),
        (_post(base, "bob-0001", {"action": "accept"}), 422, "version"),
        (_post(base, "bob-0001", {"action": "reject", "version": 0, "reason": "bored"}), 422, "reject needs a reason"),
        (_post(base, "nope", {"action": "accept", "version": 0}), 404, "no clip 'nope'"),
        (httpx.post(f"{base}/api/clips/bob-0001/review", content=b"{" + b" " * 70000 + b"}", timeout=30,
                    headers={"content-type": "application/json"}), 413, "over 65536 bytes"),
        (httpx.get(f"{base}/api/speakers/nobody", timeout=30), 404, "no speaker"),
        (httpx.get(f"{base}/audio/..%2F..%2Fstore.duckdb", timeout=30), 404, "nothing here"),
        (httpx.get(f"{base}/api/clips/nope/wave", timeout=30), 404, "no clip"),
        (httpx.delete(f"{base}/api/speakers/ann", timeout=30), 405, "Method Not Allowed"),
        (httpx.post(f"{base}/login", content=(b"k" * 1024 for _ in range(70)), timeout=30,   # chunked, no length
                    headers={"content-type": "application/x-www-form-urlencoded"}), 413, "over 4096 bytes"),
        (httpx.get(f"{base}/api/reviews.csv", headers={"Host": "rebound.example"}, timeout=30), 421,
         "answers to 127.0.0.1 and localhost only"),
    ]
    for r, status, words in cases:
        assert r.status_code == status, (r.status_code, r.text)
        assert words in r.json()["error"] and "\n" not in r.json()["error"], r.text
    with Store(site["db"], read_only=True) as store:
        assert store.reviews(clip_id="bob-0001") == []


def test_the_api_applies_acts_and_refuses_a_stale_one_with_the_clip_as_it_stands(site):
    base = site["base"]
    page = httpx.get(f"{base}/api/speakers/bob", timeout=30).json()
    clip = next(c for c in page["clips"] if c["clip_id"] == "bob-0007")
    assert (clip["status"], clip["machine_reasons"], clip["version"]) == ("rejected", ["music"], 0)
    r = _post(base, "bob-0007", {"action": "accept", "version": 0})
    assert r.status_code == 200 and r.json()["clip"]["decided_by"] == "rita" and r.json()["clip"]["version"] == 1
    assert r.json()["enrolment"]["accepted_s"] == r.json()["enrolment_before"]["accepted_s"] + 4.0
    stale = _post(base, "bob-0007", {"action": "reject", "version": 0, "reason": "noise"})
    assert stale.status_code == 409 and "rita accepted it" in stale.json()["error"]
    assert stale.json()["clip"]["status"] == "accepted" and stale.json()["clip"]["version"] == 1
    found = httpx.get(f"{base}/api/search", params={"q": "harbour"}, timeout=30).json()["clips"]
    assert {c["speaker"] for c in found} == {"ann", "bob"} and all("harbour" in c["text"] for c in found)
    csv_text = httpx.get(f"{base}/api/reviews.csv", timeout=30).text
    assert csv_text.splitlines()[0].startswith("review_id,made_at,reviewer") and ",bob-0007,accept," in csv_text
    wave = httpx.get(f"{base}/api/clips/bob-0007/wave", timeout=30).json()
    assert wave["whole_recording"] and wave["from_s"] < wave["start_s"] < wave["end_s"] < wave["to_s"]
    assert len(wave["peaks"]) == 600
    audio = httpx.get(f"{base}/audio/bob-0007", timeout=30)
    assert audio.status_code == 200 and audio.content[:4] == b"RIFF"
    with Store(site["db"], read_only=True) as store:   # a clip whose files were deleted: 404, and the server carries on
        clip = store.clip_view("bob-0011").clip
    for path in (clip.path_32k, clip.path_16k, str(site["db"].parent / "recordings" / "bob.wav")):
        Path(path).rename(path + ".away")
    try:
        for url in ("/audio/bob-0011", "/api/clips/bob-0011/wave"):
            r = httpx.get(base + url, timeout=30)
            assert r.status_code == 404 and "is gone" in r.json()["error"], r.text
    finally:
        for path in (clip.path_32k, clip.path_16k, str(site["db"].parent / "recordings" / "bob.wav")):
            Path(path + ".away").rename(path)
    assert httpx.get(f"{base}/healthz", timeout=30).status_code == 200


def test_with_keys_the_key_names_the_reviewer_and_a_browser_logs_in(tmp_path):
    db = build(tmp_path / "store", speakers=("cal",), clips=4)
    keys = tmp_path / "keys.txt"
    keys.write_text("# reviewers\nmaria k-maria-123\nk-anon-456\n")
    proc, base = start_server("--db", str(db), "--api-keys", str(keys), command="review")
    try:
        assert httpx.get(f"{base}/api/speakers", timeout=30).status_code == 401
        r = httpx.get(f"{base}/", timeout=30)
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
        bad = _post(base, "cal-0000", {"action": "agree", "version": 0}, headers={"Authorization": "Bearer wrong"})
        assert bad.status_code == 401
        ok = _post(base, "cal-0000", {"action": "agree", "version": 0}, headers={"Authorization": "Bearer k-maria-123"})
        assert ok.status_code == 200 and ok.json()["clip"]["decided_by"] == "maria"
        with httpx.Client(base_url=base, timeout=30) as c:
            assert c.post("/login", data={"key": "nope", "next": "/"}).status_code == 401
            r = c.post("/login", data={"key": "k-anon-456", "next": "//evil.example/"})
            assert r.status_code == 303 and r.headers["location"] == "/"
            assert "HttpOnly" in r.headers["set-cookie"] and "SameSite=strict" in r.headers["set-cookie"]
            r = c.post("/api/clips/cal-0001/review", json={"action": "reject", "version": 0, "reason": "noise"})
            assert r.status_code == 200 and r.json()["clip"]["decided_by"].startswith("key-")
    finally:
        proc.terminate()
        proc.wait(10)


def _wait(d, script, timeout=20):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(d, timeout).until(lambda drv: drv.execute_script(script))


def _keys(d, *keys):
    from selenium.webdriver.common.action_chains import ActionChains

    for k in keys:
        ActionChains(d).send_keys(k).perform()


def _row(d, clip_id):
    return d.execute_script("return window.__review.current()") if clip_id is None else d.execute_script(
        "var r = document.querySelector('#rows tr[data-id=\"' + arguments[0] + '\"]'); return r && r.innerText", clip_id)


def test_a_person_reviews_a_speaker_with_the_keys_in_chromium(site):
    from clonebench.model.trainset import training_set

    base, db = site["base"], site["db"]
    ARTIFACTS.mkdir(exist_ok=True)
    d = browser()
    try:
        d.get(f"{base}/speakers/ann")
        _wait(d, "return document.querySelectorAll('#rows tr').length === 12")
        assert "insufficient" in d.find_element("id", "enrolment").text
        _keys(d, "j", "j", "j")                                          # ann-0003: rejected (noise) by the rules
        assert d.execute_script("return window.__review.current().clip_id") == "ann-0003"
        _keys(d, "a")
        _wait(d, "return window.__review.current().decided_by === 'rita'")
        assert "40.0 s accepted" in d.find_element("id", "enrolment").text
        _keys(d, "j", "r")                                               # ann-0004: reject, first reason in the picker
        _wait(d, "return !document.getElementById('picker').hidden")
        _keys(d, "2")
        _wait(d, "return window.__review.current().status === 'rejected'")
        reason = d.execute_script("return window.__review.current().reasons[0]")
        _keys(d, "j", "e")                                               # ann-0005: a corrected text
        _wait(d, "return !document.getElementById('editor').hidden")
        editor = d.find_element("id", "editor")
        editor.clear()
        editor.send_keys("A sentence a person heard <b>clearly</b>.")
        _keys(d, "\ue007")                                               # Enter
        _wait(d, "return window.__review.current().text_source === 'reviewed'")
        _keys(d, "p")                                                    # ...picked as the reference
        _wait(d, "return window.__review.current().reference === true")
        _keys(d, "j", "r", "o")                                          # ann-0006: other + a note
        _wait(d, "return document.getElementById('note') !== null")
        d.find_element("id", "note").send_keys("a dog barks at the end\ue007")
        _wait(d, "return window.__review.current().reasons[0] === 'other'")
        _keys(d, "u")                                                    # ...and taken back
        _wait(d, "return window.__review.current().status === 'accepted' && window.__review.current().decided_by === null")
        assert d.execute_script("return window.__review.filter('overruled')") == 2
        assert d.execute_script("return window.__review.filter('unreviewed')") == 9
        assert d.execute_script("return window.__xss === undefined")
        d.execute_script("window.__review.filter('')")
        d.save_screenshot(str(ARTIFACTS / "review.png"))
        errors = [e for e in d.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
    finally:
        d.quit()

    with Store(db, read_only=True) as store:
        acts = [(r.clip_id, r.action, r.reviewer) for r in store.reviews(speaker="ann")]
        assert acts == [("ann-0003", "accept", "rita"), ("ann-0004", "reject", "rita"), ("ann-0005", "text", "rita"),
                        ("ann-0005", "reference", "rita"), ("ann-0006", "reject", "rita"), ("ann-0006", "undo", "rita")]
        assert store.clip_view("ann-0004").reasons == (reason,)
        assert store.enrolment("ann").accepted_s == pytest.approx(36.0)   # +4 accepted, -4 rejected
        assert store.speaker_prompt("ann").clip_id == "ann-0005"
    trainset = training_set(db, ["ann"])
    kept = {c.clip_id: c for c in trainset.train + trainset.val}
    assert "ann-0003" in kept and "ann-0004" not in kept and "ann-0006" in kept
    assert kept["ann-0005"].text == "A sentence a person heard <b>clearly</b>."
    assert (ARTIFACTS / "review.png").stat().st_size > 20_000


def test_two_reviewers_on_one_clip_the_second_is_told_and_loses_nothing(site):
    base, db = site["base"], site["db"]
    first, second = browser(), browser()
    try:
        for d in (first, second):
            d.get(f"{base}/speakers/bob#bob-0010")
            _wait(d, "return window.__review && window.__review.current().clip_id === 'bob-0010'")
        _keys(first, "e")
        _wait(first, "return !document.getElementById('editor').hidden")
        first.find_element("id", "editor").send_keys(" (first)\ue007")
        _wait(first, "return window.__review.current().text_source === 'reviewed'")
        _keys(second, "e")
        _wait(second, "return !document.getElementById('editor').hidden")
        second.find_element("id", "editor").send_keys(" (second)\ue007")
        _wait(second, "return !document.getElementById('message').hidden && "
                      "document.getElementById('message').classList.contains('error')")
        message = second.find_element("id", "message").text
        assert "changed since you loaded it" in message and "(second)" in message   # the lost words are shown
        assert second.execute_script("return window.__review.current().text").endswith("(first)")
        _keys(second, "e")                                              # the page now has the new version: a retry saves
        _wait(second, "return !document.getElementById('editor').hidden")
        second.find_element("id", "editor").send_keys(" (second)\ue007")
        _wait(second, "return window.__review.current().text.endsWith('(first) (second)')")
    finally:
        first.quit()
        second.quit()
    with Store(db, read_only=True) as store:
        rows = store.reviews(clip_id="bob-0010")
        assert [r.after.rsplit(" ", 1)[-1] for r in rows] == ["(first)", "(second)"]


def test_a_500_clip_page_loads_and_filters(tmp_path):
    db = build(tmp_path / "big", speakers=("many",), clips=500, reject_every=5, clip_s=1.0)
    proc, base = start_server("--db", str(db), command="review")
    d = browser()
    try:
        d.get(f"{base}/speakers/many")
        _wait(d, "return document.querySelectorAll('#rows tr').length === 500")
        _wait(d, "return performance.getEntriesByName('first-contentful-paint').length === 1")   # it painted
        assert d.execute_script("return window.__review.filter('rejected')") == 100
        assert d.execute_script("return document.querySelectorAll('#rows tr').length") == 100
        d.find_element("css selector", "th[data-key='snr_db']").click()
        snr = d.execute_script("return Array.from(document.querySelectorAll('#rows tr')).map("
                               "r => parseFloat(r.children[8].innerText))")
        assert snr == sorted(snr)
    finally:
        d.quit()
        proc.terminate()
        proc.wait(10)


def test_while_another_command_writes_the_store_a_save_is_told_to_retry_and_then_lands(site):
    base, db = site["base"], site["db"]
    version = httpx.get(f"{base}/api/speakers/bob", timeout=30).json()["clips"][9]["version"]
    with Store(db):                                    # as `vet` holds it while it writes
        busy = _post(base, "bob-0009", {"action": "agree", "version": version})
        assert busy.status_code == 503 and busy.headers["retry-after"] == "2"
        assert "in use by another clonebench command" in busy.json()["error"]
    ok = _post(base, "bob-0009", {"action": "agree", "version": version})
    assert ok.status_code == 200 and ok.json()["clip"]["decided_by"] == "rita"


def test_review_import_and_export_from_the_command_line(tmp_path):
    from conftest import run_cli

    from clonebench.curate.export import export_gpt_sovits

    db = build(tmp_path / "store", speakers=("cal",), clips=4, reject_every=0)
    export_gpt_sovits(db, tmp_path / "export")
    lines = (tmp_path / "export" / "clonebench.list").read_text(encoding="utf-8").splitlines()
    path, speaker, lang, _ = lines[2].split("|")
    lines[2] = f"{path}|{speaker}|{lang}|Words fixed in the subfix tool."
    proofread = tmp_path / "export" / "clonebench.list"
    proofread.write_text("\n".join(lines[:3]) + "\n", encoding="utf-8")
    code, doc, err = run_cli("review", "import", str(proofread), "--reviewer", "sam", "--db", str(db), "--json")
    assert code == 0, err
    assert (doc["texts"], doc["rejected"], doc["unchanged"], doc["unmatched"], doc["conflicts"]) == (1, 1, 2, [], [])
    code, _, err = run_cli("review", "export", str(tmp_path / "reviews.csv"), "--db", str(db), check_json=False)
    assert code == 0, err
    text = (tmp_path / "reviews.csv").read_text(encoding="utf-8").splitlines()
    assert len(text) == 3 and ",sam,cal,cal-0002,text," in text[1] and ",sam,cal,cal-0003,reject," in text[2]
    code, _, err = run_cli("review", "import", str(tmp_path / "missing.list"), "--db", str(db), check_json=False)
    assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1
