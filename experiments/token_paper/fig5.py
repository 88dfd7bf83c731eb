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
from semcom.data.datasets import make_vqa_dataset
from semcom.data.questions import natural_language_summary
from semcom.data.scenes import Scene, generate_scenes, render_scene
from semcom.data.vocab import default_vocab
from semcom.errors import UsageError, finite_float, positive_int
from semcom.jscc.checkpoint import read_config
from semcom.jscc.jpeg import encode as jpeg_encode
from semcom.jscc.model import channel_uses as jscc_channel_uses
from semcom.progress import progress_bar
from semcom.results import plot_label, save_figure, write_csv

ROOT = Path(__file__).resolve().parents[2]
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


def token_values(agents_dir: Path) -> dict[str, dict[str, int]]:
    """K, the values per token and the real values per scene of the two token checkpoints."""
    out = {}
    for stage, method in (("tokens", "tokens_without_jtcc"), ("jtcc", "tokens_with_jtcc")):
        pipeline, _ = load_pipeline(checkpoint_path(agents_dir, stage))
        k, per_token = pipeline.receiver.cfg.k_tokens, pipeline.link.m
        out[method] = {"k": k, "values_per_token": per_token, "real_values": k * per_token}
    return out


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
            rows.append({"image": images.label, "method": method, "kind": kind, "real_values": real_values,
                         "bits": bits_mean, "bits_std": spread, "channel_uses": uses_mean,
                         "jpeg_bits_over_bits": jpeg_bits_mean / bits_mean,
                         "jpeg_uses_over_uses": jpeg_uses / uses_mean})
    return rows


