"""Tests for the vocabularies and the generated VQA datasets (make_vqa_dataset, collate_vqa)."""

import json

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from semcom.data import (
    ANSWERS,
    BOS,
    EOS,
    FAMILIES,
    PAD,
    UNK,
    AnswerVocab,
    Vocab,
    collate_vqa,
    default_answer_vocab,
    default_vocab,
    make_vqa_dataset,
    render_scene,
    scene_description,
    tokenize,
)


@pytest.fixture(scope="module")
def splits():
    return make_vqa_dataset(n_scenes=40, questions_per_scene=4, seed=11, image_size=32)


def test_tokenize_and_vocab_round_trip(tmp_path):
    assert tokenize("What color is the Cube?") == ["what", "color", "is", "the", "cube", "?"]
    v = Vocab.build(["the red cube", "the blue cube ?"])
    assert v.itos[:4] == ["<pad>", "<bos>", "<eos>", "<unk>"] and (PAD, BOS, EOS, UNK) == (0, 1, 2, 3)
    assert v.itos[4:6] == ["cube", "the"]  # most frequent first, ties alphabetical
    ids = v.encode("The red sphere?")
    assert ids[0] == BOS and ids[-1] == EOS and ids[3] == UNK
    assert v.decode(ids) == "the red <unk> ?"
    assert len(v.encode("the red cube ?", max_len=4)) == 4
    v.save(tmp_path / "v.json")
    assert Vocab.load(tmp_path / "v.json") == v
    a = AnswerVocab.build(["no", "yes", "yes", "2"], unk=True)
    assert a.itos == ["<unk>", "yes", "2", "no"] and a.index("maybe") == 0
    a.save(tmp_path / "a.json")
    assert AnswerVocab.load(tmp_path / "a.json") == a
    assert AnswerVocab(["yes", "no"]).index("maybe") == -100


def test_vocab_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        Vocab.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        Vocab.load(tmp_path / "bad.json")
    (tmp_path / "ans.json").write_text(json.dumps({"type": "answer_vocab", "tokens": ["yes"]}))
    with pytest.raises(ValueError, match="not a word_vocab"):
        Vocab.load(tmp_path / "ans.json")
    (tmp_path / "nospecial.json").write_text(json.dumps({"type": "word_vocab", "tokens": ["a", "b"]}))
    with pytest.raises(ValueError, match="first tokens"):
        Vocab.load(tmp_path / "nospecial.json")


def test_default_vocab_is_fixed_and_covers_generated_text(splits):
    v = default_vocab()
    assert v.itos[4:] == sorted(v.itos[4:])  # alphabetical: independent of any dataset
    assert list(default_answer_vocab().itos) == list(ANSWERS)
    for ds in splits:
        for i in range(len(ds)):
            it = ds[i]
            for k in ("vague_ids", "question_ids", "scene_ids", "summary_ids"):
                assert UNK not in it[k].tolist(), (k, ds.text(i))


def test_splits_sizes_disjoint_and_deterministic(splits):
    train, val, test = splits
    assert (len(train.scenes), len(val.scenes), len(test.scenes)) == (28, 4, 8)
    assert (len(train), len(val), len(test)) == (112, 16, 32)
    descs = [{scene_description(s) for s in ds.scenes} for ds in splits]
    assert not (descs[0] & descs[1]) and not (descs[0] & descs[2]) and not (descs[1] & descs[2])
    again = make_vqa_dataset(n_scenes=40, questions_per_scene=4, seed=11, image_size=32)
    other = make_vqa_dataset(n_scenes=40, questions_per_scene=4, seed=12, image_size=32)
    for i in (0, 5, 50):
        a, b = train[i], again[0][i]
        assert all(torch.equal(torch.as_tensor(a[k]), torch.as_tensor(b[k])) for k in a)
    assert [train.text(i) for i in range(10)] != [other[0].text(i) for i in range(10)]


def test_items_match_their_scene(splits):
    train = splits[0]
    v, ans = train.vocab, train.answers
    fams = set()
    for i in range(0, len(train), 3):
        it, txt = train[i], train.text(i)
        s, q = train.questions[i]
        assert it["image"].shape == (3, 32, 32) and it["image"].dtype == torch.float32
        expect = torch.from_numpy(render_scene(train.scenes[s], 32)).permute(2, 0, 1).float() / 255
        assert torch.equal(it["image"], expect)
        assert it["answer"].dtype == torch.long and ans.answer(int(it["answer"])) == txt["answer"] == q.answer
        assert v.decode(it["question_ids"]) == txt["question"]
        assert v.decode(it["vague_ids"]) == txt["vague"]
        assert v.decode(it["scene_ids"]) == txt["scene"] == scene_description(train.scenes[s])
        assert v.decode(it["summary_ids"]) == txt["summary"]
        assert FAMILIES[it["family"]] == txt["family"]
        fams.add(it["family"])
    assert len(fams) == len(FAMILIES)


def test_collate_pads(splits):
    train = splits[0]
    batch = next(iter(DataLoader(train, batch_size=8, shuffle=False, collate_fn=collate_vqa)))
    assert batch["image"].shape == (8, 3, 32, 32)
    assert batch["answer"].shape == (8,) and batch["family"].shape == (8,)
    for key in ("vague", "question", "scene", "summary"):
        ids, lens = batch[f"{key}_ids"], batch[f"{key}_lens"]
        assert ids.dtype == torch.long and ids.shape == (8, int(lens.max()))
        for b in range(8):
            item = train[b][f"{key}_ids"]
            assert torch.equal(ids[b, : lens[b]], item) and (ids[b, lens[b]:] == PAD).all()
    assert (batch["question_lens"] > 3).all()
    with pytest.raises(ValueError):
        collate_vqa([])


def test_bad_arguments():
    with pytest.raises(ValueError, match="split"):
        make_vqa_dataset(n_scenes=10, questions_per_scene=1, split=(0.5, 0.5, 0.5))
    with pytest.raises(ValueError):
        make_vqa_dataset(n_scenes=1)


def test_answer_balance_in_generated_dataset(splits):
    train = splits[0]
    labels = np.array([int(train[i]["answer"]) for i in range(len(train))])
    # no single answer dominates the dataset
    assert np.bincount(labels).max() / len(labels) < 0.2
