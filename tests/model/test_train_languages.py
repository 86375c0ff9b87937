"""Japanese, Korean and Cantonese through the whole workbench: vet a GPT-SoVITS `.list`, a
person's review, the training set, a tiny training run, synthesis and evaluation.

Debian ships no Japanese, Korean or Cantonese recordings (and the tests use espeak-ng's English
and French voices only), so the audio is Allison's English prompts under texts in those languages.
The machine rejects them (the words it hears are not the text), a person accepts them, and from
there on every stage reads the texts in their own languages."""

from __future__ import annotations

from pathlib import Path

import soundfile as sf

from clonebench.curate.reviews import ReviewRequest, review
from clonebench.model.trainset import training_set
from clonebench.store import Store
from clonebench.testing import corpus
from conftest import SR, run_cli, write

# ten lines a speaker: about 35 s of audio, over the training set's 30 s minimum
TEXTS = {
    "ja": ["今日は天気がいいですね。", "少々お待ちください。", "お電話ありがとうございます。", "三時に駅で会いましょう。",
           "担当者にお繋ぎいたします。", "明日の会議は十時からです。", "こちらは留守番電話サービスです。",
           "番号をもう一度お確かめください。", "ご用件をお話しください。", "またのお電話をお待ちしております。"],
    "ko": ["안녕하세요, 반갑습니다.", "잠시만 기다려 주세요.", "오늘 날씨가 정말 좋네요.", "세 시에 역에서 만나요.",
           "담당자에게 연결해 드리겠습니다.", "내일 회의는 열 시에 시작합니다.", "전화번호를 다시 확인해 주세요.",
           "용건을 말씀해 주십시오.", "지금은 통화할 수 없습니다.", "다시 전화해 주셔서 감사합니다."],
    "yue": ["你食咗早餐未呀？", "唔該晒，我哋聽日見。", "今日天氣幾好，出去行下啦。", "我哋三點喺門口等。",
            "請你等一陣，我幫你轉駁。", "聽日個會十點鐘開始。", "呢度係留言信箱，請留低訊息。",
            "唔該你再講多次電話號碼。", "佢而家唔得閒聽電話。", "多謝你打嚟，拜拜。"],
}
SPEAKERS = {"ja": "kaori", "ko": "minji", "yue": "wing"}


def test_japanese_korean_and_cantonese_clips_vet_train_speak_and_score(tmp_path: Path):
    db = tmp_path / "store.duckdb"
    pairs = [(lang, text) for lang in TEXTS for text in TEXTS[lang]]
    # prompts of 3-6 s: one clip a file (no slicing), each about as long as its line
    takes = (x for x in map(corpus.load_prompt, corpus.prompts("en")) if 3 * SR <= len(x) <= 6 * SR)
    lines = []
    for k, (x, (lang, text)) in enumerate(zip(takes, pairs)):
        write(tmp_path / "audio" / f"p{k}.wav", x)
        lines.append(f"audio/p{k}.wav|{SPEAKERS[lang]}|{lang}|{text}")
    assert len(lines) == len(pairs)
    (tmp_path / "voices.list").write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, doc, err = run_cli("vet", "--list", str(tmp_path / "voices.list"), "--db", str(db), "--max-clip", "12",
                             "--no-report", "--json")
    assert code == 0, err

    with Store(db) as store:
        views = store.clip_views()
        assert {(v.clip.speaker, v.lang) for v in views} == {(s, lang) for lang, s in SPEAKERS.items()}
        for v in views:
            if v.status != "accepted":     # the machine hears English under the texts: a person overrules it
                review(store, ReviewRequest(v.clip.clip_id, "accept", v.version), "tester", "test")
    kept = training_set(db)
    clips = kept.train + kept.val
    assert {(c.speaker, c.lang) for c in clips} == {(s, lang) for lang, s in SPEAKERS.items()}, kept.skipped
    # each clip's phones are its own language's: Y-prefixed Jyutping for Cantonese, jamo for Korean
    from clonebench.model.text.symbols import table
    phones = {lang: {table()[i] for c in clips if c.lang == lang for i in c.phones} for lang in SPEAKERS}
    assert "Yng" in phones["yue"] and "ㅅ" in phones["ko"] and "N" in phones["ja"]

    out = tmp_path / "run"
    code, doc, err = run_cli("train", "--all", "--preset", "tiny", "--s2-epochs", "2", "--s1-epochs", "2",
                             "--out", str(out), "--db", str(db), "--json")
    assert code == 0, err
    gpt, sovits = doc["gpt"], doc["sovits"]
    for lang, text in [("ja", "おはようございます。"), ("ko", "감사합니다."), ("yue", "早晨！")]:
        wav = tmp_path / f"{lang}.wav"
        code, doc, err = run_cli("synth", "--gpt", gpt, "--sovits", sovits, "--speaker", SPEAKERS[lang], "--lang", lang,
                                 "--text", text, "--db", str(db), "--out", str(wav), "--json")
        assert code == 0, err
        assert sf.info(str(wav)).samplerate == 32000 and doc["tokens"] > 0

    (tmp_path / "set.tsv").write_text("j1\tja\t少々お待ちください。\nk1\tko\t잠시만 기다려 주세요.\ny1\tyue\t唔該晒。\n",
                                      encoding="utf-8")
    code, doc, err = run_cli("evaluate", "--gpt", gpt, "--sovits", sovits, "--eval-set", str(tmp_path / "set.tsv"),
                             "--db", str(db), "--n-boot", "200", "--no-report", "--json")
    assert code == 0, err
    scored = {(it["speaker"], it["lang"]) for it in doc["items"] if it["cer"] is not None}
    assert {lang for _, lang in scored} == {"ja", "ko", "yue"}