def acceptance(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The issue's checks: JTCC below every other method in bits (the paper's methods: JPEG, DeepJSCC,
    UTF-8 summary, tokens without JTCC; the word-index summary is reported separately), and the ratio
    to the JPEG file for every image set (>= 100x asked for at CLEVR's 480x320, and so for CLEVR's own
    images)."""
    out: dict[str, Any] = {}
    for label in dict.fromkeys(r["image"] for r in rows):
        by = {r["method"]: r for r in rows if r["image"] == label}
        jt = by["tokens_with_jtcc"]
        others = ("jpeg_file", "deepjscc", "natural_language_utf8", "tokens_without_jtcc")
        out[label] = {
            "jtcc_bits": jt["bits"], "jtcc_channel_uses": jt["channel_uses"],
            "jpeg_over_jtcc_bits": jt["jpeg_bits_over_bits"],
            "jpeg_over_jtcc_channel_uses": jt["jpeg_uses_over_uses"],
            "jtcc_fewest_bits": all(jt["bits"] < by[m]["bits"] for m in others),
            "jtcc_fewest_channel_uses": all(jt["channel_uses"] < by[m]["channel_uses"] for m in others),
            "methods_with_fewer_bits_than_jtcc": [m for m in by if m != "tokens_with_jtcc"
                                                  and by[m]["bits"] <= jt["bits"]],
        }
        if "natural_language_word_indices" in by:
            out[label]["jtcc_below_word_index_summary_bits"] = (
                jt["bits"] < by["natural_language_word_indices"]["bits"])
        if label != "64x64":
            out[label]["at_least_100x_fewer_bits_than_jpeg"] = out[label]["jpeg_over_jtcc_bits"] >= 100
    return out


METHODS = ("jpeg_file", "stored_file", "deepjscc", "natural_language_utf8", "natural_language_word_indices",
           "tokens_without_jtcc", "tokens_with_jtcc")  # the bars' order; their names: results.plot_label


def plot(path: Path, rows: list[dict[str, Any]], units: Units, quality: int,
         precision: list[dict[str, Any]] | None = None) -> None:
    """Bits and channel uses (log scale), grouped bars per method for both resolutions, each bar labelled
    with the JPEG file's multiple of it; and, with ``precision``, JTCC's accuracy vs bits per value."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = [m for m in METHODS if any(r["method"] == m for r in rows)]
    images = list(dict.fromkeys(r["image"] for r in rows))
    width = 0.8 / len(images)
    fig, axes = plt.subplots(1, 3 if precision else 2, figsize=(16.5 if precision else 12, 4.6),
                             gridspec_kw={"width_ratios": [1, 1, 0.55] if precision else [1, 1]})
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
        ax.set_xticks(x, [plot_label(m) for m in methods], rotation=20, fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    if precision:
        ax = axes[2]
        exact = precision[0]["accuracy"]
        pts = [(r["bits_per_value"], 100 * r["accuracy"]) for r in precision[1:]]
        ax.plot(*zip(*pts, strict=True), "-o", label="values quantised")
        ax.axhline(100 * exact, ls="--", color="k", label="float32")
        ax.set_xlabel("bits per channel value")
        ax.set_ylabel("accuracy (%), ideal channel")
        ax.set_title("tokens + JTCC: precision the values need", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
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


def precision_check(agents_dir: Path, n_questions: int, bits: tuple[int, ...], progress: bool
                    ) -> list[dict[str, Any]]:
    """Accuracy of the JTCC pipeline (ideal channel) with its values unquantised and at each of ``bits``,
    on ``n_questions`` questions about fresh scenes (one question each)."""
    pipeline, _ = load_pipeline(checkpoint_path(agents_dir, "jtcc"))
    size = pipeline.receiver.cfg.image_size
    scenes, _, _ = make_vqa_dataset(n_questions, 1, seed=PRECISION_SEED, image_size=size,
                                    split=(1.0, 0.0, 0.0), progress=progress)
    data = VQATensors.from_dataset(scenes)
    with torch.no_grad():
        exact = evaluate_pipeline(pipeline, data, None, 0.0)["all"]
        rows = [{"bits_per_value": "float32", "accuracy": exact, "difference": 0.0}]
        for b in bits:
            acc = evaluate_pipeline(pipeline, data, Quantizer(b), 0.0)["all"]
            rows.append({"bits_per_value": b, "accuracy": acc, "difference": acc - exact})
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
    out = Path(args.out) if args.out else (Path(tempfile.mkdtemp(prefix="fig5_")) if args.quick
                                           else ROOT / "experiments" / "token_paper" / "output")
    units = Units(args.bits_per_value, args.digital_bits_per_use)
    t0 = time.perf_counter()
    try:
        jscc_c = int(read_config(args.jscc_checkpoint)["config"]["c"])
        tokens = token_values(Path(args.checkpoints))
    except (OSError, ValueError, RuntimeError) as e:  # CheckpointError is a RuntimeError
        raise UsageError(str(e)) from e
    sets = measure_scenes(n_scenes, args.quality, args.seed, progress=not args.no_progress)
    sets += local_sets(args)
    rows = overhead_rows(sets, tokens, jscc_c, units)
    write_csv(out / "fig5.csv", rows)
    precision = (precision_check(Path(args.checkpoints), n_precision, PRECISION_BITS, not args.no_progress)
                 if n_precision else [])
    if precision:
        write_csv(out / "fig5_precision.csv", precision)
    plot(out / "fig5.png", rows, units, args.quality, precision)
    enough = sufficient_bits(precision) if precision else None
    command = " ".join(argv if argv is not None else sys.argv[1:])
    summary = {"command": f"experiments/token_paper/fig5.py {command}",
               "n_scenes": n_scenes, "images_per_set": {images.label: len(images.shapes) for images in sets},
               "scene_seed": args.seed, "jpeg_quality": args.quality,
               "units": asdict(units), "tokens": tokens, "deepjscc_c": jscc_c,
               "deepjscc_checkpoint": str(args.jscc_checkpoint),
               "acceptance": acceptance(rows),
               "precision_check": {"questions": n_precision, "rows": precision,
                                   "tolerance": PRECISION_TOLERANCE, "sufficient_bits_per_value": enough,
                                   "jtcc_bits_at_sufficient_precision": None if enough is None
                                   else enough * tokens["tokens_with_jtcc"]["real_values"]},
               "seconds": time.perf_counter() - t0}
    (out / "fig5.json").write_text(json.dumps(summary, indent=2) + "\n")
    for r in rows:
        print(f"{r['image']:10s} {r['method']:30s} {r['bits']:10.0f} bits {r['channel_uses']:9.0f} uses  "
              f"JPEG/this {r['jpeg_bits_over_bits']:8.3g} (bits) {r['jpeg_uses_over_uses']:8.3g} (uses)")
    for r in precision:
        unit = "" if r["bits_per_value"] == "float32" else " bits"
        print(f"JTCC values at {r['bits_per_value']}{unit}: accuracy {100 * r['accuracy']:.2f} % "
              f"({100 * r['difference']:+.2f} points)")
    print(f"wrote {out / 'fig5.csv'}, fig5_precision.csv, fig5.png, fig5.json")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except UsageError as e:
        print(f"fig5: error: {e}", file=sys.stderr)
        sys.exit(2)
