"""A person's word over the machine's, on a real store (built by `testing.review_store`, no
models): verdicts, texts and reference picks as `reviews` rows; the versions that refuse a
stale save; undo; enrolment settled at once; a re-decision that keeps the person's verdict and
shows the conflict; .list import and CSV export; hostile text."""

from __future__ import annotations

import csv
import io

import pytest

from clonebench.core.errors import UserError
from clonebench.curate.reviews import ReviewConflict, ReviewRequest, export_reviews, import_list, review, reviews_csv, settle
from clonebench.curate.rules import RuleSet
from clonebench.store import Store, Verdict
from clonebench.testing.review_store import build


@pytest.fixture()
def db(tmp_path):
    return build(tmp_path / "store", speakers=("ann", "bob"), clips=12, reject_every=4)


def act(db, clip_id, action, reviewer="rita", **kw):
    with Store(db) as store:
        view = store.clip_view(clip_id)
        return review(store, ReviewRequest(clip_id, action, view.version, **kw), reviewer)


def test_a_person_overrules_the_rules_and_the_enrolment_follows_at_once(db):
    with Store(db, read_only=True) as store:
        before = store.enrolment("ann")
        view = store.clip_view("ann-0003")
    assert (view.status, view.reasons, view.version) == ("rejected", ("noise",), 0)

    out = act(db, "ann-0003", "accept")
    assert out.enrolment.accepted_s == pytest.approx(before.accepted_s + 4.0)
    assert out.enrolment_before.accepted_s == pytest.approx(before.accepted_s)
    with Store(db, read_only=True) as store:
        row = store.query("SELECT status, reasons, machine_status, machine_reasons, reviewed_by, text_source "
                          "FROM clip_verdicts WHERE clip_id = 'ann-0003'")[0]
        assert row == {"status": "accepted", "reasons": [], "machine_status": "rejected", "machine_reasons": ["noise"],
                       "reviewed_by": "rita", "text_source": "asr"}
        audit = store.query("SELECT action, status, before, after, machine_status, reviewer, source FROM reviews")
        assert audit == [{"action": "accept", "status": "accepted", "before": "rejected: noise", "after": "accepted",
                          "machine_status": "rejected", "reviewer": "rita", "source": "web"}]
        assert "ann-0003" in {v.clip.clip_id for v in store.accepted_clips(["ann"])}
        assert store.enrolment("ann").accepted_s == pytest.approx(before.accepted_s + 4.0)
        assert store.review_counts()["ann"] == {"reviewed": 1, "overruled": 1, "acts": 1}

    out = act(db, "ann-0000", "reject", reason="other", note="  a door  slams ")
    assert out.view.status == "rejected" and out.view.reasons == ("other",) and out.view.review.note == "a door slams"
    assert out.enrolment.accepted_s == pytest.approx(before.accepted_s)


def test_a_stale_save_is_refused_and_nothing_is_written(db):
    with Store(db) as store:
        seen = store.clip_view("ann-0001").version
        review(store, ReviewRequest("ann-0001", "reject", seen, reason="music"), "first")
        with pytest.raises(ReviewConflict, match="changed since you loaded it: first rejected it"):
            review(store, ReviewRequest("ann-0001", "accept", seen), "second")
        assert [r.reviewer for r in store.reviews(clip_id="ann-0001")] == ["first"]
        with pytest.raises(ReviewConflict, match="it has no review yet"):
            review(store, ReviewRequest("ann-0002", "accept", 3), "second")
        assert store.clip_view("ann-0001").status == "rejected"


def test_undo_takes_back_the_newest_standing_review_and_is_recorded(db):
    with Store(db, read_only=True) as store:
        start = store.enrolment("ann").accepted_s
    act(db, "ann-0002", "text", text="A corrected line.")
    act(db, "ann-0002", "reject", reason="clipping")
    out = act(db, "ann-0002", "undo")
    assert out.view.status == "accepted" and out.view.text == "A corrected line." and out.enrolment.accepted_s == start
    out = act(db, "ann-0002", "undo")
    assert out.view.text_kind == "asr" and out.view.review.text is None
    with pytest.raises(UserError, match="no review to take back"):
        act(db, "ann-0002", "undo")
    with Store(db, read_only=True) as store:
        rows = store.reviews(clip_id="ann-0002")
        assert [r.action for r in rows] == ["text", "reject", "undo", "undo"]
        assert rows[2].undoes == rows[1].review_id and rows[3].undoes == rows[0].review_id
        assert store.clip_view("ann-0002").version == 4


