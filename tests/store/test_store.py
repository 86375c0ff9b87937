"""The store as the data model: schema upgrades, the one home of the user's text (TSV, .list,
.lab sidecars; split per clip), rule sets stored whole, and no SQL outside the store package."""

from __future__ import annotations

import gzip
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, one, run_cli, write

from clonebench.core.align import split_text
from clonebench.core.gsvlist import parse
from clonebench.store import ASR, GIVEN, SCHEMA_VERSION, Store
from clonebench.testing import corpus

V1_TABLES = ["speakers", "recordings", "clips", "metrics", "clip_stages", "transcripts", "words", "given_transcripts",
             "clip_embeddings", "speaker_embeddings", "verdicts", "enrolments", "ingest_errors"]


def _v1_store(tmp_path: Path) -> Path:
    db = tmp_path / "old" / "clonebench.duckdb"
    db.parent.mkdir()
    with gzip.open(ROOT / "tests" / "data" / "store-v1.duckdb.gz") as src, open(db, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return db


def test_a_v1_store_upgrades_in_place_and_keeps_every_row(tmp_path):
    import duckdb

    db = _v1_store(tmp_path)
    with duckdb.connect(str(db), read_only=True) as con:
        before = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in V1_TABLES}
        given = dict(con.execute("SELECT recording_sha256, text FROM given_transcripts").fetchall())
        assert con.execute("SELECT value FROM schema_info").fetchone()[0] == "1"
    with Store(db, read_only=True) as store:      # a reader upgrades it too
        assert store.schema_version == SCHEMA_VERSION == 7
        after = {t: one(store, f"SELECT count(*) FROM {t}") for t in V1_TABLES}
        views = store.clip_views("alice")
        # v4: verdicts carry flags; the old ones have none, and keep their status and reasons
        assert all(v.status and v.flags == () for v in views)
        texts = store.clip_transcripts([v.clip.clip_id for v in views])
    assert {t: after[t] - (len(views) if t == "transcripts" else 0) for t in V1_TABLES} == before
    # the user's text now reaches every clip: the 4-clip recording's text is split along its clips
    assert len(views) == 5 and all(v.text_kind == GIVEN for v in views)
    by_recording: dict[str, list] = {}
    for v in sorted(views, key=lambda v: v.clip.start_s):
        by_recording.setdefault(v.clip.recording_sha256, []).append(v)
    for sha, members in by_recording.items():
        assert " ".join(v.text for v in members) == given[sha]
        scores = [texts[(v.clip.clip_id, GIVEN)].alignment_score for v in members]
        assert scores == [None] if len(members) == 1 else all(s >= 0.8 for s in scores)
    four = next(m for m in by_recording.values() if len(m) == 4)
    assert four[0].text.startswith("Login incorrect.") and four[1].text == "Please enter a new extension, followed by pound."
    with Store(db) as store:                       # opening again changes nothing
        assert store.schema_version == SCHEMA_VERSION and one(store, "SELECT count(*) FROM transcripts") == after["transcripts"]


