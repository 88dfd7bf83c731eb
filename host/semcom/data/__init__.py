"""Data for gr-semcom: CLEVR-like scenes and VQA questions, CLEVR/GQA loaders, JSCC image sets.

Public API (pure Python + numpy + torch + pillow/scikit-learn; no GNU Radio, nothing downloaded):

Images for the JSCC codecs (:mod:`.images`)
    ``image_set(source, *, size=32, n, seed, split="train") -> FloatTensor (n, 3, size, size) in [0, 1]``
    with ``source`` in ``"photos"`` (crops of scikit-learn's two real photographs; train/test from
    disjoint regions), ``"digits"`` (UCI digits, upsampled, 3 channels), ``"scenes"`` (generated).

Scenes (:mod:`.scenes`)
    ``SceneObject``, ``Scene`` (``.objects``, ``.relations()``, ``.to_dict()``/``from_dict``),
    ``generate_scene(rng)``, ``generate_scenes(n, seed)``, ``render_scene(scene, image_size=64)
    -> uint8 (H, W, 3)``, ``render_scenes``, ``object_masks``; constants ``SHAPES``, ``COLORS``,
    ``SIZES``, ``RELATIONS``, ``COLOR_RGB``.

Questions and texts (:mod:`.questions`)
    ``FAMILIES`` (family names, index = the ``family`` int), ``ANSWERS`` (fixed answer vocabulary),
    ``QuestionSampler(seed).sample(scene, k)`` -> list of ``Question`` (``text``, ``answer``,
    ``family``, ``vague``), ``vague_description(family, rng)``, ``scene_description(scene)``,
    ``natural_language_summary(scene)`` (groups of identical objects, no positions: a lossy
    baseline text); ``candidate_questions(scene, family)`` lists all. Texts are lower case with
    punctuation as separate words.

Vocabulary (:mod:`.vocab`)
    ``Vocab`` (word-level; ``PAD=0, BOS=1, EOS=2, UNK=3``; ``encode``/``decode``/``save``/``load``),
    ``AnswerVocab``, ``tokenize``, ``default_vocab()`` / ``default_answer_vocab()`` (fixed, for the
    generated data, so checkpoints do not depend on the dataset seed).

Datasets (:mod:`.datasets`, :mod:`.clevr`, :mod:`.gqa`)
    ``make_vqa_dataset(n_scenes=2000, questions_per_scene=5, seed=0, image_size=64)
    -> (train, val, test)`` split by scene 70/10/20, and ``collate_vqa(batch)``.
    ``CLEVRDataset(root, split="train", image_size=64, vocab=None, answers=None, max_questions=None)``
    and ``GQADataset(...)`` (same arguments) read the published formats from a local directory
    (layouts in :mod:`.clevr` / :mod:`.gqa`); missing files raise FileNotFoundError, malformed
    files ``DataFormatError`` (a ValueError). Pass the train split's ``.vocab``/``.answers`` to val/test
    (when None, the vocab is built from the split; CLEVR answers default to the fixed 28-answer
    ``CLEVR_ANSWERS``; GQA's answer vocab is built from the split with ``<unk>`` = 0). Families:
    CLEVR = FAMILIES + query_material, compare_integer, unknown (from the program's last function);
    GQA = "structural/semantic" pairs + unknown. Without scene files, scene/summary ids are BOS EOS.
    Every dataset has ``.vocab``, ``.answers``, ``.families`` and ``.text(i)`` (the strings of item i).
    Every item is a dict::

        image         FloatTensor (3, H, W) in [0, 1]
        vague_ids     LongTensor (Lv,)   vague task description, BOS ... EOS
        question_ids  LongTensor (Lq,)   detailed question, BOS ... EOS
        answer        LongTensor ()      index into the dataset's answer vocabulary (-100 if unknown)
        scene_ids     LongTensor (Ls,)   ground-truth scene description, BOS ... EOS
        summary_ids   LongTensor (Lm,)   natural-language summary, BOS ... EOS
        family        int                question family index (dataset.families[family] is its name)

    ``collate_vqa`` pads every ``*_ids`` with PAD (=0) to (B, L_max), stacks the rest, and adds
    ``*_lens`` LongTensor (B,) with the true lengths.
"""

from ._files import DataFormatError
from .clevr import CLEVR_ANSWERS, CLEVR_FAMILIES, CLEVRDataset
from .datasets import SyntheticVQADataset, collate_vqa, make_vqa_dataset
from .gqa import GQA_FAMILIES, GQADataset
from .images import image_set
from .questions import (
    ANSWERS,
    FAMILIES,
    Question,
    QuestionSampler,
    candidate_questions,
    natural_language_summary,
    scene_description,
    vague_description,
)
from .scenes import (
    COLOR_RGB,
    COLORS,
    RELATIONS,
    SHAPES,
    SIZES,
    Scene,
    SceneObject,
    generate_scene,
    generate_scenes,
    object_masks,
    render_scene,
    render_scenes,
)
from .vocab import (
    BOS,
    EOS,
    IGNORE_INDEX,
    PAD,
    UNK,
    AnswerVocab,
    Vocab,
    default_answer_vocab,
    default_vocab,
    tokenize,
)

__all__ = [
    "CLEVR_ANSWERS",
    "CLEVR_FAMILIES",
    "CLEVRDataset",
    "DataFormatError",
    "GQA_FAMILIES",
    "GQADataset",
    "ANSWERS",
    "BOS",
    "EOS",
    "FAMILIES",
    "IGNORE_INDEX",
    "PAD",
    "UNK",
    "AnswerVocab",
    "Question",
    "QuestionSampler",
    "SyntheticVQADataset",
    "Vocab",
    "candidate_questions",
    "collate_vqa",
    "default_answer_vocab",
    "default_vocab",
    "make_vqa_dataset",
    "natural_language_summary",
    "scene_description",
    "tokenize",
    "vague_description",
    "COLORS",
    "COLOR_RGB",
    "RELATIONS",
    "SHAPES",
    "SIZES",
    "Scene",
    "SceneObject",
    "generate_scene",
    "generate_scenes",
    "image_set",
    "object_masks",
    "render_scene",
    "render_scenes",
]
