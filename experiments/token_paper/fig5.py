#!/usr/bin/env python3
"""Fig. 5 of the machine-language-token paper: transmission overhead of each method vs the JPEG file.

The paper divides the mean JPEG file size of the dataset's images by each method's transmission overhead.
Here the images are the project's generated scenes (``semcom.data.scenes``), JPEG-coded with Pillow at
``--quality`` (75 by default, ``optimize=True``: ``semcom.jscc.jpeg.encode``), at two resolutions:

* 64x64, the resolution every model of the small default reads;
* 480x320, CLEVR's native size. The renderer draws square images of any side from the same scene graph
  (positions are normalised), so the scene is rendered natively at 320x320 and the floor (whose shade
  depends on the row only) is extended by 80 columns on each side: the same scene seen by a wider
  camera, objects at the same aspect ratio, nothing upscaled. The sensor still reads its 64x64 copy
  (as LLaVA resizes its input to 336x336), so the token methods send the same values at both sizes;
  the image methods (JPEG, DeepJSCC) send the full-size image.

Units, defined once (``Units``):

* **bits**: a digital payload counts its size in bits (JPEG file, UTF-8 summary); an analog method
  counts its real channel values at ``--bits-per-value`` bits each (16 by default: float16, the
  precision the tokens are stored in);
* **channel uses** (complex symbols): an analog method sends two real values per complex symbol; a
  digital payload needs ``bits / --digital-bits-per-use`` symbols (1.0 by default: QPSK with a rate-1/2
  code).

Methods: the JPEG file itself; DeepJSCC (the checkpoint's k/n, c*H*W/32 complex symbols per image);
the natural-language summary (``natural_language_summary``) in UTF-8, as the paper counts it, and, for
reference, coded as word indices (``ceil(log2 |vocab|)`` bits per word, BOS/EOS included, as the Fig. 6
evaluation counts it); tokens without JTCC (K x d values) and with JTCC (K x m values), K, d and m read
from the token checkpoints.

The precision an analog value needs (``precision_check``): the JTCC pipeline answers held-out
questions (``--precision-questions`` on fresh scenes, ideal channel) with every channel value
quantised to b bits (``Quantizer``: 2^b uniform levels over +-4 x the token's RMS); the smallest b
within ``PRECISION_TOLERANCE`` of the unquantised accuracy is reported, and the bits JTCC needs at it.

Writes fig5.csv, fig5_precision.csv, fig5.png and fig5.json to ``--out``:

    .venv/bin/python experiments/token_paper/fig5.py            # results in experiments/token_paper/output
    .venv/bin/python experiments/token_paper/fig5.py --quick    # a smoke run (seconds) to a temp directory
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from semcom.agents.checkpoint import load_pipeline
from semcom.agents.experiment import DEFAULT_JSCC, checkpoint_path
from semcom.agents.train import VQATensors, evaluate_pipeline
from semcom.checkpoint import checkpoint_paths, sha256_of
from semcom.data.datasets import make_vqa_dataset
from semcom.data.questions import natural_language_summary
from semcom.data.scenes import Scene, generate_scenes, render_scene
from semcom.data.vocab import default_vocab
from semcom.errors import UsageError, finite_float, positive_int
from semcom.jscc.checkpoint import read_config
from semcom.jscc.jpeg import encode as jpeg_encode
from semcom.jscc.model import channel_uses as jscc_channel_uses
from semcom.progress import progress_bar
from semcom.results import plot_label, read_csv, save_figure, write_csv

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "experiments" / "token_paper" / "output"
PRECISION_CACHE = ROOT / "results" / "token_paper" / "fig5_precision_cache"
SHIPPED_AGENTS = ROOT / "host" / "semcom" / "agents" / "checkpoints"
CLEVR_WIDTH, CLEVR_HEIGHT = 480, 320
MODEL_SIZE = 64
SCENE_SEED = 5  # scenes of their own seed: Fig. 5 needs their images, not the experiment's splits
PRECISION_SEED = 7  # held-out scenes for the precision check (the agents trained on seeds 0 and 1000)
PRECISION_BITS = (2, 3, 4, 5, 6, 8, 16)
PRECISION_TOLERANCE = 0.005  # accuracy within half a point of the unquantised values


@dataclass(frozen=True)
class Units:
    """How an overhead is counted: real values at ``bits_per_value`` bits, digital payloads at
    ``digital_bits_per_use`` bits per complex channel use."""

    bits_per_value: float = 16.0
    digital_bits_per_use: float = 1.0

    def analog(self, real_values: float) -> tuple[float, float]:
        """Real values -> (bits, complex channel uses)."""
        return real_values * self.bits_per_value, real_values / 2.0

    def digital(self, bits: float) -> tuple[float, float]:
        """Payload bits -> (bits, complex channel uses)."""
        return bits, bits / self.digital_bits_per_use


def render_clevr_size(scene: Scene, background: np.ndarray) -> np.ndarray:
    """The scene at CLEVR's 480x320: rendered natively at 320x320, the floor extended left and right.

    background: (320, 1, 3) uint8, one column of the empty floor. -> (320, 480, 3) uint8."""
    pad = (CLEVR_WIDTH - CLEVR_HEIGHT) // 2
    side = np.broadcast_to(background, (CLEVR_HEIGHT, pad, 3))
    return np.concatenate([side, render_scene(scene, CLEVR_HEIGHT), side], axis=1)


def jpeg_bits(image: np.ndarray, quality: int) -> int:
    """(H, W, 3) uint8 -> size in bits of its JPEG file (Pillow, ``quality``, optimised tables)."""
    return 8 * jpeg_encode(image.transpose(2, 0, 1) / 255.0, quality, mode="file")[1]


@dataclass
class ImageSet:
    """What one set of images costs per image: JPEG file bits at ``--quality``, the (H, W) each image is
    sent at by an image codec, the summary's UTF-8 bits; optionally the summary as word indices and the
    files' stored size (a dataset's own files, as published)."""

    label: str
    jpeg_bits: np.ndarray
    shapes: list[tuple[int, int]]
    summary_utf8: np.ndarray
    summary_words: np.ndarray | None = None
    stored_bits: np.ndarray | None = None


def measure_scenes(n_scenes: int, quality: int, seed: int, progress: bool) -> list[ImageSet]:
    """The generated scenes at 64x64 and at 480x320: JPEG bits, summary bits in UTF-8 and as word ids."""
    background = render_scene(Scene([]), CLEVR_HEIGHT)[:, :1]
    vocab = default_vocab()
    bits_per_word = math.ceil(math.log2(len(vocab)))
    small, large, utf8, words = [], [], [], []
    for scene in progress_bar(generate_scenes(n_scenes, seed), desc="scenes", progress=progress):
        summary = natural_language_summary(scene)
        small.append(jpeg_bits(render_scene(scene, MODEL_SIZE), quality))
        large.append(jpeg_bits(render_clevr_size(scene, background), quality))
        utf8.append(8 * len(summary.encode("utf-8")))
        words.append(bits_per_word * len(vocab.encode_tensor(summary)))
    utf8_bits, word_bits = np.asarray(utf8, dtype=np.float64), np.asarray(words, dtype=np.float64)
    return [ImageSet("64x64", np.asarray(small, dtype=np.float64), [(MODEL_SIZE, MODEL_SIZE)] * n_scenes,
                     utf8_bits, word_bits),
            ImageSet("480x320", np.asarray(large, dtype=np.float64), [(CLEVR_HEIGHT, CLEVR_WIDTH)] * n_scenes,
                     utf8_bits, word_bits)]


def measure_files(label: str, dataset: Any, n_images: int, quality: int, progress: bool) -> ImageSet:
    """The first ``n_images`` distinct images of a CLEVR / GQA loader (``semcom.data``, pointed at a local
    copy): stored file bits, JPEG bits of the decoded image at ``quality``, its size, and the UTF-8
    bits of the summary the loader makes from the image's scene graph (needs the scene files)."""
    from PIL import Image

    if not getattr(dataset, "has_scenes", False):
        raise UsageError(f"{label}: the natural-language summary needs the dataset's scene files")
    first = {}
    for record in dataset.records:
        first.setdefault(record.image_path, record.summary)
    images = list(first.items())[:n_images]
    stored, jpeg, shapes, utf8 = [], [], [], []
    for path, summary in progress_bar(images, desc=label, progress=progress):
        with Image.open(path) as im:
            rgb = np.asarray(im.convert("RGB"))
        stored.append(8 * path.stat().st_size)
        jpeg.append(jpeg_bits(rgb, quality))
        shapes.append(rgb.shape[:2])
        utf8.append(8 * len(summary.encode("utf-8")))
    f64 = np.float64
    return ImageSet(label, np.asarray(jpeg, dtype=f64), shapes, np.asarray(utf8, dtype=f64),
                    stored_bits=np.asarray(stored, dtype=f64))