def test_the_upgrade_makes_the_paths_inside_the_folder_relative(tmp_path):
    """The v1 file was written in /tmp/v1fix/store/ and has moved since. Its clips are found again
    under the same clips/<speaker>/ tail when their files came along; paths written in the store's
    folder now lose the folder; anything else stays absolute."""
    import duckdb

    db = _v1_store(tmp_path)
    folder = db.parent.resolve()
    with duckdb.connect(str(db)) as con:
        clips = con.execute("SELECT clip_id, path_32k, path_16k FROM clips ORDER BY clip_id").fetchall()
        (here, _, _), (came, *came_paths), *left = clips
        # `here` was written where the file is now; `came`'s files were moved along with it
        con.execute("UPDATE clips SET path_32k = ?, path_16k = ? WHERE clip_id = ?",
                    [str(folder / "clips" / "alice" / f"{here}.{rate}.wav") for rate in ("32k", "16k")] + [here])
        con.execute("INSERT INTO checkpoints (path, kind, run_name) VALUES (?, 'gpt', 'r'), ('/elsewhere/r.pth', 'sovits', 'r')",
                    [str(folder / "runs" / "r" / "r.ckpt")])
        con.execute("INSERT INTO eval_items (run_id, item_key, speaker, path, prompt_path) VALUES ('e', 'k', 'alice', ?, ?)",
                    ["/gone/store/eval_audio/m-s0/k.wav", str(folder / "clips" / "alice" / f"{here}.16k.wav")])
        count = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("clips", "checkpoints", "eval_items")}
    for p in came_paths:
        write(folder / "clips" / "alice" / Path(p).name, np.zeros(160, np.float32))
    write(folder / "eval_audio" / "m-s0" / "k.wav", np.zeros(160, np.float32))
    with Store(db) as store:
        assert store.schema_version == SCHEMA_VERSION == 7
        raw = {r["clip_id"]: (r["path_32k"], r["path_16k"])
               for r in store.query("SELECT clip_id, path_32k, path_16k FROM clips")}
        read = {c.clip_id: (c.path_32k, c.path_16k) for c in store.clips("alice")}
        checkpoints = {r["kind"]: r["path"] for r in store.query("SELECT kind, path FROM checkpoints")}
        read_checkpoints = {c.kind: c.path for c in store.checkpoints("r")}
        item = one(store, "SELECT [path, prompt_path] FROM eval_items")
        (read_item,) = store.eval_items("e")
        sources = [r["source"] for r in store.query("SELECT source FROM recordings ORDER BY source")]
        assert {t: one(store, f"SELECT count(*) FROM {t}") for t in count} == count
    assert raw[here] == (f"clips/alice/{here}.32k.wav", f"clips/alice/{here}.16k.wav")
    assert raw[came] == tuple(f"clips/alice/{Path(p).name}" for p in came_paths)
    assert all(raw[c] == (p32, p16) and p32.startswith("/tmp/v1fix/store/clips/") for c, p32, p16 in left)  # no file here
    assert read[came] == tuple(str(folder / "clips" / "alice" / Path(p).name) for p in came_paths)
    assert all(read[c] == (p32, p16) for c, p32, p16 in left)
    assert checkpoints == {"gpt": "runs/r/r.ckpt", "sovits": "/elsewhere/r.pth"}
    assert read_checkpoints == {"gpt": str(folder / "runs" / "r" / "r.ckpt"), "sovits": "/elsewhere/r.pth"}
    assert item == ["eval_audio/m-s0/k.wav", f"clips/alice/{here}.16k.wav"]
    assert (read_item.path, read_item.prompt_path) == (str(folder / item[0]), str(folder / item[1]))
    assert sources == ["/tmp/v1fix/alice/long.wav", "/tmp/v1fix/alice/single.wav"]    # the user's files, elsewhere