def test_a_re_decision_keeps_the_persons_verdict_and_shows_the_conflict(db):
    rules = RuleSet.load()

    def rules_say(status, *reasons):   # what a re-vet or a new rule set records
        with Store(db) as store:
            with store.transaction():
                store.record_verdicts(rules.version, ["bob-0003"], [Verdict("bob-0003", rules.version, status, reasons, ())])
                settle(store, "bob", rules)
            return store.clip_view("bob-0003"), store.enrolment("bob")

    act(db, "bob-0003", "accept")                       # the rules said rejected (noise)
    view, enrol = rules_say("rejected", "noise")        # the same again: the person knew, no conflict
    assert (view.status, view.overruled, view.conflict) == ("accepted", True, None)
    assert enrol.accepted_s == pytest.approx(40.0)
    view, _ = rules_say("accepted")                     # the rules come round: no conflict, nothing overruled
    assert (view.status, view.overruled, view.conflict) == ("accepted", False, None)
    view, enrol = rules_say("rejected", "music", "reverb")
    assert view.status == "accepted" and view.machine_reasons == ("music", "reverb") and enrol.accepted_s == pytest.approx(40.0)
    assert view.conflict == ("the rules now say rejected (music, reverb); "
                             "when rita decided accepted they said rejected (noise)")


def test_the_reference_pick_is_the_speakers_prompt_until_the_clip_is_rejected(db):
    with Store(db, read_only=True) as store:
        assert store.speaker_prompt("ann") is None
    with pytest.raises(UserError, match="only an accepted clip"):
        act(db, "ann-0003", "reference")
    act(db, "ann-0005", "reference")
    act(db, "ann-0005", "text", text="The reviewed words.")
    with Store(db, read_only=True) as store:
        p = store.speaker_prompt("ann")
        assert (p.clip_id, p.text, p.source, p.set_by) == ("ann-0005", "The reviewed words.", "clip ann-0005", "rita")
        assert p.path == store.clip_view("ann-0005").clip.path_32k
    act(db, "ann-0005", "reject", reason="noise")
    with Store(db, read_only=True) as store:
        assert store.speaker_prompt("ann") is None


def test_requests_are_checked_in_one_line():
    for kw, message in ((dict(action="delete"), "unknown action"), (dict(action="reject"), "reject needs a reason"),
                        (dict(action="reject", reason="other"), "needs a note"),
                        (dict(action="accept", reason="noise"), "only reject takes a reason"),
                        (dict(action="text", text="  "), "needs the words"),
                        (dict(action="text", text="x" * 3000), "at most 2000"),
                        (dict(action="accept", version=-1), "version must be")):
        with pytest.raises(UserError, match=message) as e:
            ReviewRequest("c", **{"version": 0, **kw})
        assert "\n" not in str(e.value)


def test_a_proofread_list_comes_back_as_reviews_once(db, tmp_path):
    from clonebench.curate.export import export_gpt_sovits

    doc = export_gpt_sovits(db, tmp_path / "export", ["ann"])
    listed = tmp_path / "export" / "clonebench.list"
    lines = listed.read_text(encoding="utf-8").splitlines()
    assert len(lines) == doc["clips"] == 9 and (tmp_path / "export" / "clonebench.clips.json").is_file()
    path, speaker, lang, _ = lines[0].split("|")
    lines[0] = "|".join([path, speaker, lang, "Proofread words, fixed by hand."])
    deleted = lines.pop(1).split("|")[0]
    lines.append("/nowhere/else.wav|ann|EN|not ours")
    lines.append(lines[0])                                       # the same clip twice
    listed.write_text("\n".join(lines) + "\n", encoding="utf-8")   # saved in place, as upstream's subfix does

    out = import_list(db, listed, "pat")
    assert (out.texts, out.rejected, out.unchanged, out.conflicts, out.deletions_checked) == (1, 1, 7, (), True)
    assert len(out.unmatched) == 2 and "else.wav" in out.unmatched[0] and "on line 1 already" in out.unmatched[1]
    again = import_list(db, listed, "pat")
    assert (again.texts, again.rejected, again.unchanged) == (0, 0, 9)   # 8 lines and the deleted clip, rejected already
    with Store(db, read_only=True) as store:
        first = store.clip_view(path.rsplit("/", 1)[1].removesuffix(".wav"))
        gone = store.clip_view(deleted.rsplit("/", 1)[1].removesuffix(".wav"))
        assert (first.text, first.text_kind) == ("Proofread words, fixed by hand.", "reviewed")
        assert gone.status == "rejected" and gone.review.note == "line deleted from clonebench.list"
        assert len(store.reviews()) == 2
    doc = export_gpt_sovits(db, tmp_path / "export2", ["ann"])
    assert doc["clips"] == 8 and "Proofread words, fixed by hand." in (tmp_path / "export2" / "clonebench.list").read_text()


