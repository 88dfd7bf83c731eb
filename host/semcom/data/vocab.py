"""Word-level vocabulary for descriptions, questions and summaries, and the answer vocabulary.

``tokenize`` lower-cases and splits into words and single punctuation marks. ``Vocab`` maps words
to ids with the special tokens ``PAD=0, BOS=1, EOS=2, UNK=3`` first; ``AnswerVocab`` maps answers to
class indices (optionally with an ``<unk>`` class for open-vocabulary data such as GQA; otherwise
unknown answers map to ``IGNORE_INDEX`` = -100, which ``torch.nn.CrossEntropyLoss`` skips).
Both save to / load from JSON.

``default_vocab()`` / ``default_answer_vocab()`` are fixed for the generated CLEVR-like data (they
do not depend on a dataset's seed or size), so a checkpoint trained on one generated dataset reads
any other.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

import torch

PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIALS: tuple[str, ...] = ("<pad>", "<bos>", "<eos>", "<unk>")
IGNORE_INDEX = -100
_TOKEN_RE = re.compile(r"[a-z0-9]+|[^\sa-z0-9]")


def tokenize(text: str) -> list[str]:
    """'What color is the cube?' -> ['what', 'color', 'is', 'the', 'cube', '?']."""
    return _TOKEN_RE.findall(text.lower())


def _read_json(path: str | Path, kind: str) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{kind} file not found: {path}")
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{kind} file {path} is not valid JSON: {e}") from e
    if not isinstance(d, dict) or d.get("type") != kind or not isinstance(d.get("tokens"), list):
        raise ValueError(f"{path} is not a {kind} file (expected {{'type': '{kind}', 'tokens': [...]}})")
    return d


class Vocab:
    """Word <-> id map. ids 0..3 are PAD, BOS, EOS, UNK."""

    def __init__(self, words: Iterable[str]) -> None:
        words = [w for w in words if w not in SPECIALS]
        self.itos: list[str] = list(SPECIALS) + list(dict.fromkeys(words))
        self.stoi: dict[str, int] = {w: i for i, w in enumerate(self.itos)}

    @classmethod
    def build(cls, texts: Iterable[str], min_freq: int = 1, max_size: int | None = None) -> Vocab:
        """Vocabulary of the words in ``texts`` (most frequent first, ties alphabetical)."""
        counts = Counter(w for t in texts for w in tokenize(t))
        words = sorted((w for w, c in counts.items() if c >= min_freq), key=lambda w: (-counts[w], w))
        if max_size is not None:
            words = words[: max(0, max_size - len(SPECIALS))]
        return cls(words)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, word: str) -> bool:
        return word in self.stoi

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.itos == other.itos

    def encode(self, text: str, bos: bool = True, eos: bool = True, max_len: int | None = None) -> list[int]:
        """Text -> ids (BOS ... EOS); unknown words -> UNK; ``max_len`` truncates (keeping EOS)."""
        ids = [self.stoi.get(w, UNK) for w in tokenize(text)]
        if max_len is not None:
            ids = ids[: max(0, max_len - int(bos) - int(eos))]
        return [BOS] * bos + ids + [EOS] * eos

    def encode_tensor(self, text: str, **kw) -> torch.Tensor:
        """Text -> LongTensor (L,)."""
        return torch.tensor(self.encode(text, **kw), dtype=torch.long)

    def decode(self, ids: Sequence[int] | torch.Tensor, strip_special: bool = True) -> str:
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        words = [self.itos[i] for i in ids if not (strip_special and i in (PAD, BOS, EOS))]
        return " ".join(words)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps({"type": "word_vocab", "version": 1, "tokens": self.itos}, indent=0))

    @classmethod
    def load(cls, path: str | Path) -> Vocab:
        d = _read_json(path, "word_vocab")
        if tuple(d["tokens"][: len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"{path}: the first tokens must be {SPECIALS}")
        return cls(d["tokens"])


class AnswerVocab:
    """Answer string <-> class index. With ``unk=True`` index 0 is ``<unk>`` (open vocabularies)."""

    UNK_TOKEN = "<unk>"

    def __init__(self, answers: Iterable[str], unk: bool = False) -> None:
        answers = [a for a in answers if a != self.UNK_TOKEN]
        self.unk = unk
        self.itos: list[str] = ([self.UNK_TOKEN] if unk else []) + list(dict.fromkeys(answers))
        self.stoi: dict[str, int] = {a: i for i, a in enumerate(self.itos)}

    @classmethod
    def build(cls, answers: Iterable[str], unk: bool = False, max_size: int | None = None) -> AnswerVocab:
        """Most frequent answers first (ties alphabetical)."""
        counts = Counter(answers)
        ordered = sorted(counts, key=lambda a: (-counts[a], a))
        if max_size is not None:
            ordered = ordered[: max_size - int(unk)]
        return cls(ordered, unk=unk)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, answer: str) -> bool:
        return answer in self.stoi

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AnswerVocab) and self.itos == other.itos

    def index(self, answer: str | None) -> int:
        """Class index; unknown (or missing) answers -> 0 (``<unk>``) or IGNORE_INDEX (-100)."""
        if answer is not None and answer in self.stoi:
            return self.stoi[answer]
        return 0 if self.unk else IGNORE_INDEX

    def answer(self, index: int) -> str:
        return self.itos[index]

    def save(self, path: str | Path) -> None:
        d = {"type": "answer_vocab", "version": 1, "unk": self.unk, "tokens": self.itos}
        Path(path).write_text(json.dumps(d, indent=0))

    @classmethod
    def load(cls, path: str | Path) -> AnswerVocab:
        d = _read_json(path, "answer_vocab")
        return cls(d["tokens"], unk=bool(d.get("unk", False)))


@lru_cache(maxsize=1)
def default_vocab() -> Vocab:
    """Fixed vocabulary of the generated data: every word any template, description or summary uses.

    Built from the template lists themselves plus every candidate question of a fixed set of
    scenes, sorted alphabetically so ids never depend on frequencies.
    """
    from .questions import (
        ANSWERS,
        FAMILIES,
        NUMBER_WORDS,
        PLURAL,
        REL_PHRASE,
        VAGUE,
        candidate_questions,
        natural_language_summary,
        scene_description,
    )
    from .scenes import generate_scenes

    texts: list[str] = list(ANSWERS) + list(NUMBER_WORDS) + list(PLURAL.values()) + list(REL_PHRASE.values())
    texts += [v for vs in VAGUE.values() for v in vs]
    texts += ["there is are object objects : ; , . and a an x y row", " ".join(str(i) for i in range(20))]
    for sc in generate_scenes(60, seed=20240601):
        texts += [scene_description(sc), natural_language_summary(sc)]
        for fam in FAMILIES:
            texts += [c[1] for c in candidate_questions(sc, fam)]
    return Vocab(sorted({w for t in texts for w in tokenize(t)}))


@lru_cache(maxsize=1)
def default_answer_vocab() -> AnswerVocab:
    """The fixed answer vocabulary of the generated data (``questions.ANSWERS``, in that order)."""
    from .questions import ANSWERS

    return AnswerVocab(ANSWERS)