def deepjscc_real_values(jscc_c: int, shapes: list[tuple[int, int]]) -> np.ndarray:
    """Real values DeepJSCC sends per image (2 per complex channel use), each image cropped to a multiple
    of the codec's 4x down-sampling."""
    return np.asarray([2.0 * jscc_channel_uses(jscc_c, h - h % 4, w - w % 4) for h, w in shapes])


JTCC = "tokens_with_jtcc"  # the --checkpoints JTCC; the compression levels of --jtcc-levels are JTCC_m<m>


def jtcc_method(m: int, recipe: str = "") -> str:
    """The method id of a JTCC compression level with ``m`` values per token (trained with ``recipe``, a
    label; "" for the recipe of the shipped JTCC)."""
    return f"{JTCC}_m{m}" + (f"_{recipe}" if recipe else "")


def level_id(method: str, m: int) -> str:
    """A JTCC level's key in the outputs: its m ("4"), with its recipe where it has one ("4_task")."""
    return method[len(JTCC) + 2:] if method.startswith(JTCC + "_m") else str(m)


def split_level(level: str) -> tuple[int, str]:
    """A level id ("4", "4_hisnr_noalign") -> (m, recipe label; "" for the shipped recipe). Sorting by it
    puts the levels in the order of m, the shipped recipe first."""
    m, _, recipe = level.partition("_")
    return int(m), recipe


def level_label(level: str) -> str:
    """A level id ("4", "4_task") as the plots and the log name it ("m = 4", "m = 4 (task)")."""
    m, recipe = split_level(level)
    return f"m = {m}" + (f" ({recipe})" if recipe else "")


def parse_level(arg: str) -> tuple[Path, str]:
    """``--jtcc-levels`` item ``DIR`` or ``DIR=RECIPE`` -> (directory, recipe label)."""
    path, _, recipe = arg.partition("=")
    if recipe and not recipe.replace("_", "").replace("-", "").isalnum():
        raise UsageError(f"--jtcc-levels {arg}: the recipe label must be letters, digits, - or _")
    return Path(path), recipe