def test_an_old_list_never_undoes_what_people_did_since_the_export(db, tmp_path):
    from clonebench.curate.export import export_gpt_sovits

    export_gpt_sovits(db, tmp_path / "export", ["ann"])
    listed = tmp_path / "export" / "clonebench.list"
    act(db, "ann-0000", "text", text="Fixed in the review app after the export.")
    act(db, "ann-0003", "accept")                                # not in the export: the rules had rejected it
    act(db, "ann-0001", "reject", reason="noise")
    out = import_list(db, listed, "pat")                        # the list exactly as exported
    assert (out.texts, out.rejected, out.conflicts) == (0, 0, ())
    lines = listed.read_text(encoding="utf-8").splitlines()      # now a person edits the line of ann-0000
    lines[0] = "|".join([*lines[0].split("|")[:3], "Edited in the list too."])
    listed.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = import_list(db, listed, "pat")
    assert out.texts == 0 and len(out.conflicts) == 1 and "changed since you loaded it" in out.conflicts[0]
    with Store(db, read_only=True) as store:
        assert store.clip_view("ann-0000").text == "Fixed in the review app after the export."
        assert store.clip_view("ann-0003").status == "accepted" and store.clip_view("ann-0001").reasons == ("noise",)
    other = tmp_path / "by-hand.list"                           # no manifest: texts compared with the store's now
    other.write_text(lines[0] + "\n", encoding="utf-8")
    out = import_list(db, other, "pat")
    assert (out.texts, out.rejected, out.deletions_checked) == (1, 0, False)


def test_reviews_export_as_csv(db, tmp_path):
    act(db, "ann-0001", "reject", reason="music")
    act(db, "ann-0001", "undo")
    act(db, "bob-0000", "text", text='Quotes "and", commas; all kept.')
    act(db, "bob-0001", "text", text='=HYPERLINK("http://evil.example","click")')
    n = export_reviews(db, tmp_path / "out" / "reviews.csv")
    rows = list(csv.DictReader(io.StringIO((tmp_path / "out" / "reviews.csv").read_text(encoding="utf-8"))))
    assert n == 4 and [r["action"] for r in rows] == ["reject", "undo", "text", "text"]
    assert rows[3]["after"] == """'=HYPERLINK("http://evil.example","click")"""   # a spreadsheet shows it, never runs it
    assert rows[0]["taken_back"] == "yes" and rows[1]["undoes"] == rows[0]["review_id"]
    assert rows[2]["after"] == 'Quotes "and", commas; all kept.' and rows[0]["machine_status"] == "accepted"
    with Store(db, read_only=True) as store:
        assert reviews_csv(store) == (tmp_path / "out" / "reviews.csv").read_text(encoding="utf-8")


def test_hostile_text_is_kept_verbatim_and_escaped_in_the_page(db):
    from clonebench.review.pages import speaker_html
    from clonebench.review.rows import speaker_page

    hostile = '</script><script>window.__xss=1</script><img src=x onerror="window.__xss=2">'
    act(db, "ann-0004", "text", text=hostile)
    with Store(db, read_only=True) as store:
        assert store.clip_view("ann-0004").text == hostile
        html = speaker_html(speaker_page(store, "ann"), "<b>rita</b>", False)
    assert "window.__xss" in html and "</script><script>window" not in html and "<img src=x" not in html
    assert "&lt;b&gt;rita&lt;/b&gt;" in html


