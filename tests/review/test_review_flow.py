"""A person's decisions on a really vetted speaker (Allison's prompts, through `clonebench vet`)
survive a re-vet and reach every later stage: training's set, export's .list, the synthesis
prompt, the voice service's reference, evaluation's references and the reports."""

from __future__ import annotations

import pytest
from conftest import allison_takes, run_cli

from clonebench.curate.reviews import ReviewRequest, review
from clonebench.store import Store


@pytest.fixture(scope="module")
def vetted(tmp_path_factory):
    root = tmp_path_factory.mktemp("flow")
    db = root / "store.duckdb"
    allison_takes(root / "allison", root / "allison.tsv", 70, prompts=30)
    args = ("vet", str(root / "allison"), "--speaker", "allison", "--transcripts", str(root / "allison.tsv"),
            "--db", str(db), "--max-clip", "10", "--no-report", "--json")
    code, doc, err = run_cli(*args)
    assert code == 0, err
    return {"root": root, "db": db, "args": args, "first": doc}


def test_reviews_survive_a_re_vet_and_reach_every_stage(vetted, tmp_path):
    from clonebench.curate.export import export_gpt_sovits
    from clonebench.instruments.references import from_store, prompt_from_store
    from clonebench.instruments.speakers import SpeakerEncoder
    from clonebench.model.trainset import training_set
    from clonebench.reports.speaker import speaker_report
    from clonebench.serve.voices import VoiceLibrary

    db = vetted["db"]
    accepted = [c for c in vetted["first"]["clips"] if c["status"] == "accepted"]
    gone, fixed = accepted[0]["clip_id"], accepted[1]["clip_id"]
    words = "A person corrected these words."
    with Store(db) as store:
        review(store, ReviewRequest(gone, "reject", 0, reason="other", note="a chair creaks"), "rita")
        review(store, ReviewRequest(fixed, "text", 0, text=words), "rita")
        review(store, ReviewRequest(fixed, "reference", 1), "rita")
        before = store.enrolment("allison")

    code, doc, err = run_cli(*vetted["args"])                     # a re-vet: the rules decide again
    assert code == 0, err
    clips = {c["clip_id"]: c for c in doc["clips"]}
    assert clips[gone]["status"] == "rejected" and clips[gone]["machine_status"] == "accepted"
    assert clips[gone]["reviewed_by"] == "rita" and clips[gone]["reasons"] == ["other"]
    assert (clips[fixed]["text"], clips[fixed]["text_source"]) == (words, "reviewed")
    with Store(db, read_only=True) as store:
        assert store.enrolment("allison").accepted_s == pytest.approx(before.accepted_s)
        refs = from_store(store, "allison", SpeakerEncoder())         # evaluation's references
    assert refs.n_clips == len(accepted) - 1 and gone not in refs.prompt_path

    trainset = training_set(db, ["allison"])
    kept = {c.clip_id: c for c in trainset.train + trainset.val}
    assert gone not in kept and kept[fixed].text == words

    exported = export_gpt_sovits(db, tmp_path / "export")
    listed = (tmp_path / "export" / "clonebench.list").read_text(encoding="utf-8")
    assert f"/{gone}.wav|" not in listed
    assert f"/{fixed}.wav|allison|en|{words}\n" in listed
    assert exported["text_sources"]["reviewed"] == 1

    prompt = prompt_from_store(db, "allison")                    # what synth --speaker and serve prepare
    assert prompt.text == words and fixed in prompt.source
    voice = VoiceLibrary(db, prepare=lambda speaker: speaker).voices()[0]
    assert (voice.speaker, voice.prompt, voice.servable) == ("allison", "picked", voice.status == "ready")

    html = speaker_report(db, "allison", tmp_path / "allison.html").read_text(encoding="utf-8")
    assert "rita rejected it (other: a chair creaks)" in html and f"the clip {fixed} rita picked as the reference" in html
