"""GQA loader (balanced question files, local directory in the published layout; nothing downloaded).

Layout under ``root``::

    questions/<split>_balanced_questions.json   {"<questionId>": {"imageId", "question", "answer",
                                                 "fullAnswer", "types": {"structural", "semantic",
                                                 "detailed"}, ...}, ...}
    images/<imageId>.jpg
    sceneGraphs/<split>_sceneGraphs.json         optional: {"<imageId>": {"width", "height", "objects":
                                                 {"<objId>": {"name", "x", "y", "w", "h",
                                                 "attributes": [...], "relations": [{"name", "object"}]}}}}

``split`` is e.g. "train", "val", "testdev" (GQA's file names). The family is the pair
(types.structural, types.semantic), e.g. "verify/attr"; the vague task description is composed from
the two ("a yes or no question about what things look like"). GQA answers are open-vocabulary: the
answer vocabulary built from a split has an ``<unk>`` class (index 0) for answers it does not know.

With scene graphs, ``scene_ids`` holds :func:`gqa_scene_description` (every object with its
attributes, quantised box centre and relations, objects listed left to right) and ``summary_ids``
:func:`gqa_summary` (object names with counts); without them both are BOS EOS and ``has_scenes`` is False.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from ._files import DataFormatError, FileVQADataset, Record, check_images_exist, read_json, require
from .vocab import AnswerVocab, Vocab

STRUCTURAL: dict[str, str] = {
    "verify": "a yes or no question",
    "query": "an open question",
    "choose": "a question choosing between two options",
    "logical": "a yes or no question combining facts",
    "compare": "a question comparing things",
}
SEMANTIC: dict[str, str] = {
    "attr": "about what things look like",
    "rel": "about how things are related to each other",
    "obj": "about which objects are there",
    "cat": "about what kinds of things there are",
    "global": "about the whole scene",
}
GQA_FAMILIES: tuple[str, ...] = tuple(f"{s}/{t}" for s in STRUCTURAL for t in SEMANTIC) + ("unknown",)


def gqa_family(types: dict | None) -> str:
    """"structural/semantic" from a question's ``types``; "unknown" when absent or unrecognised."""
    if not isinstance(types, dict):
        return "unknown"
    name = f"{types.get('structural')}/{types.get('semantic')}"
    return name if name in GQA_FAMILIES else "unknown"


def gqa_vague(family: str) -> str:
    if family == "unknown":
        return "a question about the image"
    s, t = family.split("/")
    return f"{STRUCTURAL[s]} {SEMANTIC[t]}"


def _bin(v: float) -> str:
    return str(int(min(max(v, 0.0), 0.999) * 10))


def _objects_left_to_right(graph: dict, where: str) -> list[tuple[str, dict]]:
    objs = require(graph, "objects", where, dict)
    for oid, o in objs.items():
        require(o, "name", f"{where} object {oid}", str)
        for key in ("x", "y", "w", "h"):
            require(o, key, f"{where} object {oid}", (int, float))
    return sorted(objs.items(), key=lambda kv: (kv[1]["x"] + kv[1]["w"] / 2, kv[0]))


def gqa_scene_description(graph: dict, where: str = "scene graph") -> str:
    """Text of a GQA scene graph: ``"<n> objects : 0 <attrs> <name> x <bin> y <bin> , <rel> 3 ; 1 ..."``.

    Objects are numbered left to right (by box centre); relations name the target's number.
    """
    ordered = _objects_left_to_right(graph, where)
    index = {oid: i for i, (oid, _) in enumerate(ordered)}
    width = float(graph.get("width") or max((o["x"] + o["w"] for _, o in ordered), default=1))
    height = float(graph.get("height") or max((o["y"] + o["h"] for _, o in ordered), default=1))
    parts = []
    for i, (_, o) in enumerate(ordered):
        words = [str(i)] + [str(a) for a in o.get("attributes", [])] + [str(o["name"])]
        words += ["x", _bin((o["x"] + o["w"] / 2) / width), "y", _bin((o["y"] + o["h"] / 2) / height)]
        rels = [f"{r['name']} {index[r['object']]}" for r in o.get("relations", [])
                if isinstance(r, dict) and r.get("object") in index and "name" in r]
        parts.append(" , ".join([" ".join(words)] + rels))
    return f"{len(ordered)} objects : " + " ; ".join(parts)


