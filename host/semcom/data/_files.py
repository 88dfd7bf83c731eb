"""Shared pieces of the file-based loaders (CLEVR, GQA): JSON reading with clear errors, image
loading/resizing, and a base Dataset that turns text records into the common item schema."""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from .vocab import AnswerVocab, Vocab


class DataFormatError(ValueError):
    """A dataset file exists but is not in the expected published format."""


def read_json(path: Path, what: str, hint: str = "") -> object:
    """Load a JSON file; FileNotFoundError / DataFormatError name the file and what was expected."""
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}" + (f" ({hint})" if hint else ""))
    try:
        with path.open("r", encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise DataFormatError(f"{what} {path} is not valid JSON: {e}") from e
    except UnicodeDecodeError as e:
        raise DataFormatError(f"{what} {path} is not UTF-8 text: {e}") from e


def require(d: object, key: str, where: str, types: type | tuple[type, ...] = object) -> object:
    """``d[key]``; DataFormatError naming ``where`` when d is not a dict, lacks key or has a bad type."""
    if not isinstance(d, dict):
        raise DataFormatError(f"{where}: expected a JSON object, got {type(d).__name__}")
    if key not in d:
        raise DataFormatError(f"{where}: missing key {key!r}")
    v = d[key]
    if not isinstance(v, types):
        raise DataFormatError(f"{where}: {key!r} should be {types}, got {type(v).__name__}")
    return v


def load_image(path: Path, size: int) -> torch.Tensor:
    """Image file -> FloatTensor (3, size, size) in [0, 1] (RGB, resized with Pillow's antialiasing)."""
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    try:
        with Image.open(path) as im:
            im = im.convert("RGB").resize((size, size), Image.BILINEAR)
            arr = np.asarray(im, dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as e:
        raise DataFormatError(f"cannot read image {path}: {e}") from e
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)


@dataclass(frozen=True)
class Record:
    """One question as text, before encoding."""

    image_path: Path
    question: str
    answer: str | None
    family: int
    vague: str
    scene: str  # ground-truth scene description ("" when no scene graph is available)
    summary: str  # natural-language summary ("" when no scene graph is available)
    qid: str = ""


class FileVQADataset(Dataset):
    """Records -> items of the common schema (see :mod:`semcom.data.datasets`).

    Texts are encoded once at construction; images are read lazily and kept in a small LRU cache
    (consecutive questions usually share an image).
    """

    families: tuple[str, ...] = ()

    def __init__(self, records: list[Record], image_size: int, vocab: Vocab | None,
                 answers: AnswerVocab | None, open_answers: bool, cache_images: int = 256,
                 extra_texts: tuple[str, ...] = ()) -> None:
        self.records = records
        self.image_size = int(image_size)
        # extra_texts (e.g. every family's vague description) are always in a vocabulary built here,
        # so a split that lacks a family still encodes the other splits' descriptions.
        texts = [t for r in records for t in (r.question, r.vague, r.scene, r.summary)]
        self.vocab = vocab or Vocab.build(texts + list(extra_texts))
        self.answers = answers or AnswerVocab.build((r.answer for r in records if r.answer is not None),
                                                    unk=open_answers)
        v = self.vocab
        self._ids = [(v.encode_tensor(r.vague), v.encode_tensor(r.question), v.encode_tensor(r.scene),
                      v.encode_tensor(r.summary)) for r in records]
        self._answer = torch.tensor([self.answers.index(r.answer) for r in records], dtype=torch.long)
        self._cache: OrderedDict[Path, torch.Tensor] = OrderedDict()
        self._cache_size = cache_images

    def __len__(self) -> int:
        return len(self.records)

    def image(self, path: Path) -> torch.Tensor:
        if path in self._cache:
            self._cache.move_to_end(path)
            return self._cache[path]
        img = load_image(path, self.image_size)
        if self._cache_size > 0:
            self._cache[path] = img
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return img

    def __getitem__(self, i: int) -> dict:
        r = self.records[i]
        vague, question, scene, summary = self._ids[i]
        return {
            "image": self.image(r.image_path).clone(),
            "vague_ids": vague,
            "question_ids": question,
            "answer": self._answer[i],
            "scene_ids": scene,
            "summary_ids": summary,
            "family": r.family,
        }

    def text(self, i: int) -> dict[str, str | None]:
        r = self.records[i]
        return {"vague": r.vague, "question": r.question, "answer": r.answer,
                "family": self.families[r.family], "scene": r.scene, "summary": r.summary,
                "image": str(r.image_path), "qid": r.qid}


def check_images_exist(records: list[Record], root: Path) -> None:
    """FileNotFoundError listing (a few of) the referenced images that are missing."""
    missing = sorted({str(r.image_path) for r in records if not r.image_path.is_file()})
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise FileNotFoundError(f"{len(missing)} image(s) referenced by the questions are missing under "
                                f"{root}: " + ", ".join(missing[:3]) + more)
