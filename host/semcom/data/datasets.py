"""Torch datasets of generated CLEVR-like VQA, and the padding collate function shared by all loaders.

Item schema (the same for the generated data, CLEVR and GQA)::

    image         FloatTensor (3, H, W) in [0, 1]
    vague_ids     LongTensor (Lv,)   vague task description   (BOS ... EOS)
    question_ids  LongTensor (Lq,)   detailed question         (BOS ... EOS)
    answer        LongTensor ()      answer class (IGNORE_INDEX = -100 when unknown)
    scene_ids     LongTensor (Ls,)   ground-truth scene description (BOS ... EOS)
    summary_ids   LongTensor (Lm,)   natural-language summary  (BOS ... EOS)
    family        int                index into ``dataset.families``

Defaults of :func:`make_vqa_dataset`: 2000 scenes x 5 questions at 64 x 64, split by scene 70/10/20
-> 7000 / 1000 / 2000 questions (the test split has >= 1000 questions for the loopback comparison).
Building it takes about 15 s on one core; the images take 2000 x 12 KiB = 24 MiB as uint8.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..progress import progress_bar
from .questions import FAMILIES, Question, QuestionSampler, natural_language_summary, scene_description
from .scenes import Scene, generate_scenes, render_scene
from .vocab import PAD, AnswerVocab, Vocab, default_answer_vocab, default_vocab

ID_KEYS: tuple[str, ...] = ("vague_ids", "question_ids", "scene_ids", "summary_ids")
DEFAULT_N_SCENES = 2000
DEFAULT_QUESTIONS_PER_SCENE = 5
DEFAULT_IMAGE_SIZE = 64
DEFAULT_SPLIT = (0.7, 0.1, 0.2)


class SyntheticVQADataset(Dataset):
    """Generated scenes with their questions. Images are kept as uint8 and converted per item.

    Attributes: ``scenes`` (list of Scene), ``questions`` (list of (scene index, Question)),
    ``images`` uint8 (S, 3, H, W), ``vocab``, ``answers`` (AnswerVocab), ``families`` (names).
    """

    families: tuple[str, ...] = FAMILIES

    def __init__(self, scenes: list[Scene], images: torch.Tensor, questions: list[tuple[int, Question]],
                 vocab: Vocab, answers: AnswerVocab) -> None:
        self.scenes, self.images, self.questions = scenes, images, questions
        self.vocab, self.answers = vocab, answers
        self.image_size = int(images.shape[-1]) if len(images) else 0
        # Per-scene texts are encoded once; per-question texts too (cheap, and __getitem__ stays light).
        self._scene_ids = [vocab.encode_tensor(scene_description(s)) for s in scenes]
        self._summary_ids = [vocab.encode_tensor(natural_language_summary(s)) for s in scenes]
        self._q_ids = [vocab.encode_tensor(q.text) for _, q in questions]
        self._v_ids = [vocab.encode_tensor(q.vague) for _, q in questions]
        self._answers = torch.tensor([answers.index(q.answer) for _, q in questions], dtype=torch.long)

    def __len__(self) -> int:
        return len(self.questions)

    def __getitem__(self, i: int) -> dict:
        s, q = self.questions[i]
        return {
            "image": self.images[s].float().div(255.0),
            "vague_ids": self._v_ids[i],
            "question_ids": self._q_ids[i],
            "answer": self._answers[i],
            "scene_ids": self._scene_ids[s],
            "summary_ids": self._summary_ids[s],
            "family": q.family,
        }

    def text(self, i: int) -> dict[str, str]:
        """The strings behind item ``i`` (for inspection and examples)."""
        s, q = self.questions[i]
        sc = self.scenes[s]
        return {"vague": q.vague, "question": q.text, "answer": q.answer, "family": q.family_name,
                "scene": scene_description(sc), "summary": natural_language_summary(sc)}


def make_vqa_dataset(n_scenes: int = DEFAULT_N_SCENES, questions_per_scene: int = DEFAULT_QUESTIONS_PER_SCENE,
                     seed: int = 0, image_size: int = DEFAULT_IMAGE_SIZE,
                     split: Sequence[float] = DEFAULT_SPLIT, vocab: Vocab | None = None,
                     progress: bool | None = None,
                     ) -> tuple[SyntheticVQADataset, SyntheticVQADataset, SyntheticVQADataset]:
    """Generate scenes + balanced questions -> (train, val, test), split by scene (disjoint scenes).

    Deterministic by ``(n_scenes, questions_per_scene, seed, image_size, split)``. The word and answer
    vocabularies are the fixed defaults unless ``vocab`` is given.
    """
    if n_scenes < 3 or questions_per_scene < 1:
        raise ValueError("need n_scenes >= 3 and questions_per_scene >= 1")
    fr = np.asarray(split, dtype=float)
    if fr.shape != (3,) or (fr < 0).any() or not np.isclose(fr.sum(), 1.0):
        raise ValueError(f"split must be three non-negative fractions summing to 1, got {split}")
    vocab = vocab or default_vocab()
    answers = default_answer_vocab()
    ss = np.random.SeedSequence(seed)
    scene_seed, q_seed = (int(s.generate_state(1)[0]) for s in ss.spawn(2))
    scenes = generate_scenes(n_scenes, scene_seed)
    sampler = QuestionSampler(q_seed)
    show = progress if progress is not None else n_scenes >= 5000
    images = torch.empty((n_scenes, 3, image_size, image_size), dtype=torch.uint8)
    qs: list[list[Question]] = []
    for i, sc in enumerate(progress_bar(scenes, desc="scenes", progress=show)):
        images[i] = torch.from_numpy(render_scene(sc, image_size)).permute(2, 0, 1)
        qs.append(sampler.sample(sc, questions_per_scene))
    bounds = np.round(np.cumsum(fr) * n_scenes).astype(int)
    starts = [0, bounds[0], bounds[1]]
    ends = [bounds[0], bounds[1], n_scenes]
    out = []
    for a, b in zip(starts, ends, strict=True):
        items = [(s - a, q) for s in range(a, b) for q in qs[s]]
        out.append(SyntheticVQADataset(scenes[a:b], images[a:b], items, vocab, answers))
    return out[0], out[1], out[2]


def collate_vqa(batch: list[dict]) -> dict:
    """Pad a list of items into a batch.

    ``*_ids`` -> LongTensor (B, L_max) padded with PAD (=0) plus ``*_lens`` LongTensor (B,);
    ``image`` -> (B, 3, H, W); ``answer``, ``family`` -> LongTensor (B,). Other keys become lists.
    """
    if not batch:
        raise ValueError("empty batch")
    out: dict = {}
    for key in batch[0]:
        vals = [b[key] for b in batch]
        if key.endswith("_ids"):
            lens = torch.tensor([len(v) for v in vals], dtype=torch.long)
            padded = torch.full((len(vals), int(lens.max()) if len(vals) else 0), PAD, dtype=torch.long)
            for i, v in enumerate(vals):
                padded[i, : len(v)] = v
            out[key] = padded
            out[key[: -len("_ids")] + "_lens"] = lens
        elif key == "image":
            out[key] = torch.stack(vals)
        elif key in ("answer", "family"):
            out[key] = torch.as_tensor([int(v) for v in vals], dtype=torch.long)
        else:
            out[key] = vals
    return out
