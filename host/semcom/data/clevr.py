"""CLEVR v1.0 loader (local files in the published layout; nothing is downloaded).

Layout under ``root`` (as unpacked from CLEVR_v1.0.zip)::

    questions/CLEVR_<split>_questions.json   {"info": ..., "questions": [{"image_filename", "question",
                                              "answer", "program": [{"function"|"type", "inputs",
                                              "value_inputs"}...], "question_family_index", ...}]}
    images/<split>/<image_filename>          480 x 320 PNG
    scenes/CLEVR_<split>_scenes.json         optional: {"scenes": [{"image_filename", "objects":
                                              [{"color", "size", "shape", "material", "pixel_coords"}],
                                              "relationships": {"left": [[...]], ...}}]}

``split`` is "train", "val" or "test" (the test split has no answers or programs: answer = -100).
The question family, and with it the vague task description, comes from the last function of the
question's program (``exist``, ``count``, ``query_color``, ``equal_size``, ``greater_than``, ...).
With a scene file, ``scene_ids``/``summary_ids`` hold :func:`scene_description` /
:func:`natural_language_summary` of the CLEVR scene (materials included; "row" from the camera depth);
without one they are just BOS EOS and ``has_scenes`` is False.
"""

from __future__ import annotations

from pathlib import Path

from ._files import DataFormatError, FileVQADataset, Record, check_images_exist, read_json, require
from .questions import FAMILIES, VAGUE, natural_language_summary, scene_description
from .scenes import COLORS, SHAPES, SIZES, Scene, SceneObject
from .vocab import AnswerVocab, Vocab

CLEVR_IMAGE_WH = (480, 320)
# Shared family names keep the indices of the generated data's FAMILIES.
CLEVR_FAMILIES: tuple[str, ...] = FAMILIES + ("query_material", "compare_integer", "unknown")
CLEVR_VAGUE: dict[str, str] = {name: texts[0] for name, texts in VAGUE.items()} | {
    "query_material": "a question about what the objects are made of",
    "compare_integer": "a question comparing the numbers of things",
    "unknown": "a question about the image",
}
CLEVR_MATERIALS: tuple[str, ...] = ("rubber", "metal")
# CLEVR's closed answer set (yes/no, counts 0-10, colours, shapes, sizes, materials).
CLEVR_ANSWERS: tuple[str, ...] = (("yes", "no") + tuple(str(i) for i in range(11)) + COLORS + SHAPES + SIZES
                                  + CLEVR_MATERIALS)
_LAST_FUNCTION_FAMILY: dict[str, str] = {
    "exist": "exist",
    "count": "count",
    "query_color": "query_color",
    "query_shape": "query_shape",
    "query_size": "query_size",
    "query_material": "query_material",
    "equal_color": "compare_attribute",
    "equal_shape": "compare_attribute",
    "equal_size": "compare_attribute",
    "equal_material": "compare_attribute",
    "equal_integer": "compare_integer",
    "less_than": "compare_integer",
    "greater_than": "compare_integer",
}


def clevr_family(program: list | None) -> str:
    """Family name from a CLEVR program (list of function nodes); "unknown" without one."""
    if not program:
        return "unknown"
    last = program[-1]
    fn = last.get("function", last.get("type")) if isinstance(last, dict) else None
    return _LAST_FUNCTION_FAMILY.get(str(fn), "unknown")


def clevr_scene(d: dict, where: str, image_wh: tuple[int, int] = CLEVR_IMAGE_WH) -> Scene:
    """A CLEVR scene JSON object -> Scene (positions from pixel_coords, depth = camera distance)."""
    objs = []
    for k, o in enumerate(require(d, "objects", where, list)):
        w = f"{where} object {k}"
        px = require(o, "pixel_coords", w, list)
        if len(px) < 2:
            raise DataFormatError(f"{w}: pixel_coords should be [x, y, depth]")
        objs.append(SceneObject(
            shape=str(require(o, "shape", w)), color=str(require(o, "color", w)),
            size=str(require(o, "size", w)),
            x=float(px[0]) / image_wh[0], y=float(px[1]) / image_wh[1],
            material=str(o["material"]) if "material" in o else None,
            depth=float(px[2]) if len(px) > 2 else None))
    rel = d.get("relationships")
    return Scene(objs, rel if isinstance(rel, dict) and rel else None)


class CLEVRDataset(FileVQADataset):
    """CLEVR v1.0 questions as items of the common schema.

    Args:
        root: directory with ``questions/``, ``images/`` and optionally ``scenes/``.
        split: "train", "val" or "test".
        image_size: images are resized to (image_size, image_size).
        vocab: pass the train split's to val/test; when None it is built from this split's texts.
        answers: default: the fixed ``CLEVR_ANSWERS`` (anything else maps to -100).
        max_questions: keep only the first N questions (for quick runs).
        check_images: verify at construction that every referenced image exists.
    """

    families = CLEVR_FAMILIES

    def __init__(self, root: str | Path, split: str = "train", image_size: int = 64,
                 vocab: Vocab | None = None, answers: AnswerVocab | None = None,
                 max_questions: int | None = None, check_images: bool = True) -> None:
        self.root = root = Path(root)
        self.split = split
        if not root.is_dir():
            raise FileNotFoundError(f"CLEVR root directory not found: {root}")
        qpath = root / "questions" / f"CLEVR_{split}_questions.json"
        data = read_json(qpath, "CLEVR questions file",
                         f"expected <root>/questions/CLEVR_{split}_questions.json")
        questions = require(data, "questions", str(qpath), list)
        if max_questions is not None:
            questions = questions[:max_questions]

        spath = root / "scenes" / f"CLEVR_{split}_scenes.json"
        scenes: dict[str, Scene] = {}
        self.has_scenes = spath.is_file()
        if self.has_scenes:
            sdata = read_json(spath, "CLEVR scenes file")
            for k, s in enumerate(require(sdata, "scenes", str(spath), list)):
                where = f"{spath} scene {k}"
                scenes[str(require(s, "image_filename", where))] = clevr_scene(s, where)

        img_dir = root / "images" / split
        records = []
        texts: dict[str, tuple[str, str]] = {}
        for k, q in enumerate(questions):
            where = f"{qpath} question {k}"
            fname = str(require(q, "image_filename", where, str))
            text = str(require(q, "question", where, str))
            program = q.get("program")
            if program is not None and not isinstance(program, list):
                raise DataFormatError(f"{where}: 'program' should be a list")
            fam = clevr_family(program)
            if fname not in texts:
                sc = scenes.get(fname)
                if self.has_scenes and sc is None:
                    raise DataFormatError(f"{where}: image {fname} has no entry in {spath}")
                texts[fname] = (scene_description(sc), natural_language_summary(sc)) if sc else ("", "")
            answer = None if q.get("answer") is None else str(q["answer"])
            records.append(Record(img_dir / fname, text, answer, CLEVR_FAMILIES.index(fam),
                                  CLEVR_VAGUE[fam], *texts[fname], qid=str(q.get("question_index", k))))
        if check_images:
            check_images_exist(records, img_dir)
        super().__init__(records, image_size, vocab, answers or AnswerVocab(CLEVR_ANSWERS),
                         open_answers=False, extra_texts=tuple(CLEVR_VAGUE.values()))