def gqa_summary(graph: dict, where: str = "scene graph") -> str:
    """Short summary: object names with counts, most frequent first ("there are 5 objects : two cars ...")."""
    names = Counter(str(o["name"]) for _, o in _objects_left_to_right(graph, where))
    words = ("a", "two", "three", "four", "five", "six", "seven", "eight", "nine")
    parts = [f"a {n}" if c == 1 else f"{words[c - 1] if c <= 9 else c} {n}s"
             for n, c in sorted(names.items(), key=lambda kv: (-kv[1], kv[0]))]
    return f"there are {sum(names.values())} objects : " + " , ".join(parts) + " ."


class GQADataset(FileVQADataset):
    """GQA balanced questions as items of the common schema.

    Args:
        root: directory with ``questions/``, ``images/`` and optionally ``sceneGraphs/``.
        split: "train", "val", "testdev", ... (selects ``<split>_balanced_questions.json``).
        image_size: images are resized to (image_size, image_size).
        vocab, answers: pass the train split's to the others; when None they are built from this split.
        max_questions: keep only the first N questions (in question-id order).
        check_images: verify at construction that every referenced image exists.
    """

    families = GQA_FAMILIES

    def __init__(self, root: str | Path, split: str = "train", image_size: int = 64,
                 vocab: Vocab | None = None, answers: AnswerVocab | None = None,
                 max_questions: int | None = None, check_images: bool = True) -> None:
        self.root = root = Path(root)
        self.split = split
        if not root.is_dir():
            raise FileNotFoundError(f"GQA root directory not found: {root}")
        qpath = root / "questions" / f"{split}_balanced_questions.json"
        data = read_json(qpath, "GQA questions file",
                         f"expected <root>/questions/{split}_balanced_questions.json")
        if not isinstance(data, dict):
            raise DataFormatError(f"{qpath}: expected a JSON object keyed by question id, "
                                  f"got {type(data).__name__}")
        qids = sorted(data)
        if max_questions is not None:
            qids = qids[:max_questions]

        gpath = root / "sceneGraphs" / f"{split}_sceneGraphs.json"
        self.has_scenes = gpath.is_file()
        graphs = read_json(gpath, "GQA scene graph file") if self.has_scenes else {}
        if not isinstance(graphs, dict):
            raise DataFormatError(f"{gpath}: expected a JSON object keyed by image id")

        img_dir = root / "images"
        texts: dict[str, tuple[str, str]] = {}
        records = []
        for qid in qids:
            q = data[qid]
            where = f"{qpath} question {qid}"
            image_id = str(require(q, "imageId", where, (str, int)))
            text = str(require(q, "question", where, str))
            answer = q.get("answer")
            fam = gqa_family(q.get("types"))
            if image_id not in texts:
                if self.has_scenes:
                    if image_id not in graphs:
                        raise DataFormatError(f"{where}: image {image_id} has no entry in {gpath}")
                    gw = f"{gpath} image {image_id}"
                    g = graphs[image_id]
                    texts[image_id] = (gqa_scene_description(g, gw), gqa_summary(g, gw))
                else:
                    texts[image_id] = ("", "")
            records.append(Record(img_dir / f"{image_id}.jpg", text, None if answer is None else str(answer),
                                  GQA_FAMILIES.index(fam), gqa_vague(fam), *texts[image_id], qid=str(qid)))
        if check_images:
            check_images_exist(records, img_dir)
        super().__init__(records, image_size, vocab, answers, open_answers=True,
                         extra_texts=tuple(gqa_vague(f) for f in GQA_FAMILIES))