def is_jtcc(method: str) -> bool:
    return method == JTCC or method.startswith(JTCC + "_m")


def token_values(agents_dir: Path, levels: list[tuple[Path, str]] = ()) -> dict[str, dict[str, Any]]:
    """K, the values per token, the real values per scene and the checkpoint directory of the two token
    checkpoints of ``agents_dir`` and of the JTCC checkpoint of every (directory, recipe) of ``levels``
    (the same method at another m or trained with another recipe: one compression level each, named
    ``jtcc_method(m, recipe)``)."""
    out: dict[str, dict[str, Any]] = {}
    sources = [(agents_dir, "tokens", "tokens_without_jtcc", ""), (agents_dir, "jtcc", JTCC, "")]
    for ckdir, stage, method, recipe in sources + [(d, "jtcc", None, r) for d, r in levels]:
        pipeline, doc = load_pipeline(checkpoint_path(ckdir, stage))
        if stage == "jtcc" and doc["config"]["link"]["kind"] != "jtcc":
            raise UsageError(f"{ckdir}: its jtcc checkpoint holds a {doc['config']['link']['kind']} link")
        k, per_token = pipeline.receiver.cfg.k_tokens, pipeline.link.m
        method = method or jtcc_method(per_token, recipe)
        same = [tok["checkpoints"] for name, tok in out.items()
                if is_jtcc(name) and tok["values_per_token"] == per_token and tok.get("recipe", "") == recipe]
        if stage == "jtcc" and same:
            with_recipe = f" with recipe {recipe!r}" if recipe else ""
            raise UsageError(f"{ckdir}: m = {per_token}{with_recipe} is already the level of {same[0]}")
        out[method] = {"k": k, "values_per_token": per_token, "real_values": k * per_token,
                       "checkpoints": shown_path(ckdir)} | ({"recipe": recipe} if recipe else {})
    return out


def kept_levels(previous: Path, tokens: dict[str, dict[str, Any]]
                ) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """The JTCC levels of an earlier run's outputs in ``previous`` (its fig5.json and fig5_precision.csv)
    that this run does not count (``--keep-levels``): their token entries (K, m, checkpoints, recipe: all
    a level's sizes and ratios are computed from them, and its accuracy is read from its seeds evaluation
    by the checkpoint path, so its checkpoints need not exist any more) and their precision rows as
    measured then (every level's: those this run checks again are dropped by the caller).
    -> ({method: token entry}, precision rows)."""
    summary = previous / "fig5.json"
    if not summary.is_file():
        raise UsageError(f"--keep-levels: no earlier run in {previous} (no fig5.json)")
    earlier = json.loads(summary.read_text())["tokens"]
    kept = {name: tok for name, tok in earlier.items() if is_jtcc(name) and name not in tokens}
    precision_csv = previous / "fig5_precision.csv"
    rows = [r | {"level": str(r.get("level") or r["m"])}  # read_csv makes "4" a number
            for r in (read_csv(precision_csv) if precision_csv.is_file() else [])]
    return kept, rows


def overhead_rows(sets: list[ImageSet], tokens: dict[str, dict[str, int]], jscc_c: int,
                  units: Units) -> list[dict[str, Any]]:
    """One row per image set and method: bits, channel uses (means over the images, with the spread of
    the bits), and the ratio of the JPEG file's bits (and channel uses) to the method's."""
    rows = []
    for images in sets:
        jpeg_bits_mean, jpeg_uses = units.digital(float(images.jpeg_bits.mean()))
        entries: list[tuple[str, str, float, float, float, float]] = [
            ("jpeg_file", "digital", jpeg_bits_mean, jpeg_uses, float(images.jpeg_bits.std()), math.nan)]
        if images.stored_bits is not None:
            entries.append(("stored_file", "digital", *units.digital(float(images.stored_bits.mean())),
                            float(images.stored_bits.std()), math.nan))
        values = deepjscc_real_values(jscc_c, images.shapes)
        bits, uses = units.analog(values)
        entries.append(("deepjscc", "analog", float(bits.mean()), float(uses.mean()), float(bits.std()),
                        float(values.mean())))
        summaries = [("natural_language_utf8", images.summary_utf8),
                     ("natural_language_word_indices", images.summary_words)]
        for name, bits_each in summaries:
            if bits_each is not None:
                entries.append((name, "digital", *units.digital(float(bits_each.mean())),
                                float(bits_each.std()), math.nan))
        for name, tok in tokens.items():
            real = float(tok["real_values"])
            entries.append((name, "analog", *units.analog(real), 0.0, real))
        for method, kind, bits_mean, uses_mean, spread, real_values in entries:
            per_token = tokens[method]["values_per_token"] if method in tokens else math.nan
            rows.append({"image": images.label, "method": method, "kind": kind, "real_values": real_values,
                         "values_per_token": per_token, "bits": bits_mean, "bits_std": spread,
                         "channel_uses": uses_mean,
                         "jpeg_bits_over_bits": jpeg_bits_mean / bits_mean,
                         "jpeg_uses_over_uses": jpeg_uses / uses_mean})
    return rows


COMPARED = ("jpeg_file", "deepjscc", "natural_language_utf8", "tokens_without_jtcc")  # the paper's methods


