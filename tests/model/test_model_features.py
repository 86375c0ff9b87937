"""Content and BERT features from local folders (built here, since hubs are unreachable)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clonebench.core.errors import ModelError
from clonebench.model.features import BertFeatures, WhisperEncoderContent, check_compatible, content_extractor
from clonebench.model.text.frontend import phonemize
from clonebench.testing import corpus


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    _, audio = corpus.take_seconds(corpus.prompts("en"), 4)
    return corpus.join(audio, gap_s=0.2)


@pytest.fixture(scope="module")
def hubert_folder(tmp_path_factory):
    from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

    folder = tmp_path_factory.mktemp("chinese-hubert-tiny")
    torch.manual_seed(0)
    config = HubertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128,
                          conv_dim=(32,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)
    HubertModel(config).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(do_normalize=True).save_pretrained(folder)
    return folder


def test_hubert_from_local_folder(hubert_folder, speech):
    extractor = content_extractor(f"cnhubert:{hubert_folder}")
    a, b = extractor.encode(speech), extractor.encode(speech)
    assert extractor.dim == 64 and a.shape == (64, len(speech) // 320)   # 50 Hz frames
    assert torch.equal(a, b) and torch.isfinite(a).all()
    # a model trained on Whisper features refuses HuBERT ones (and the other way round)
    with pytest.raises(ModelError, match="whisper-base"):
        check_compatible(extractor, "whisper-base", 512, "m.pth")
    check_compatible(extractor, "cnhubert", 64, "m.pth")


def test_missing_or_broken_folders_are_one_line_errors(tmp_path):
    with pytest.raises(ModelError, match="no config.json"):
        content_extractor(f"cnhubert:{tmp_path}")
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ModelError, match="did not load"):
        content_extractor(f"cnhubert:{tmp_path}")
    with pytest.raises(ModelError, match="unknown content extractor"):
        content_extractor("wavlm")


def test_whisper_encoder_content_any_length(speech):
    extractor = WhisperEncoderContent()
    short = extractor.encode(speech[:16000])
    assert short.shape == (512, 50)
    long = extractor.encode(np.tile(speech, 9)[: 16000 * 33])                # crosses a 30 s window
    assert long.shape == (512, 33 * 50) and torch.isfinite(long).all()


@pytest.fixture(scope="module")
def bert_folder(tmp_path_factory):
    from transformers import BertConfig, BertForMaskedLM, BertTokenizer

    folder = tmp_path_factory.mktemp("roberta-tiny")
    chars = sorted(set("你好世界欢迎致电客服中心我们"))
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ",", ".", *chars]) + "\n")
    BertTokenizer(str(folder / "vocab.txt")).save_pretrained(folder)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=7 + len(chars), hidden_size=1024, num_hidden_layers=3, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=64)
    BertForMaskedLM(config).save_pretrained(folder)
    return folder


def test_bert_features_follow_word2ph(bert_folder):
    bert = BertFeatures(bert_folder)
    ph = phonemize("Hello，欢迎致电客服中心", "auto")
    feats = bert.for_runs(ph.runs)
    assert feats.shape == (1024, len(ph.phones))
    en_len = len(ph.runs[0].phones)
    assert torch.count_nonzero(feats[:, :en_len]) == 0                  # English: zeros, as upstream
    zh = feats[:, en_len:]
    assert torch.count_nonzero(zh) > 0
    # each character's vector is repeated once per phone: 欢 has 2 phones -> 2 equal columns
    assert torch.equal(zh[:, 1], zh[:, 2]) and not torch.equal(zh[:, 2], zh[:, 3])
    assert torch.count_nonzero(BertFeatures(None).for_runs(ph.runs)) == 0