def test_the_reports_show_who_overruled_what(db, tmp_path):
    from clonebench.reports.dataset import dataset_report
    from clonebench.reports.speaker import speaker_report

    act(db, "ann-0003", "accept")
    act(db, "ann-0001", "reject", reason="other", note="<i>a cough</i>")
    act(db, "ann-0002", "text", text="Words a person wrote.")
    act(db, "ann-0002", "undo")
    rules = RuleSet.load()
    with Store(db) as store:   # the rules now reject ann-0003 for another reason: a conflict
        with store.transaction():
            store.record_verdicts(rules.version, ["ann-0003"], [Verdict("ann-0003", rules.version, "rejected", ("music",), ())])
            settle(store, "ann", rules)
    html = speaker_report(db, "ann", tmp_path / "ann.html").read_text(encoding="utf-8")
    assert "by rita; the rules said rejected: music" in html
    assert "by rita; the rules said accepted" in html
    assert "rita rejected it (other: &lt;i&gt;a cough&lt;/i&gt;)" in html and "<i>a cough" not in html
    assert "the rules now say rejected (music); when rita decided accepted they said rejected (noise)" in html
    assert "(taken back)" in html and html.count("<tr class=\"taken-back\">") == 1
    html = dataset_report(db, tmp_path / "dataset.html").read_text(encoding="utf-8")
    assert "2 clips reviewed by a person, 2 of them overruling the rules" in html


def test_rejecting_every_clip_then_undoing_brings_the_centroid_back(tmp_path):
    import numpy as np

    from clonebench.instruments.speakers import ENCODER

    db = build(tmp_path / "store", speakers=("dee",), clips=2, reject_every=0)
    with Store(db) as store:
        with store.transaction():
            for i in ("dee-0000", "dee-0001"):
                store.put_embedding(i, ENCODER, np.ones(256, np.float32) / 16, None)
            settle(store, "dee", encoder=ENCODER)
        assert "dee" in store.speaker_embeddings(ENCODER)
    act(db, "dee-0000", "reject", reason="noise")
    act(db, "dee-0001", "reject", reason="noise")
    with Store(db, read_only=True) as store:
        assert "dee" not in store.speaker_embeddings(ENCODER) and store.newest_encoder("dee") == ENCODER
    out = act(db, "dee-0001", "undo")
    assert out.enrolment.accepted_s == pytest.approx(4.0)
    with Store(db, read_only=True) as store:
        assert store.speaker_embeddings(ENCODER)["dee"].shape == (256,)


def test_a_verdict_made_on_a_page_the_rules_changed_since_is_refused(db):
    rules = RuleSet.load()
    with Store(db) as store:
        seen = store.clip_view("ann-0005")
        with store.transaction():                           # a re-vet after the page was loaded
            store.record_verdicts(rules.version, ["ann-0005"], [Verdict("ann-0005", rules.version, "rejected", ("too_fast",), ())])
        with pytest.raises(ReviewConflict, match=r"rules' verdict on clip ann-0005 changed .*now rejected: too_fast"):
            review(store, ReviewRequest("ann-0005", "agree", seen.version, machine="accepted"), "rita")
        assert store.reviews(clip_id="ann-0005") == []
        out = review(store, ReviewRequest("ann-0005", "agree", seen.version, machine="rejected: too_fast"), "rita")
        assert out.view.status == "rejected" and out.view.review.status_by == "rita"
        with pytest.raises(UserError, match="text already"):
            review(store, ReviewRequest("ann-0005", "text", 1, text=out.view.text), "rita")


def test_prompt_clear_takes_back_a_reviewers_pick(db):
    from conftest import run_cli

    act(db, "ann-0002", "reference")
    code, _, err = run_cli("prompt", "clear", "ann", "--db", str(db), check_json=False)
    assert code == 0, err
    with Store(db, read_only=True) as store:
        assert store.speaker_prompt("ann") is None
        assert [(r.action, r.reviewer) for r in store.reviews(clip_id="ann-0002")] == [
            ("reference", "rita"), ("undo", "clonebench prompt clear")]