def jtcc_check(by: dict[str, dict[str, Any]], method: str, label: str) -> dict[str, Any]:
    """One JTCC level against the paper's other methods on one image set: its bits and channel uses,
    the JPEG file's multiple of them, whether it needs the fewest (>= 100x fewer bits than the JPEG
    file asked for at every set but the 64x64 one)."""
    jt = by[method]
    out: dict[str, Any] = {
        "jtcc_bits": jt["bits"], "jtcc_channel_uses": jt["channel_uses"],
        "jpeg_over_jtcc_bits": jt["jpeg_bits_over_bits"],
        "jpeg_over_jtcc_channel_uses": jt["jpeg_uses_over_uses"],
        "jtcc_fewest_bits": all(jt["bits"] < by[m]["bits"] for m in COMPARED),
        "jtcc_fewest_channel_uses": all(jt["channel_uses"] < by[m]["channel_uses"] for m in COMPARED),
        "methods_with_fewer_bits_than_jtcc": [m for m in by
                                              if not is_jtcc(m) and by[m]["bits"] <= jt["bits"]],
    }
    if "natural_language_word_indices" in by:
        out["jtcc_below_word_index_summary_bits"] = jt["bits"] < by["natural_language_word_indices"]["bits"]
    if label != "64x64":
        out["at_least_100x_fewer_bits_than_jpeg"] = out["jpeg_over_jtcc_bits"] >= 100
    return out


