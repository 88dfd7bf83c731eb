"""CLEVR v1.0 and GQA loaders on small fixture files written here in the published formats."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from semcom.data import (
    BOS,
    EOS,
    IGNORE_INDEX,
    CLEVRDataset,
    DataFormatError,
    GQADataset,
    collate_vqa,
)

KEYS = {"image", "vague_ids", "question_ids", "answer", "scene_ids", "summary_ids", "family"}


def _prog(*fns):
    """A CLEVR v1.0 program: a chain of function nodes, each taking the previous one as input."""
    return [{"inputs": [] if k == 0 else [k - 1], "function": f, "value_inputs": []}
            for k, f in enumerate(fns)]


CLEVR_Q = {
    "train": [
        ("CLEVR_train_000000.png", "How many large things are there?", "2",
         _prog("scene", "filter_size", "count"), 39),
        ("CLEVR_train_000000.png", "What material is the brown cylinder?", "rubber",
         _prog("scene", "filter_color", "filter_shape", "unique", "query_material"), 30),
        ("CLEVR_train_000001.png", "Is the cube the same color as the sphere?", "no",
         _prog("scene", "filter_shape", "unique", "query_color", "scene", "filter_shape", "unique",
               "query_color", "equal_color"), 20),
        ("CLEVR_train_000001.png", "Are there more cubes than spheres?", "no",
         _prog("scene", "filter_shape", "count", "scene", "filter_shape", "count", "greater_than"), 7),
    ],
    "val": [
        ("CLEVR_val_000000.png", "Is there a red cube?", "yes", _prog("scene", "filter_color", "exist"), 3),
        ("CLEVR_val_000000.png", "What color is the cube?", "pink",  # not a CLEVR answer
         _prog("scene", "filter_shape", "unique", "query_color"), 5),
    ],
}
CLEVR_COLORS = {"CLEVR_train_000000.png": (200, 30, 30), "CLEVR_train_000001.png": (20, 40, 220),
                "CLEVR_val_000000.png": (30, 200, 30)}
CLEVR_SCENES = {
    "CLEVR_train_000000.png": [
        {"color": "brown", "size": "large", "rotation": 12.0, "shape": "cylinder",
         "3d_coords": [-1.5, -2.9, 0.7], "material": "rubber", "pixel_coords": [119, 131, 10.6]},
        {"color": "gray", "size": "large", "rotation": 80.1, "shape": "cube", "3d_coords": [1.9, 2.6, 0.7],
         "material": "metal", "pixel_coords": [330, 90, 12.9]},
    ],
    "CLEVR_train_000001.png": [
        {"color": "blue", "size": "small", "rotation": 3.0, "shape": "cube", "3d_coords": [0.1, 0.2, 0.35],
         "material": "rubber", "pixel_coords": [240, 200, 9.0]},
        {"color": "red", "size": "large", "rotation": 0.0, "shape": "sphere", "3d_coords": [2.0, -1.0, 0.7],
         "material": "metal", "pixel_coords": [100, 150, 11.5]},
    ],
}


def _clevr_relationships(objs):
    x = [o["pixel_coords"][0] for o in objs]
    d = [o["pixel_coords"][2] for o in objs]
    n = range(len(objs))
    return {"left": [[j for j in n if x[j] < x[i]] for i in n],
            "right": [[j for j in n if x[j] > x[i]] for i in n],
            "front": [[j for j in n if d[j] < d[i]] for i in n],
            "behind": [[j for j in n if d[j] > d[i]] for i in n]}


def write_clevr(root, scenes=True):
    (root / "questions").mkdir(parents=True)
    for split, qs in CLEVR_Q.items():
        questions = [{"image_index": int(f[-10:-4]), "program": prog, "question_index": k,
                      "image_filename": f, "question_family_index": fam, "split": split, "answer": a,
                      "question": q}
                     for k, (f, q, a, prog, fam) in enumerate(qs)]
        info = {"split": split, "license": "Creative Commons Attribution (CC BY 4.0)", "version": "1.0",
                "date": "2/14/2017"}
        (root / "questions" / f"CLEVR_{split}_questions.json").write_text(json.dumps({"info": info,
                                                                                     "questions": questions}))
        (root / "images" / split).mkdir(parents=True)
    # test split: no answers, no programs (as published)
    test_q = [{"image_index": 0, "question_index": 0, "image_filename": "CLEVR_test_000000.png",
               "split": "test", "question": "Is there a big ball?"}]
    qfile = root / "questions" / "CLEVR_test_questions.json"
    qfile.write_text(json.dumps({"info": {}, "questions": test_q}))
    (root / "images" / "test").mkdir(parents=True)
    CLEVR_COLORS["CLEVR_test_000000.png"] = (90, 90, 90)
    for fname, rgb in CLEVR_COLORS.items():
        split = fname.split("_")[1]
        Image.new("RGB", (48, 32), rgb).save(root / "images" / split / fname)
    if scenes:
        (root / "scenes").mkdir()
        sc = [{"split": "train", "image_index": k, "image_filename": f, "objects": objs,
               "relationships": _clevr_relationships(objs), "directions": {"left": [-0.65, 0.76, 0.0]}}
              for k, (f, objs) in enumerate(CLEVR_SCENES.items())]
        (root / "scenes" / "CLEVR_train_scenes.json").write_text(json.dumps({"info": {}, "scenes": sc}))
    return root


def _check_items(ds, size):
    for i in range(len(ds)):
        it = ds[i]
        assert set(it) == KEYS
        assert it["image"].shape == (3, size, size) and it["image"].dtype == torch.float32
        assert 0.0 <= float(it["image"].min()) and float(it["image"].max()) <= 1.0
        for k in ("vague_ids", "question_ids", "scene_ids", "summary_ids"):
            ids = it[k]
            assert ids.dtype == torch.long and ids.ndim == 1
            assert int(ids[0]) == BOS and int(ids[-1]) == EOS
        assert it["answer"].dtype == torch.long and it["answer"].ndim == 0
        assert isinstance(it["family"], int)


def test_clevr_train_with_scenes(tmp_path):
    root = write_clevr(tmp_path / "CLEVR_v1.0")
    ds = CLEVRDataset(root, "train", image_size=16)
    assert len(ds) == 4 and ds.has_scenes
    _check_items(ds, 16)
    fams = [ds.families[ds[i]["family"]] for i in range(4)]
    assert fams == ["count", "query_material", "compare_attribute", "compare_integer"]
    assert [ds.answers.answer(int(ds[i]["answer"])) for i in range(4)] == [a for *_, a, _p, _f in
                                                                           CLEVR_Q["train"]]
    # text round trip and vague descriptions from the program's last function
    assert ds.vocab.decode(ds[0]["question_ids"]) == "how many large things are there ?"
    assert ds.vocab.decode(ds[0]["vague_ids"]) == "a question about how many things there are"
    assert "made of" in ds.vocab.decode(ds[1]["vague_ids"])
    # scene text: objects left to right, materials included, row from camera depth (the gray cube is behind)
    scene = ds.vocab.decode(ds[0]["scene_ids"])
    assert scene == ("2 objects : large brown rubber cylinder x 2 y 4 row 1 ; "
                     "large gray metal cube x 6 y 2 row 0")
    summary = ds.vocab.decode(ds[2]["summary_ids"])
    assert "small blue rubber cube" in summary and "large red metal sphere" in summary
    # image content: the fixture's solid colour survives resizing
    assert torch.allclose(ds[2]["image"].mean(dim=(1, 2)), torch.tensor([20, 40, 220]) / 255.0, atol=1e-3)
    batch = next(iter(DataLoader(ds, batch_size=4, collate_fn=collate_vqa)))
    assert batch["image"].shape == (4, 3, 16, 16) and batch["answer"].shape == (4,)
    assert batch["question_ids"].shape[1] == int(batch["question_lens"].max())


def test_clevr_val_and_test_with_train_vocab(tmp_path):
    root = write_clevr(tmp_path)
    train = CLEVRDataset(root, "train", image_size=8)
    val = CLEVRDataset(root, "val", image_size=8, vocab=train.vocab, answers=train.answers)
    assert not val.has_scenes
    # the fixed CLEVR answer set: "yes" is known even though no train question has it; "pink" is not
    assert val.answers.answer(int(val[0]["answer"])) == "yes"
    assert int(val[1]["answer"]) == IGNORE_INDEX
    assert len(train.answers) == 28
    assert val.vocab is train.vocab
    assert val[0]["scene_ids"].tolist() == [BOS, EOS]
    assert val.families[val[1]["family"]] == "query_color"
    test = CLEVRDataset(root, "test", image_size=8, vocab=train.vocab, answers=train.answers)
    assert int(test[0]["answer"]) == IGNORE_INDEX
    assert test.families[test[0]["family"]] == "unknown"
    assert test.vocab.decode(test[0]["vague_ids"]) == "a question about the image"


def test_clevr_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="CLEVR root"):
        CLEVRDataset(tmp_path / "nope")
    root = write_clevr(tmp_path / "c")
    with pytest.raises(FileNotFoundError, match="CLEVR_testdev_questions.json"):
        CLEVRDataset(root, "testdev")
    qfile = root / "questions" / "CLEVR_val_questions.json"
    good = qfile.read_text()
    qfile.write_text(good[:-20])  # truncated JSON
    with pytest.raises(DataFormatError, match="not valid JSON"):
        CLEVRDataset(root, "val")
    qfile.write_text(json.dumps({"info": {}}))
    with pytest.raises(DataFormatError, match="'questions'"):
        CLEVRDataset(root, "val")
    d = json.loads(good)
    del d["questions"][1]["question"]
    qfile.write_text(json.dumps(d))
    with pytest.raises(DataFormatError, match="question 1.*'question'"):
        CLEVRDataset(root, "val")
    qfile.write_text(good)
    (root / "images" / "val" / "CLEVR_val_000000.png").unlink()
    with pytest.raises(FileNotFoundError, match="CLEVR_val_000000.png"):
        CLEVRDataset(root, "val")
    # a corrupt image is reported when read
    (root / "images" / "val" / "CLEVR_val_000000.png").write_bytes(b"not a png")
    ds = CLEVRDataset(root, "val")
    with pytest.raises(DataFormatError, match="cannot read image"):
        ds[0]
    sfile = root / "scenes" / "CLEVR_train_scenes.json"
    s = json.loads(sfile.read_text())
    del s["scenes"][1]["objects"][0]["pixel_coords"]
    sfile.write_text(json.dumps(s))
    with pytest.raises(DataFormatError, match="scene 1 object 0.*pixel_coords"):
        CLEVRDataset(root, "train")
    s["scenes"] = s["scenes"][:1]
    sfile.write_text(json.dumps(s))
    with pytest.raises(DataFormatError, match="CLEVR_train_000001.png has no entry"):
        CLEVRDataset(root, "train")


# ------------------------------------------------------------------------------------------ GQA
GQA_Q = {
    "train": {
        "201307251": {"imageId": "2354786", "question": "Is the sky dark?", "answer": "yes",
                      "fullAnswer": "Yes, the sky is dark.", "isBalanced": True,
                      "types": {"structural": "verify", "semantic": "attr", "detailed": "verifyAttr"},
                      "semantic": [{"operation": "select", "dependencies": [], "argument": "sky (2486325)"},
                                   {"operation": "verify color", "dependencies": [0], "argument": "dark"}],
                      "annotations": {"answer": {}, "question": {"2": "2486325"}, "fullAnswer": {}}},
        "201640614": {"imageId": "2354786", "question": "What is on the white wall?", "answer": "pipe",
                      "fullAnswer": "The pipe is on the wall.", "isBalanced": True,
                      "types": {"structural": "query", "semantic": "rel", "detailed": "relS"},
                      "semantic": [], "annotations": {}},
        "05515938": {"imageId": "2368326", "question": "Which color is the shirt, red or blue?",
                     "answer": "red",
                     "fullAnswer": "The shirt is red.", "isBalanced": True,
                     "types": {"structural": "choose", "semantic": "attr", "detailed": "chooseAttr"},
                     "semantic": [], "annotations": {}},
    },
    "val": {
        "19336055": {"imageId": "2368326", "question": "Is the shirt made of cotton?", "answer": "maybe",
                     "fullAnswer": "...", "types": {"structural": "verify", "semantic": "attr"}},
    },
}
GQA_GRAPHS = {
    "2354786": {"width": 500, "height": 333, "location": "outdoors", "objects": {
        "2486325": {"name": "sky", "x": 0, "y": 0, "w": 500, "h": 100, "attributes": ["dark"],
                    "relations": []},
        "3007018": {"name": "pipe", "x": 300, "y": 150, "w": 40, "h": 120, "attributes": [],
                    "relations": [{"name": "on", "object": "3007019"},
                                  {"name": "to the right of", "object": "3007020"}]},
        "3007019": {"name": "wall", "x": 200, "y": 100, "w": 300, "h": 233, "attributes": ["white"],
                    "relations": []},
        "3007020": {"name": "pipe", "x": 10, "y": 150, "w": 40, "h": 100, "attributes": ["metal"],
                    "relations": []},
    }},
    "2368326": {"width": 375, "height": 500, "objects": {
        "1": {"name": "shirt", "x": 100, "y": 200, "w": 100, "h": 120, "attributes": ["red"],
              "relations": []},
    }},
}


def write_gqa(root, graphs=True):
    (root / "questions").mkdir(parents=True)
    (root / "images").mkdir()
    for split, qs in GQA_Q.items():
        (root / "questions" / f"{split}_balanced_questions.json").write_text(json.dumps(qs))
    rng = np.random.default_rng(0)
    for image_id in GQA_GRAPHS:
        pixels = rng.integers(0, 255, (30, 20, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / "images" / f"{image_id}.jpg")
    if graphs:
        (root / "sceneGraphs").mkdir()
        (root / "sceneGraphs" / "train_sceneGraphs.json").write_text(json.dumps(GQA_GRAPHS))
    return root


def test_gqa_train_with_scene_graphs(tmp_path):
    root = write_gqa(tmp_path / "gqa")
    ds = GQADataset(root, "train", image_size=12)
    assert len(ds) == 3 and ds.has_scenes
    _check_items(ds, 12)
    # question-id order
    assert [ds.text(i)["qid"] for i in range(3)] == sorted(GQA_Q["train"])
    by_q = {ds.text(i)["question"]: i for i in range(3)}
    i = by_q["Is the sky dark?"]
    assert ds.families[ds[i]["family"]] == "verify/attr"
    assert ds.vocab.decode(ds[i]["vague_ids"]) == "a yes or no question about what things look like"
    assert ds.answers.answer(int(ds[i]["answer"])) == "yes"
    j = by_q["What is on the white wall?"]
    assert ds.families[ds[j]["family"]] == "query/rel"
    # objects numbered left to right by box centre: metal pipe 0, sky 1, pipe 2, wall 3
    scene = ds.vocab.decode(ds[j]["scene_ids"])
    assert scene.startswith("4 objects : 0 metal pipe x 0 y 6 ; 1 dark sky x 5 y 1 ; "
                            "2 pipe x 6 y 6 , on 3 , to the right of 0 ; 3 white wall x 7 y 6")
    assert ds.vocab.decode(ds[j]["summary_ids"]) == "there are 4 objects : two pipes , a sky , a wall ."
    # the image is the fixture JPEG, resized
    ref = Image.open(root / "images" / "2354786.jpg").convert("RGB").resize((12, 12), Image.BILINEAR)
    ref = np.asarray(ref)
    assert torch.allclose(ds[i]["image"], torch.from_numpy(ref.copy()).permute(2, 0, 1).float() / 255)


def test_gqa_val_open_answers_and_no_graphs(tmp_path):
    root = write_gqa(tmp_path)
    train = GQADataset(root, "train", image_size=8)
    assert train.answers.answer(0) == "<unk>"
    val = GQADataset(root, "val", image_size=8, vocab=train.vocab, answers=train.answers)
    assert not val.has_scenes
    assert int(val[0]["answer"]) == 0  # "maybe" is not a train answer -> <unk>
    assert val[0]["scene_ids"].tolist() == [BOS, EOS]
    assert val.families[val[0]["family"]] == "verify/attr"
    assert len(GQADataset(root, "train", image_size=8, max_questions=2)) == 2


def test_gqa_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="GQA root"):
        GQADataset(tmp_path / "missing")
    root = write_gqa(tmp_path / "g")
    with pytest.raises(FileNotFoundError, match="testdev_balanced_questions.json"):
        GQADataset(root, "testdev")
    qfile = root / "questions" / "val_balanced_questions.json"
    qfile.write_text(json.dumps([{"imageId": "1", "question": "?"}]))
    with pytest.raises(DataFormatError, match="keyed by question id"):
        GQADataset(root, "val")
    qfile.write_text("{\"1\": {\"imageId\": ")
    with pytest.raises(DataFormatError, match="not valid JSON"):
        GQADataset(root, "val")
    qfile.write_text(json.dumps({"7": {"question": "Is it?", "answer": "no"}}))
    with pytest.raises(DataFormatError, match="question 7.*'imageId'"):
        GQADataset(root, "val")
    qfile.write_text(json.dumps({"7": {"imageId": "999", "question": "Is it?", "answer": "no"}}))
    with pytest.raises(FileNotFoundError, match="999.jpg"):
        GQADataset(root, "val")
    gfile = root / "sceneGraphs" / "train_sceneGraphs.json"
    g = json.loads(json.dumps(GQA_GRAPHS))
    del g["2354786"]["objects"]["3007019"]["x"]
    gfile.write_text(json.dumps(g))
    with pytest.raises(DataFormatError, match="object 3007019.*'x'"):
        GQADataset(root, "train")
    del g["2354786"]
    gfile.write_text(json.dumps(g))
    with pytest.raises(DataFormatError, match="2354786 has no entry"):
        GQADataset(root, "train")
