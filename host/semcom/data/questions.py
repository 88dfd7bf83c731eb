"""Questions from templates over scene graphs, vague task descriptions, scene texts.

Seven question families in the spirit of CLEVR's (the ``family`` int is the index in ``FAMILIES``):

====================  ===========================================================  ==================
family                example                                                      answers
====================  ===========================================================  ==================
exist                 "is there a large red sphere ?"                              yes / no
count                 "how many small cubes are there ?"                           0 .. 6
query_color           "what color is the large cube ?"                             8 colours
query_shape           "what shape is the small blue thing ?"                       3 shapes
query_size            "what size is the red cylinder ?"                            small / large
compare_attribute     "does the red sphere have the same size as the blue cube ?"  yes / no
spatial_relation      "what color is the cube to the left of the small sphere ?"   colours/shapes/sizes
====================  ===========================================================  ==================

Referring expressions ("the large cube") always pick out exactly one object, and never name the
attribute being asked about. In spatial questions the subject ("the cube") is ambiguous in the whole
scene and only the relation makes it unique, so those questions really need positions.

Balanced sampling (:class:`QuestionSampler`): each question's family is the least used so far
(among families the scene can produce), its template variant is drawn uniformly, and among the
answers the scene allows for that (family, variant) the least used so far is taken. Answer
distributions within a family are therefore close to uniform over what scenes can produce, so no
family is answered well by its prior (tests check the majority-answer rate).

Texts (lower case, punctuation as separate words so a whitespace tokenizer works):

* ``vague_description(family)``: what the *sensor* agent is told ("a question about the colors in
  the image"), a few paraphrases per family.
* ``scene_description(scene)``: the ground truth the task agent is pre-trained on. Fixed form:
  ``"<n> objects : <size> <color> [<material>] <shape> x <0-9> y <0-9> row <r> ; ..."`` with objects
  listed **left to right** (so "j is left of i" iff j comes earlier), ``x``/``y`` the centre quantised
  to 10 bins, and ``row`` the object's rank from back (0) to front, so "j is in front of i" iff
  row_j > row_i. Together this fully specifies the scene graph including all relations.
* ``natural_language_summary(scene)``: a shorter human-style summary: groups of identical objects
  ("there are five objects : two large red spheres , a small blue cube and ...") without positions.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np

from .scenes import COLORS, RELATIONS, SHAPES, SIZES, Scene, SceneObject

FAMILIES: tuple[str, ...] = (
    "exist",
    "count",
    "query_color",
    "query_shape",
    "query_size",
    "compare_attribute",
    "spatial_relation",
)
MAX_COUNT = 9
ANSWERS: tuple[str, ...] = (("yes", "no") + tuple(str(i) for i in range(MAX_COUNT + 1))
                             + COLORS + SHAPES + SIZES)

ATTRS: tuple[str, ...] = ("size", "color", "shape")  # order in which a noun phrase names them
ATTR_VALUES: dict[str, tuple[str, ...]] = {"size": SIZES, "color": COLORS, "shape": SHAPES}

VAGUE: dict[str, tuple[str, ...]] = {
    "exist": ("a question about whether something is in the image",
              "a question about what kinds of things are present"),
    "count": ("a question about how many things there are",
              "a question about the number of objects"),
    "query_color": ("a question about the colors in the image",
                    "a question about what color something is"),
    "query_shape": ("a question about the shapes of the objects",
                    "a question about what shape something is"),
    "query_size": ("a question about the sizes of the objects",
                   "a question about how big something is"),
    "compare_attribute": ("a question comparing two objects",
                          "a question about whether two things are alike"),
    "spatial_relation": ("a question about where things are relative to each other",
                         "a question about the positions of the objects"),
}

REL_PHRASE: dict[str, str] = {
    "left": "to the left of",
    "right": "to the right of",
    "front": "in front of",
    "behind": "behind",
}
PLURAL: dict[str, str] = {"cube": "cubes", "sphere": "spheres", "cylinder": "cylinders", "thing": "things"}
NUMBER_WORDS: tuple[str, ...] = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                                 "nine", "ten")

Filter = dict[str, str]  # attribute -> value, e.g. {"size": "large", "shape": "cube"}


@dataclass(frozen=True)
class Question:
    """A generated question. ``program`` holds the structured form (what the answer was computed from)."""

    text: str
    answer: str
    family: int
    vague: str
    program: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def family_name(self) -> str:
        return FAMILIES[self.family]


# ----------------------------------------------------------------------------------- noun phrases
def matches(obj: SceneObject, flt: Filter) -> bool:
    return all(getattr(obj, a) == v for a, v in flt.items())


def noun_phrase(flt: Filter, plural: bool = False) -> str:
    """{"size": "large", "color": "red"} -> "large red thing" (or "things")."""
    words = [flt[a] for a in ("size", "color") if a in flt]
    noun = flt.get("shape", "thing")
    return " ".join(words + [PLURAL[noun] if plural else noun])


_SUBSETS: list[tuple[str, ...]] = [c for k in range(len(ATTRS) + 1) for c in itertools.combinations(ATTRS, k)]
RefTable = list[list[tuple[tuple[str, ...], Filter, frozenset[int]]]]


def ref_table(scene: Scene) -> RefTable:
    """For each object i and each attribute subset (smallest first): (subset, filter, objects it matches)."""
    objs = scene.objects
    table: RefTable = []
    for o in objs:
        row = []
        for combo in _SUBSETS:
            f = {a: getattr(o, a) for a in combo}
            row.append((combo, f, frozenset(j for j, p in enumerate(objs) if matches(p, f))))
        table.append(row)
    return table


def unique_refs(scene: Scene, i: int, allowed: tuple[str, ...] = ATTRS, among: list[int] | None = None,
                table: RefTable | None = None) -> list[Filter]:
    """Filters over ``allowed`` attributes that single out object ``i`` among ``among`` (default: all).

    Smallest filters first. ``table`` (from :func:`ref_table`) avoids recomputation.
    """
    table = table if table is not None else ref_table(scene)
    pool = frozenset(range(len(scene.objects)) if among is None else among)
    return [f for combo, f, m in table[i] if set(combo) <= set(allowed) and (m & pool) == {i}]


def _all_filters() -> list[Filter]:
    out = []
    for size in (None,) + SIZES:
        for color in (None,) + COLORS:
            for shape in (None,) + SHAPES:
                f = {a: v for a, v in (("size", size), ("color", color), ("shape", shape)) if v is not None}
                out.append(f)
    return out


_FILTERS = _all_filters()


def _a(np_: str) -> str:
    return "an " + np_ if np_[0] in "aeiou" else "a " + np_


# ----------------------------------------------------------------------------- candidate questions
# Each generator returns candidates (variant key, text, answer, program) for one scene.
Cand = tuple[str, str, str, dict]


def _exist(scene: Scene) -> list[Cand]:
    out = []
    for f in _FILTERS:
        if not f:
            continue
        ans = "yes" if any(matches(o, f) for o in scene.objects) else "no"
        prog = {"op": "exist", "filter": f}
        key = f"n{len(f)}"  # balance per number of attributes, so specificity does not leak the answer
        out.append((key, f"is there {_a(noun_phrase(f))} ?", ans, prog))
        out.append((key, f"are there any {noun_phrase(f, plural=True)} ?", ans, prog))
    return out


def _count(scene: Scene) -> list[Cand]:
    out = []
    for f in _FILTERS:
        n = sum(matches(o, f) for o in scene.objects)
        prog = {"op": "count", "filter": f}
        key = "count"  # one variant: answers 0..6 balanced over all filters
        npl = noun_phrase(f, plural=True)
        out.append((key, f"how many {npl} are there ?", str(n), prog))
        out.append((key, f"what number of {npl} are there ?", str(n), prog))
    return out


def _query(attr: str):
    others = tuple(a for a in ATTRS if a != attr)
    templates = {
        "color": ("what color is the {np} ?", "what is the color of the {np} ?"),
        "shape": ("what shape is the {np} ?", "what is the shape of the {np} ?"),
        "size": ("what size is the {np} ?", "how big is the {np} ?"),
    }[attr]

    def gen(scene: Scene) -> list[Cand]:
        out = []
        table = ref_table(scene)
        for i, obj in enumerate(scene.objects):
            for f in unique_refs(scene, i, others, table=table):
                prog = {"op": f"query_{attr}", "filter": f}
                for t in templates:
                    out.append(("q", t.format(np=noun_phrase(f)), getattr(obj, attr), prog))
        return out

    return gen


def _compare(scene: Scene) -> list[Cand]:
    out = []
    n = len(scene.objects)
    table = ref_table(scene)
    for attr in ATTRS:
        others = tuple(a for a in ATTRS if a != attr)
        refs = [unique_refs(scene, i, others, table=table) for i in range(n)]
        for i, j in itertools.permutations(range(n), 2):
            if not refs[i] or not refs[j]:
                continue
            same = getattr(scene.objects[i], attr) == getattr(scene.objects[j], attr)
            # Two noun phrases per pair keep the candidate list short.
            for fi, fj in zip(refs[i][:2], refs[j][:2], strict=False):
                if fi == fj:
                    continue
                prog = {"op": f"equal_{attr}", "filters": [fi, fj]}
                a, b = noun_phrase(fi), noun_phrase(fj)
                ans = "yes" if same else "no"
                out.append((attr, f"does the {a} have the same {attr} as the {b} ?", ans, prog))
                out.append((attr, f"is the {a} the same {attr} as the {b} ?", ans, prog))
    return out


def _spatial(scene: Scene) -> list[Cand]:
    out = []
    n = len(scene.objects)
    rels = scene.relations()
    table = ref_table(scene)
    for ref in range(n):
        ref_filters = unique_refs(scene, ref, table=table)[:2]
        for rel in RELATIONS:
            among = frozenset(rels[rel][ref])
            for s in sorted(among):
                for combo, fs, m in table[s]:
                    # Subject unique among the related objects but ambiguous in the whole scene, so the
                    # relation is needed to answer.
                    if len(m) < 2 or (m & among) != {s}:
                        continue
                    for attr in ATTRS:
                        if attr in combo:
                            continue
                        for fr in ref_filters:
                            prog = {"op": f"query_{attr}", "filter": fs, "relate": rel, "ref": fr}
                            text = (f"what {attr} is the {noun_phrase(fs)} {REL_PHRASE[rel]} "
                                    f"the {noun_phrase(fr)} ?")
                            out.append((attr, text, getattr(scene.objects[s], attr), prog))
    return out


_GENERATORS = {
    "exist": _exist,
    "count": _count,
    "query_color": _query("color"),
    "query_shape": _query("shape"),
    "query_size": _query("size"),
    "compare_attribute": _compare,
    "spatial_relation": _spatial,
}


def candidate_questions(scene: Scene, family: str) -> list[Cand]:
    """Every question of ``family`` the scene supports: (variant key, text, answer, program)."""
    return _GENERATORS[family](scene)


def vague_description(family: int | str, rng: np.random.Generator | None = None) -> str:
    """The vague task description of a family (a random paraphrase when ``rng`` is given)."""
    name = FAMILIES[family] if isinstance(family, int) else family
    options = VAGUE[name]
    return options[int(rng.integers(len(options)))] if rng is not None else options[0]


class QuestionSampler:
    """Balanced question sampler; keeps answer/family counts across all scenes it has seen.

    Deterministic given ``seed`` and the sequence of scenes.
    """

    def __init__(self, seed: int, families: tuple[str, ...] = FAMILIES) -> None:
        self.rng = np.random.default_rng(seed)
        self.families = families
        self.family_counts: Counter[str] = Counter()
        self.answer_counts: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)

    def _least_used(self, options: list[str], counts: Counter[str]) -> str:
        lo = min(counts[o] for o in options)
        best = [o for o in options if counts[o] == lo]
        return best[int(self.rng.integers(len(best)))]

    def sample(self, scene: Scene, k: int) -> list[Question]:
        """``k`` questions about ``scene`` (distinct families while k <= number of families)."""
        cands: dict[str, list[Cand]] = {}  # computed lazily: only families actually drawn
        avail = list(self.families)
        out: list[Question] = []
        used_texts: set[str] = set()
        used_fams: list[str] = []
        while len(out) < k and avail:
            fresh = [f for f in avail if f not in used_fams] or avail
            fam = self._least_used(fresh, self.family_counts)
            if fam not in cands:
                cands[fam] = candidate_questions(scene, fam)
            pool = [c for c in cands[fam] if c[1] not in used_texts]
            if not pool:
                avail.remove(fam)
                continue
            keys = sorted({c[0] for c in pool})
            key = keys[int(self.rng.integers(len(keys)))]
            pool = [c for c in pool if c[0] == key]
            counts = self.answer_counts[(fam, key)]
            ans = self._least_used(sorted({c[2] for c in pool}), counts)
            pool = [c for c in pool if c[2] == ans]
            _, text, ans, prog = pool[int(self.rng.integers(len(pool)))]
            counts[ans] += 1
            self.family_counts[fam] += 1
            used_fams.append(fam)
            used_texts.add(text)
            fi = FAMILIES.index(fam)
            out.append(Question(text, ans, fi, vague_description(fi, self.rng), prog))
        return out


# --------------------------------------------------------------------------------- scene texts
def _rows(scene: Scene) -> list[int]:
    """Rank of each object from back (0) to front, by the same key as ``Scene.relations``."""
    objs = scene.objects
    if objs and all(o.depth is not None for o in objs):
        key = [-float(o.depth) for o in objs]  # type: ignore[arg-type]
    else:
        key = [o.y for o in objs]
    order = np.argsort(np.asarray(key), kind="stable")
    rows = np.empty(len(objs), dtype=int)
    rows[order] = np.arange(len(objs))
    return rows.tolist()


def _bin(v: float) -> str:
    return str(int(min(max(v, 0.0), 0.999) * 10))


def scene_description(scene: Scene) -> str:
    """Ground-truth text of the whole scene graph (format in the module docstring)."""
    rows = _rows(scene)
    order = sorted(range(len(scene.objects)), key=lambda i: scene.objects[i].x)
    parts = [f"{scene.objects[i].phrase()} x {_bin(scene.objects[i].x)} y {_bin(scene.objects[i].y)} "
             f"row {rows[i]}" for i in order]
    return f"{len(scene.objects)} objects : " + " ; ".join(parts)


def _count_word(n: int) -> str:
    return NUMBER_WORDS[n] if n < len(NUMBER_WORDS) else str(n)


def natural_language_summary(scene: Scene) -> str:
    """Short human-style summary: groups of identical objects, no positions."""
    groups = Counter(o.phrase() for o in scene.objects)
    # Most frequent groups first, ties in a fixed attribute order, so the text is deterministic.
    items = sorted(groups.items(), key=lambda kv: (-kv[1], kv[0]))
    phrases = []
    for phrase, n in items:
        if n == 1:
            phrases.append(_a(phrase))
        else:
            words = phrase.split()
            words[-1] = PLURAL.get(words[-1], words[-1] + "s")
            phrases.append(f"{_count_word(n)} " + " ".join(words))
    body = phrases[0] if len(phrases) == 1 else " , ".join(phrases[:-1]) + " and " + phrases[-1]
    n = len(scene.objects)
    return f"there {'is' if n == 1 else 'are'} {_count_word(n)} object{'s' * (n != 1)} : {body} ."


def answer_index(answer: str) -> int:
    """Index of ``answer`` in the fixed ``ANSWERS`` vocabulary."""
    return ANSWERS.index(answer)