def acceptance(rows: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """The issue's checks for every JTCC level m and image set: {set: {str(m): jtcc_check}}; JTCC is
    compared with the paper's methods (JPEG, DeepJSCC, UTF-8 summary, tokens without JTCC; the
    word-index summary is reported separately), never with its own other levels."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for label in dict.fromkeys(r["image"] for r in rows):
        by = {r["method"]: r for r in rows if r["image"] == label}
        out[label] = {level_id(m, by[m]["values_per_token"]): jtcc_check(by, m, label)
                      for m in by if is_jtcc(m)}
    return out


ACCURACY_KEYS = {("tokens_jtcc", "awgn", 15.0): "awgn_15db", ("tokens_jtcc", "awgn", 5.0): "awgn_5db",
                 ("tokens_jtcc", "awgn", 0.0): "awgn_0db",
                 ("tokens_jtcc", "ofat_2x4_zf_ls", 15.0): "ofat_2x4_zf_ls_15db",
                 ("raw_image_vqa", "clean image", ""): "raw_image_vqa_clean"}  # seeds_summary.csv rows kept


def shown_path(path: Path) -> str:
    """A path as the outputs name it: relative to the repository root when inside it (as seeds.csv)."""
    path = path.resolve()
    return str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


def _run_dir(path: str | Path) -> Path:
    """A directory as seeds.csv and shown_path name it (relative to the repository root) -> resolved."""
    path = Path(path)
    return (path if path.is_absolute() else ROOT / path).resolve()


def level_accuracy(ckdir: str, evaluations: list[Path]) -> dict[str, Any] | None:
    """The measured accuracy of the JTCC in ``ckdir`` from the seeds evaluation (``seeds.py --out``) of
    ``evaluations`` whose seeds include it (the one with the most seeds if several do; None if none):
    mean and sample std over the seeds of JTCC over AWGN at 15 / 5 / 0 dB and the OFAT 2x4 link at 15 dB,
    of the seeds' raw-image VQA on the clean image, and of the paired differences."""
    want, best, best_seeds = _run_dir(ckdir), None, 0
    for evaluation in evaluations:
        runs = {r["seed"]: _run_dir(r["checkpoints"]) for r in read_csv(evaluation / "seeds.csv")
                if r["seed"] != "shipped"}  # seeds.REFERENCE: evaluated beside the seeds, not one of them
        if want in runs.values() and len(runs) > best_seeds:
            best, best_seeds = evaluation, len(runs)
    if best is None:
        return None
    out: dict[str, Any] = {"evaluation": shown_path(best)}
    for r in read_csv(best / "seeds_summary.csv"):
        key = ACCURACY_KEYS.get((r["system"], r["channel"], r["snr_db"]))
        if key:
            out[key] = {"mean": r["mean"], "std": r["std"], "n_seeds": r["n_seeds"]}
    checks = json.loads((best / "seeds.json").read_text())["checks"]
    out["seeds"] = checks["seeds"]
    out["minus_raw_vqa_15db"] = {"mean": checks["jtcc_15db_minus_raw_vqa_mean"],
                                 "std": checks["jtcc_15db_minus_raw_vqa_std"]}
    lead = checks.get("jtcc_lead_at_0db", {}).get("deepjscc_scenes")
    if lead:
        out["minus_deepjscc_0db"] = lead
    return out


def level_rows(tokens: dict[str, dict[str, Any]], checks: dict[str, dict[str, dict[str, Any]]],
               units: Units, evaluations: list[Path]) -> list[dict[str, Any]]:
    """One row per JTCC level, fewest values first: what it sends, the JPEG ratios per image set, whether
    it meets Fig. 5's line (fewest bits on every set, >= 100x at every set but 64x64) and its measured
    accuracy (NaN where no seeds evaluation names its checkpoints)."""
    rows = []
    levels = [(name, tok) for name, tok in tokens.items() if is_jtcc(name)]
    for name, tok in sorted(levels, key=lambda nt: (nt[1]["values_per_token"], nt[1].get("recipe", ""))):
        m = level_id(name, tok["values_per_token"])
        bits, uses = units.analog(tok["real_values"])
        row: dict[str, Any] = {"level": m, "m": tok["values_per_token"], "recipe": tok.get("recipe", ""),
                               "k": tok["k"], "real_values": tok["real_values"],
                               "bits": bits, "channel_uses": uses, "checkpoints": tok["checkpoints"]}
        for label, by_m in checks.items():
            row[f"jpeg_over_bits_{label}"] = by_m[m]["jpeg_over_jtcc_bits"]
            row[f"jpeg_over_uses_{label}"] = by_m[m]["jpeg_over_jtcc_channel_uses"]
        row["fewest_bits_every_set"] = all(by_m[m]["jtcc_fewest_bits"] for by_m in checks.values())
        row["fewest_channel_uses_every_set"] = all(by_m[m]["jtcc_fewest_channel_uses"]
                                                   for by_m in checks.values())
        row["at_least_100x_fewer_bits"] = all(by_m[m].get("at_least_100x_fewer_bits_than_jpeg", True)
                                              for by_m in checks.values())
        row["meets_fig5_line"] = row["fewest_bits_every_set"] and row["at_least_100x_fewer_bits"]
        accuracy = level_accuracy(tok["checkpoints"], evaluations) or {}
        for key in ACCURACY_KEYS.values():
            for stat in ("mean", "std"):
                row[f"{key}_{stat}"] = accuracy.get(key, {}).get(stat, math.nan)
        row["minus_raw_vqa_15db_mean"] = accuracy.get("minus_raw_vqa_15db", {}).get("mean", math.nan)
        row["minus_deepjscc_0db_mean"] = accuracy.get("minus_deepjscc_0db", {}).get("mean", math.nan)
        row["n_seeds"] = len(accuracy.get("seeds", []))
        row["seeds_evaluation"] = accuracy.get("evaluation", "")
        rows.append(row)
    return rows


METHODS = ("jpeg_file", "stored_file", "deepjscc", "natural_language_utf8", "natural_language_word_indices",
           "tokens_without_jtcc", JTCC)  # the bars' order (the JTCC levels in JTCC's place, most m first)


def method_label(method: str, rows: list[dict[str, Any]]) -> str:
    """A method's name on the plot (results.plot_label), a JTCC level with its m."""
    if not is_jtcc(method):
        return plot_label(method)
    m = next(r["values_per_token"] for r in rows if r["method"] == method)
    return f"{plot_label(JTCC)}, {level_label(level_id(method, m))}"


def plot(path: Path, rows: list[dict[str, Any]], units: Units, quality: int,
         precision: list[dict[str, Any]] | None = None, levels: list[dict[str, Any]] | None = None) -> None:
    """Bits and channel uses (log scale), grouped bars per method for every image set, each bar labelled
    with the JPEG file's multiple of it (one bar per JTCC level); with ``precision``, JTCC's accuracy
    vs bits per value (one line per m); with ``levels`` that have a seeds evaluation, each JTCC
    level's measured accuracy (AWGN 15 and 0 dB, mean +- std over seeds) against its bits."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    jtcc = sorted({r["method"] for r in rows if is_jtcc(r["method"])},
                  key=lambda m: (-next(r["values_per_token"] for r in rows if r["method"] == m), m))
    present = {r["method"] for r in rows}
    methods = [x for m in METHODS for x in (jtcc if m == JTCC else [m]) if x in present]
    images = list(dict.fromkeys(r["image"] for r in rows))
    measured = [lv for lv in (levels or []) if not math.isnan(lv["awgn_15db_mean"])]
    extra = [name for name, there in (("precision", precision), ("accuracy", measured)) if there]
    width = 0.8 / len(images)
    fig, axes = plt.subplots(1, 2 + len(extra), figsize=(12 + 4.5 * len(extra) + 0.5 * len(jtcc), 4.8),
                             gridspec_kw={"width_ratios": [1, 1] + [0.55] * len(extra)})
    for ax, (key, ratio, title) in zip(axes[:2], (
            ("bits", "jpeg_bits_over_bits", f"bits (analog values at {units.bits_per_value:g} bit)"),
            ("channel_uses", "jpeg_uses_over_uses",
             f"complex channel uses (digital at {units.digital_bits_per_use:g} bit/use)")), strict=True):
        x = np.arange(len(methods))
        for j, image in enumerate(images):
            by = {r["method"]: r for r in rows if r["image"] == image}
            vals = [by[m][key] if m in by else math.nan for m in methods]
            bars = ax.bar(x + (j - (len(images) - 1) / 2) * width, vals, width, label=f"{image} images",
                          color=f"C{j}",
                          hatch=["//" if m == "natural_language_word_indices" else "" for m in methods])
            for bar, m in zip(bars, methods, strict=True):
                if m != "jpeg_file" and m in by:
                    ax.annotate(f"{by[m][ratio]:.3g}x", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                                ha="center", va="bottom", fontsize=6, rotation=90)
        ax.set_yscale("log")
        ax.set_ylim(top=ax.get_ylim()[1] * 6)  # room for the labels above the tallest bar
        ax.set_xticks(x, [method_label(m, rows) for m in methods], rotation=25, fontsize=7, ha="right")
        ax.set_title(title, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    panels = iter(axes[2:])
    if precision:
        ax = next(panels)
        for i, level in enumerate(sorted({r["level"] for r in precision}, key=split_level)):
            mine = [r for r in precision if r["level"] == level]
            exact = next(r["accuracy"] for r in mine if r["bits_per_value"] == "float32")
            pts = [(r["bits_per_value"], 100 * r["accuracy"]) for r in mine
                   if r["bits_per_value"] != "float32"]
            name = level_label(level)
            ax.plot(*zip(*pts, strict=True), "-o", color=f"C{i}", label=f"{name}, values quantised")
            ax.axhline(100 * exact, ls="--", color=f"C{i}", lw=0.8, label=f"{name}, float32")
        ax.set_xlabel("bits per channel value")
        ax.set_ylabel("accuracy (%), ideal channel")
        ax.set_title("tokens + JTCC: precision the values need", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if measured:
        ax = next(panels)
        recipes = sorted({lv["recipe"] for lv in measured})  # "" (the shipped recipe) first: the line
        for key, marker, label in (("awgn_15db", "o", "AWGN 15 dB"), ("awgn_0db", "s", "AWGN 0 dB")):
            for j, recipe in enumerate(recipes):  # another recipe's levels: open markers of their own
                mine = [lv for lv in measured if lv["recipe"] == recipe]
                own = "D^vP<>"[(j - 1) % 6] if recipe else marker
                ax.errorbar([lv["bits"] for lv in mine], [100 * lv[f"{key}_mean"] for lv in mine],
                            yerr=[100 * lv[f"{key}_std"] for lv in mine], capsize=3,
                            fmt=own if recipe else f"-{marker}", color=f"C{int(key != 'awgn_15db')}",
                            mfc="white" if recipe else None, ms=8 if recipe else 6,
                            label=label + (f", recipe {recipe}" if recipe else ""))
        for lv in measured:
            ax.annotate(level_label(lv["level"]), (lv["bits"], 100 * lv["awgn_15db_mean"]), fontsize=7,
                        textcoords="offset points", xytext=(0, 6), ha="center")
        raw = [100 * lv["raw_image_vqa_clean_mean"] for lv in measured]
        ax.axhline(float(np.mean(raw)), ls=":", color="k", label="raw-image VQA, clean image")
        by = {r["method"]: r for r in rows if r["image"] == images[-1]}
        ax.axvline(by["natural_language_utf8"]["bits"], color="C2", ls="--", lw=0.8, label="UTF-8 summary")
        ax.axvline(by["jpeg_file"]["bits"] / 100, color="C3", ls="--", lw=0.8,
                   label=f"JPEG {images[-1]} / 100")
        ax.set_xscale("log")
        ax.set_xlim(min(lv["bits"] for lv in measured) / 2, max(lv["bits"] for lv in measured) * 2)
        ax.set_xlabel(f"bits per scene ({units.bits_per_value:g} bit per value)")
        ax.set_ylabel("test accuracy (%), mean +- std over seeds")
        ax.set_title("JTCC compression levels: bits and accuracy", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"Fig. 5: overhead per image and the JPEG file (quality {quality}) as a multiple of it",
                 fontsize=10)
    save_figure(fig, path)


class Quantizer(nn.Module):
    """A b-bit uniform quantiser of the channel values (B, K, m): 2^b levels (mid-rise) evenly over
    +-``clip`` x each token's RMS, values beyond clipped to the outer levels. Called as a channel."""

    def __init__(self, bits: int, clip: float = 4.0) -> None:
        super().__init__()
        self.bits, self.clip = bits, clip

    def forward(self, z: torch.Tensor, snr_db: float | None = None) -> torch.Tensor:
        limit = self.clip * z.pow(2).mean(dim=-1, keepdim=True).sqrt().clamp_min(1e-12)
        step = 2 * limit / 2 ** self.bits
        levels = (torch.floor(z / step) + 0.5) * step
        return torch.maximum(torch.minimum(levels, limit - step / 2), -limit + step / 2)


def precision_check(levels: dict[str, Path], n_questions: int, bits: tuple[int, ...], progress: bool,
                    cache: Path | None = None) -> list[dict[str, Any]]:
    """Accuracy of each JTCC pipeline ({level id: checkpoint dir}, ideal channel) with its values
    unquantised and at each of ``bits``, on the same ``n_questions`` questions about fresh scenes (one
    each). A level checked before with the same weights, questions and precisions is read from ``cache``
    (its CSV is named by the checkpoint's SHA-256): the check costs minutes per level on this CPU."""
    rows: list[dict[str, Any]] = []
    data = None
    for level, ckdir in levels.items():
        m = split_level(level)[0]
        jtcc = checkpoint_path(ckdir, "jtcc")
        cached = None
        if cache:
            digest = sha256_of(checkpoint_paths(jtcc)[0])[:16]
            cached = cache / f"m{m}_{digest}_{n_questions}q_{'-'.join(map(str, bits))}b.csv"
            if cached.is_file():
                rows += [r | {"level": level} for r in read_csv(cached)]
                continue
        pipeline, _ = load_pipeline(jtcc)
        if data is None:  # the same fresh questions for every level
            scenes, _, _ = make_vqa_dataset(n_questions, 1, seed=PRECISION_SEED,
                                            image_size=pipeline.receiver.cfg.image_size,
                                            split=(1.0, 0.0, 0.0), progress=progress)
            data = VQATensors.from_dataset(scenes)
        with torch.no_grad():
            exact = evaluate_pipeline(pipeline, data, None, 0.0)["all"]
            mine = [{"m": m, "bits_per_value": "float32", "accuracy": exact, "difference": 0.0}]
            for b in bits:
                acc = evaluate_pipeline(pipeline, data, Quantizer(b), 0.0)["all"]
                mine.append({"m": m, "bits_per_value": b, "accuracy": acc, "difference": acc - exact})
            mine = [{"level": level} | r for r in mine]  # (a str; read back as it was asked for)
        if cached is not None:
            write_csv(cached, mine)
        rows += mine
    return rows


def sufficient_bits(rows: list[dict[str, Any]]) -> int | None:
    """The fewest bits per value from which on every tested precision is within ``PRECISION_TOLERANCE``
    of the unquantised accuracy (None if the finest one is not)."""
    enough = None
    quantised = [r for r in rows if r["bits_per_value"] != "float32"]
    for r in sorted(quantised, key=lambda r: -r["bits_per_value"]):
        if r["difference"] < -PRECISION_TOLERANCE:
            break
        enough = r["bits_per_value"]
    return enough


def _level_name(tokens: dict[str, dict[str, Any]], level: str) -> str:
    return next(name for name, tok in tokens.items()
                if is_jtcc(name) and level_id(name, tok["values_per_token"]) == level)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n-scenes", type=positive_int, default=1000,
                   help="generated scenes whose images are measured (default: %(default)s)")
    p.add_argument("--seed", type=int, default=SCENE_SEED, help="scene seed (default: %(default)s)")
    p.add_argument("--quality", type=int, default=75, help="JPEG quality 1..95 (default: %(default)s)")
    p.add_argument("--bits-per-value", type=finite_float, default=Units.bits_per_value,
                   help="bits counted per real analog value (default: %(default)s, float16)")
    p.add_argument("--digital-bits-per-use", type=finite_float, default=Units.digital_bits_per_use,
                   help="bits per complex channel use of the digital link (default: %(default)s, "
                   "QPSK with a rate-1/2 code)")
    p.add_argument("--checkpoints", default=str(SHIPPED_AGENTS),
                   help="agent checkpoints whose K, d and m are counted (default: the shipped ones)")
    p.add_argument("--jtcc-levels", nargs="+", default=[], metavar="DIR[=RECIPE]",
                   help="directories of JTCC checkpoints trained with another m (semcom train agents --m M "
                   "--stages jtcc): each is a compression level beside --checkpoints' JTCC; =RECIPE labels "
                   "one trained with another recipe (a level of its own beside the same m)")
    p.add_argument("--keep-levels", action="store_true",
                   help="keep the JTCC levels of the earlier run in --out that --jtcc-levels does not name "
                   "(their checkpoints may be gone): sizes and ratios recomputed from its fig5.json, "
                   "accuracy read from the seeds evaluations, precision rows as measured then")
    p.add_argument("--seeds-evaluations", nargs="+", default=None, metavar="DIR",
                   help="seeds.py output directories the levels' accuracy is read from, each level from the "
                   "one whose seeds include its checkpoints (default: output/seeds_*/)")
    p.add_argument("--precision-m", type=positive_int, nargs="+", default=None, metavar="M",
                   help="the JTCC levels (by m) whose precision is checked (default: all)")
    p.add_argument("--precision-cache", default=str(PRECISION_CACHE),
                   help="where each level's precision check is kept, by checkpoint SHA-256 (not committed; "
                   "'none': no cache; --quick: in --out) (default: %(default)s)")
    p.add_argument("--jscc-checkpoint", default=str(DEFAULT_JSCC),
                   help="DeepJSCC checkpoint whose k/n is counted (default: %(default)s)")
    p.add_argument("--clevr", default=None,
                   help="a local CLEVR v1.0 copy (questions/, images/, scenes/): measure its own images too")
    p.add_argument("--gqa", default=None,
                   help="a local GQA copy (questions/, images/, sceneGraphs/): measure its own images too")
    p.add_argument("--split", default="val", help="split of --clevr / --gqa (default: %(default)s)")
    p.add_argument("--n-images", type=positive_int, default=1000,
                   help="distinct images of --clevr / --gqa measured (default: %(default)s)")
    p.add_argument("--precision-questions", type=int, default=2000,
                   help="questions of the precision check, 0 to skip it (default: %(default)s)")
    p.add_argument("--out", default=None,
                   help="output directory (default: experiments/token_paper/output; --quick: a temp dir)")
    p.add_argument("--quick", action="store_true", help="20 scenes, to a temporary directory unless --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    if not 1 <= args.quality <= 95:
        p.error(f"--quality must be in 1..95, got {args.quality}")
    if args.bits_per_value <= 0 or args.digital_bits_per_use <= 0:
        p.error("--bits-per-value and --digital-bits-per-use must be > 0")
    if args.precision_questions < 0 or 0 < args.precision_questions < 3:
        p.error(f"--precision-questions must be 0 (skip) or >= 3, got {args.precision_questions}")
    return args


def local_sets(args: argparse.Namespace) -> list[ImageSet]:
    """The images of the CLEVR / GQA copies named on the command line (none by default)."""
    from semcom.data.clevr import CLEVRDataset
    from semcom.data.gqa import GQADataset

    out = []
    for label, root, loader in (("clevr", args.clevr, CLEVRDataset), ("gqa", args.gqa, GQADataset)):
        if root is None:
            continue
        try:
            # Questions name their images; 20 per image is more than CLEVR's 10 or GQA's balanced sets.
            dataset = loader(root, args.split, max_questions=20 * args.n_images)
        except (OSError, ValueError) as e:  # DataFormatError is a ValueError
            raise UsageError(f"--{label} {root}: {e}") from e
        out.append(measure_files(f"{label} {args.split}", dataset, args.n_images, args.quality,
                                 progress=not args.no_progress))
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    n_scenes = min(args.n_scenes, 20) if args.quick else args.n_scenes
    n_precision = min(args.precision_questions, 50) if args.quick else args.precision_questions
    out = Path(args.out) if args.out else (Path(tempfile.mkdtemp(prefix="fig5_")) if args.quick else OUTPUT)
    units = Units(args.bits_per_value, args.digital_bits_per_use)
    t0 = time.perf_counter()
    try:
        jscc_c = int(read_config(args.jscc_checkpoint)["config"]["c"])
        tokens = token_values(Path(args.checkpoints), [parse_level(d) for d in args.jtcc_levels])
    except (OSError, ValueError, RuntimeError) as e:  # CheckpointError is a RuntimeError
        raise UsageError(str(e)) from e
    kept, kept_precision = kept_levels(out, tokens) if args.keep_levels else ({}, [])
    tokens |= kept
    evaluations = ([Path(d) for d in args.seeds_evaluations] if args.seeds_evaluations is not None
                   else sorted(f.parent for f in OUTPUT.glob("seeds_*/seeds.csv")))
    for evaluation in evaluations:
        if not all((evaluation / f).is_file() for f in ("seeds.csv", "seeds_summary.csv", "seeds.json")):
            raise UsageError(f"--seeds-evaluations {evaluation}: not a seeds.py output directory")
    levels = {level_id(name, tok["values_per_token"]): _run_dir(tok["checkpoints"])
              for name, tok in tokens.items() if is_jtcc(name) and name not in kept}
    level_m = {level: split_level(level)[0] for level in levels}
    if args.precision_m is not None and not set(args.precision_m) <= set(level_m.values()):
        raise UsageError(f"--precision-m {args.precision_m}: the JTCC levels are m = "
                         f"{sorted(set(level_m.values()))}")
    sets = measure_scenes(n_scenes, args.quality, args.seed, progress=not args.no_progress)
    sets += local_sets(args)
    rows = overhead_rows(sets, tokens, jscc_c, units)
    write_csv(out / "fig5.csv", rows)
    checks = acceptance(rows)
    level_table = level_rows(tokens, checks, units, evaluations)
    write_csv(out / "fig5_levels.csv", level_table)
    checked = {level: d for level, d in levels.items()
               if args.precision_m is None or level_m[level] in args.precision_m}
    cache = (None if args.precision_cache == "none"
             else out / "precision_cache" if args.quick else Path(args.precision_cache))
    precision = (precision_check(checked, n_precision, PRECISION_BITS, not args.no_progress, cache)
                 if n_precision else [])
    # The checks of the levels this run counts but does not check again, as the earlier run measured them.
    counted = {level_id(name, tok["values_per_token"]) for name, tok in tokens.items() if is_jtcc(name)}
    precision += [r for r in kept_precision if r["level"] in counted and r["level"] not in checked]
    if precision:
        write_csv(out / "fig5_precision.csv", precision)
    plot(out / "fig5.png", rows, units, args.quality, precision, level_table)
    per_m = {}
    for level in sorted({r["level"] for r in precision}, key=split_level):
        mine = [r for r in precision if r["level"] == level]
        enough = sufficient_bits(mine)
        per_m[level] = {"rows": mine, "sufficient_bits_per_value": enough,
                        "jtcc_bits_at_sufficient_precision": None if enough is None
                        else enough * tokens[_level_name(tokens, level)]["real_values"]}
    command = " ".join(argv if argv is not None else sys.argv[1:])
    summary = {"command": f"experiments/token_paper/fig5.py {command}",
               "n_scenes": n_scenes, "images_per_set": {images.label: len(images.shapes) for images in sets},
               "scene_seed": args.seed, "jpeg_quality": args.quality,
               "units": asdict(units), "tokens": tokens, "deepjscc_c": jscc_c,
               "deepjscc_checkpoint": str(args.jscc_checkpoint),
               "acceptance": {"per_image_set": checks, "levels": level_table,
                              "levels_meeting_fig5_line": [lv["level"] for lv in level_table
                                                           if lv["meets_fig5_line"]]},
               "kept_levels": {name: f"from the earlier run in {shown_path(out)}" for name in kept},
               "precision_check": {"questions": n_precision, "tolerance": PRECISION_TOLERANCE,
                                   "per_m": per_m},
               "seconds": time.perf_counter() - t0}
    (out / "fig5.json").write_text(json.dumps(summary, indent=2) + "\n")
    for r in rows:
        print(f"{r['image']:10s} {r['method']:30s} {r['bits']:10.0f} bits {r['channel_uses']:9.0f} uses  "
              f"JPEG/this {r['jpeg_bits_over_bits']:8.3g} (bits) {r['jpeg_uses_over_uses']:8.3g} (uses)")
    for r in precision:
        unit = "" if r["bits_per_value"] == "float32" else " bits"
        print(f"JTCC {level_label(r['level'])}, values at {r['bits_per_value']}{unit}: "
              f"accuracy {100 * r['accuracy']:.2f} % ({100 * r['difference']:+.2f} points)")
    for lv in level_table:
        print(f"JTCC {level_label(lv['level'])}: {lv['bits']:.0f} bits, "
              f"fewest bits {lv['fewest_bits_every_set']}, "
              f">= 100x {lv['at_least_100x_fewer_bits']}, AWGN 15 / 0 dB {100 * lv['awgn_15db_mean']:.2f} / "
              f"{100 * lv['awgn_0db_mean']:.2f} % over {lv['n_seeds']} seeds")
    print(f"wrote {out / 'fig5.csv'}, fig5_levels.csv, {'fig5_precision.csv, ' if precision else ''}"
          "fig5.png, fig5.json")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except UsageError as e:
        print(f"fig5: error: {e}", file=sys.stderr)
        sys.exit(2)