def test_a_store_from_a_newer_release_is_refused(tmp_path):
    db = tmp_path / "new.duckdb"
    with Store(db) as store:
        store.query("UPDATE schema_info SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(Exception, match="newer clonebench"):
        Store(db)


def test_split_text_follows_the_asr_words():
    text = "Hello there, my friend. This is the second sentence! And a third one."
    parts = split_text(text, [["Hello", "there", "my"], ["This", "is", "the", "second", "sentence"], ["a", "third", "one"]])
    # words the ASR missed ("friend", "And") go to the side of the pause mark
    assert [p.text for p in parts] == ["Hello there, my friend.", "This is the second sentence!", "And a third one."]
    assert parts[1].score == 1.0 and parts[0].score == 0.75
    han = split_text("你好世界。今天天气很好。", [["你好", "世界"], ["今天", "天气", "很好"]], "zh")
    assert [p.text for p in han] == ["你好世界。", "今天天气很好。"]
    assert split_text("one two", [["one"]])[0].score is None          # one clip: the whole text, nothing split
    poor = split_text("totally different words", [["abc"], ["xyz"]])
    assert all(p.score == 0.0 for p in poor)


def test_list_lines_are_checked_one_by_one(tmp_path):
    f = tmp_path / "d.list"
    f.write_text("a.wav|s1|EN|hello there\nbroken line\nb.wav|s2|xx|text\nc.wav|s3|all_zh|你好\n|s|en|x\n", encoding="utf-8")
    entries, errors = parse(f)
    assert [(e.path, e.speaker, e.lang, e.line) for e in entries] == [("a.wav", "s1", "en", 1), ("c.wav", "s3", "zh", 4)]
    assert [e.split(": ")[0] for e in errors] == [f"{f}:2", f"{f}:3", f"{f}:5"]


# SQL keywords as they start a statement in a string; the store package alone may hold them
_SQL = re.compile(r"""["'](?:\s*)(SELECT|INSERT|UPDATE|DELETE|CREATE|ALTER|DROP)\s""")


def test_no_sql_outside_the_store_package():
    offenders = []
    for folder in ("clonebench", "curate", "model", "evaluate", "reports", "instruments", "serve", "testing"):
        for f in (ROOT / folder).rglob("*.py"):
            for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
                if _SQL.search(line) or ".execute(" in line and "duckdb" in line:
                    offenders.append(f"{f.relative_to(ROOT)}:{n}")
    assert offenders == []


@pytest.fixture(scope="module")
def given_store(tmp_path_factory) -> dict:
    """A two-clip recording with a transcript TSV, a one-clip file with a .lab beside it, and a
    two-clip recording whose text is right for its first clip only."""
    root = tmp_path_factory.mktemp("given")
    ps = [p for p in corpus.prompts("en") if 3.5 <= len(corpus.load_prompt(p)) / 16000 <= 7][:5]
    audio = [corpus.load_prompt(p) for p in ps]
    pause = np.zeros(int(1.2 * 16000), np.float32)
    write(root / "bob" / "two.wav", np.concatenate([audio[0], pause, audio[1]]))
    write(root / "bob" / "one.wav", audio[2])
    write(root / "bob" / "wrong.wav", np.concatenate([audio[3], pause, audio[4]]))
    # the user's text, with its own punctuation and casing, which the ASR does not produce
    given = " ".join(f"{ps[0].text.upper()} -- {ps[1].text.upper()}".split())
    wrong = f"{ps[3].text} The quick brown fox jumps over the lazy dog beside the quiet river."
    (root / "t.tsv").write_text(f"two.wav\t{given}\nwrong.wav\t{wrong}\n", encoding="utf-8")
    (root / "bob" / "one.lab").write_text(ps[2].text.upper() + "\n", encoding="utf-8")
    db = root / "store" / "clonebench.duckdb"
    code, doc, err = run_cli("vet", str(root / "bob"), "--speaker", "bob", "--transcripts", str(root / "t.tsv"),
                             "--db", str(db), "--json")
    assert code == 0, err
    return {"root": root, "db": db, "doc": doc, "given": given, "lab": " ".join(ps[2].text.upper().split())}


def test_given_text_reaches_each_clip_and_everything_reads_it(given_store, tmp_path):
    db, doc = given_store["db"], given_store["doc"]
    two = sorted((c for c in doc["clips"] if c["source"].endswith("/two.wav")), key=lambda c: c["start_s"])
    one_clip = [c for c in doc["clips"] if c["source"].endswith("/one.wav")]
    assert len(two) == 2 and len(one_clip) == 1
    # the vet document and the stable view carry each clip's share of the user's text
    assert " ".join(c["text"] for c in two) == given_store["given"]
    assert all(c["text_source"] == "given" and c["text"].isupper() for c in two + one_clip)
    assert one_clip[0]["text"] == given_store["lab"]
    with Store(db, read_only=True) as store:
        view = {r["clip_id"]: r["text"] for r in store.query("SELECT clip_id, text FROM clip_verdicts")}
        asr = store.transcripts("bob", ASR)
        rule_set = store.rule_set(doc["rule_set"])
    assert {c["clip_id"]: c["text"] for c in doc["clips"]} == view
    assert all(not asr[c["clip_id"]].text.isupper() for c in two)        # ... which is not the ASR's text
    # the transcript check runs per clip, against that clip's share
    assert all(c["metrics"]["transcript_wer"] < 0.35 for c in two + one_clip)
    assert all(c["metrics"]["transcript_alignment"] >= 0.8 for c in two)
    # the rule set that decided is stored whole
    assert rule_set["clip"]["max_transcript_cer"] > 0 and "enrolment" in rule_set

    from clonebench.model.trainset import training_set

    accepted = {c["clip_id"]: c["text"] for c in doc["clips"] if c["status"] == "accepted"}
    assert accepted, doc["clips"]
    ts = training_set(db, min_speaker_s=1.0)
    assert {c.clip_id: c.text for c in ts.train + ts.val} == accepted
    code, exp, err = run_cli("export", "--format", "gpt-sovits", "--out", str(tmp_path / "exp"), "--db", str(db), "--json")
    assert code == 0, err
    lines = Path(exp["list"]).read_text(encoding="utf-8").splitlines()
    assert sorted(line.split("|")[3] for line in lines) == sorted(accepted.values())
    assert exp["text_sources"] == {"reviewed": 0, "given": len(accepted), "asr": 0}


def test_the_speaker_report_shows_the_per_clip_diff(given_store):
    html = (given_store["db"].parent / "reports" / "bob.html").read_text(encoding="utf-8")
    assert html.count('class="diff"') == 5
    # the clips of the split recordings say so, with how well their words matched
    matched = sorted(int(p) for p in re.findall(r"split from the recording's text, (\d+)% of words matched", html))
    assert len(matched) == 4 and matched[0] < 50 and all(p >= 80 for p in matched[1:])


def test_a_poor_split_is_named_and_its_clip_rejected(given_store):
    doc = given_store["doc"]
    wrong = sorted((c for c in doc["clips"] if c["source"].endswith("wrong.wav")), key=lambda c: c["start_s"])
    assert len(wrong) == 2
    assert wrong[0]["status"] == "accepted" and wrong[0]["metrics"]["transcript_alignment"] >= 0.8
    assert "transcript_mismatch" in wrong[1]["reasons"] and wrong[1]["metrics"]["transcript_alignment"] < 0.5
    assert wrong[1]["text"].startswith("The quick brown fox")            # the part of the text left for it
    (warning,) = doc["warnings"]
    assert "t.tsv:2" in warning and "matched poorly" in warning and f"{wrong[1]['start_s']:.1f}" in warning


def test_a_list_with_three_speakers_vets_in_one_command(tmp_path):
    ps = [p for p in corpus.prompts("en") if 3.0 <= len(corpus.load_prompt(p)) / 16000 <= 6][:4]
    texts = [" ".join(p.text.split()) for p in ps]
    voices = {"ann": texts[0], "ben": texts[1], "cy": texts[2]}
    lines = []
    for k, (speaker, text) in enumerate(voices.items()):
        write(tmp_path / "wavs" / f"{speaker}.wav", corpus.load_prompt(ps[k]))
        lines.append(f"wavs/{speaker}.wav|{speaker}|{'EN' if k else 'en'}|{text}")
    write(tmp_path / "abs.wav", corpus.load_prompt(ps[3]))
    lines.append(f"{tmp_path / 'abs.wav'}|ann|en|{texts[3]}")          # absolute paths work too
    lines += ["wavs/missing.wav|ben|en|no such file", "wavs/ann.wav|ann", "wavs/x.wav|cy|fr|pas une langue de GPT-SoVITS"]
    (tmp_path / "data.list").write_text("\n".join(lines) + "\n", encoding="utf-8")
    db = tmp_path / "store" / "clonebench.duckdb"
    code, doc, err = run_cli("vet", "--list", str(tmp_path / "data.list"), "--db", str(db), "--json")
    assert code == 4, err                                                  # three lines refused
    assert [d["speaker"] for d in doc["speakers"]] == ["ann", "ben", "cy"]
    assert sorted(e["source"] for e in doc["errors"]) == [f"{tmp_path / 'data.list'}:{n}" for n in (5, 6, 7)]
    for d in doc["speakers"]:
        assert d["clips"] and all(c["text_source"] == "given" for c in d["clips"])
    assert {c["text"] for c in doc["speakers"][0]["clips"]} == {texts[0], texts[3]}
    assert len(doc["reports"]) == 4                                       # three speakers and the overview
    again_code, again, _ = run_cli("vet", "--list", str(tmp_path / "data.list"), "--db", str(db), "--json", "--no-report")
    assert again_code == 4
    with Store(db, read_only=True) as store:
        assert one(store, "SELECT count(*) FROM recordings") == 4        # a re-run adds nothing
        assert {s.speaker: s.lang for s in store.speakers()} == {"ann": "en", "ben": "en", "cy": "en"}
    code, _, err = run_cli("vet", "--list", str(tmp_path / "data.list"), "--speaker", "x", "--db", str(db), check_json=False)
    assert code == 2 and err.count("\n") == 1 and "--list" in err
