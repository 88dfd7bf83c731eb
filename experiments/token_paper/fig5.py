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
from semcom.results import write_csv

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


def measure_scenes(n_scenes: int, quality: int, seed: int, progress: bool) -> dict[str, np.ndarray]:
    """Per scene: JPEG bits at 64x64 and at 480x320, summary bits in UTF-8 and as word indices."""
    background = render_scene(Scene([]), CLEVR_HEIGHT)[:, :1]
    vocab = default_vocab()
    bits_per_word = math.ceil(math.log2(len(vocab)))
    out: dict[str, list[float]] = {key: [] for key in ("jpeg_64x64", "jpeg_480x320", "summary_utf8",
                                                       "summary_words")}
    for scene in progress_bar(generate_scenes(n_scenes, seed), desc="scenes", progress=progress):
        summary = natural_language_summary(scene)
        out["jpeg_64x64"].append(jpeg_bits(render_scene(scene, MODEL_SIZE), quality))
        out["jpeg_480x320"].append(jpeg_bits(render_clevr_size(scene, background), quality))
        out["summary_utf8"].append(8 * len(summary.encode("utf-8")))
        out["summary_words"].append(bits_per_word * len(vocab.encode_tensor(summary)))
    return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}


def token_values(agents_dir: Path) -> dict[str, dict[str, int]]:
    """K, the values per token and the real values per scene of the two token checkpoints."""
    out = {}
    for stage, method in (("tokens", "tokens_without_jtcc"), ("jtcc", "tokens_with_jtcc")):
        pipeline, _ = load_pipeline(checkpoint_path(agents_dir, stage))
        k, per_token = pipeline.receiver.cfg.k_tokens, pipeline.link.m
        out[method] = {"k": k, "values_per_token": per_token, "real_values": k * per_token}
    return out


def overhead_rows(measured: dict[str, np.ndarray], tokens: dict[str, dict[str, int]], jscc_c: int,
                  units: Units) -> list[dict[str, Any]]:
    """One row per method and resolution: bits, channel uses, and the ratio of the JPEG file's bits to
    the method's bits (and channel uses) at that resolution."""
    rows = []
    sizes = (("64x64", (MODEL_SIZE, MODEL_SIZE)), ("480x320", (CLEVR_HEIGHT, CLEVR_WIDTH)))
    for label, (height, width) in sizes:
        jpeg = measured[f"jpeg_{label}"]
        jpeg_bits_mean, jpeg_uses = units.digital(float(jpeg.mean()))
        entries: list[tuple[str, str, float, float, float, float]] = [
            ("jpeg_file", "digital", jpeg_bits_mean, jpeg_uses, float(jpeg.std()), math.nan)]
        deepjscc_uses = jscc_channel_uses(jscc_c, height, width)
        entries.append(("deepjscc", "analog", *units.analog(2.0 * deepjscc_uses), 0.0, 2.0 * deepjscc_uses))
        for name, key in (("natural_language_utf8", "summary_utf8"),
                          ("natural_language_word_indices", "summary_words")):
            entries.append((name, "digital", *units.digital(float(measured[key].mean())),
                            float(measured[key].std()), math.nan))
        for name, tok in tokens.items():
            values = float(tok["real_values"])
            entries.append((name, "analog", *units.analog(values), 0.0, values))
        for method, kind, bits, uses, spread, values in entries:
            rows.append({"image": label, "method": method, "kind": kind, "real_values": values,
                         "bits": bits, "bits_std": spread, "channel_uses": uses,
                         "jpeg_bits_over_bits": jpeg_bits_mean / bits,
                         "jpeg_uses_over_uses": jpeg_uses / uses})
    return rows


def acceptance(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The issue's checks: JTCC below every other method in bits (the paper's methods: JPEG, DeepJSCC,
    UTF-8 summary, tokens without JTCC; the word-index summary is reported separately), and the ratio
    to the JPEG file at both resolutions (>= 100x asked for at 480x320)."""
    out: dict[str, Any] = {}
    for label in ("64x64", "480x320"):
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
            "jtcc_below_word_index_summary_bits": jt["bits"] < by["natural_language_word_indices"]["bits"],
        }
    out["480x320"]["at_least_100x_fewer_bits_than_jpeg"] = out["480x320"]["jpeg_over_jtcc_bits"] >= 100
    return out


LABELS = {"jpeg_file": "JPEG file", "deepjscc": "DeepJSCC", "natural_language_utf8": "language (UTF-8)",
          "natural_language_word_indices": "language (word ids)", "tokens_without_jtcc": "tokens",
          "tokens_with_jtcc": "tokens + JTCC"}


def plot(path: Path, rows: list[dict[str, Any]], units: Units, quality: int,
         precision: list[dict[str, Any]] | None = None) -> None:
    """Bits and channel uses (log scale), grouped bars per method for both resolutions, each bar labelled
    with the JPEG file's multiple of it; and, with ``precision``, JTCC's accuracy vs bits per value."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(LABELS)
    images = ["64x64", "480x320"]
    fig, axes = plt.subplots(1, 3 if precision else 2, figsize=(16.5 if precision else 12, 4.6),
                             gridspec_kw={"width_ratios": [1, 1, 0.55] if precision else [1, 1]})
    for ax, (key, ratio, title) in zip(axes[:2], (
            ("bits", "jpeg_bits_over_bits", f"bits (analog values at {units.bits_per_value:g} bit)"),
            ("channel_uses", "jpeg_uses_over_uses",
             f"complex channel uses (digital at {units.digital_bits_per_use:g} bit/use)")), strict=True):
        x = np.arange(len(methods))
        for j, image in enumerate(images):
            by = {r["method"]: r for r in rows if r["image"] == image}
            vals = [by[m][key] for m in methods]
            bars = ax.bar(x + (j - 0.5) * 0.4, vals, 0.4, label=f"{image} image", color=f"C{j}",
                          hatch=["//" if m == "natural_language_word_indices" else "" for m in methods])
            for bar, m in zip(bars, methods, strict=True):
                if m != "jpeg_file":
                    ax.annotate(f"{by[m][ratio]:.3g}x", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                                ha="center", va="bottom", fontsize=6, rotation=90)
        ax.set_yscale("log")
        ax.set_ylim(top=ax.get_ylim()[1] * 6)  # room for the labels above the tallest bar
        ax.set_xticks(x, [LABELS[m] for m in methods], rotation=20, fontsize=8)
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
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


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
    measured = measure_scenes(n_scenes, args.quality, args.seed, progress=not args.no_progress)
    rows = overhead_rows(measured, tokens, jscc_c, units)
    write_csv(out / "fig5.csv", rows)
    precision = (precision_check(Path(args.checkpoints), n_precision, PRECISION_BITS, not args.no_progress)
                 if n_precision else [])
    if precision:
        write_csv(out / "fig5_precision.csv", precision)
    plot(out / "fig5.png", rows, units, args.quality, precision)
    enough = sufficient_bits(precision) if precision else None
    command = " ".join(argv if argv is not None else sys.argv[1:])
    summary = {"command": f"experiments/token_paper/fig5.py {command}",
               "n_scenes": n_scenes, "scene_seed": args.seed, "jpeg_quality": args.quality,
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
        print(f"{r['image']:8s} {r['method']:30s} {r['bits']:10.0f} bits {r['channel_uses']:9.0f} uses  "
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
