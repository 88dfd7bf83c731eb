"""DeepJSCC trained on the agents' generated scenes (64x64), then raw-image VQA on its reconstructions.

The Fig. 6 baseline (2) of the machine-language-token paper: the image is sent with DeepJSCC and the
receiver's VQA model (``agents.small.RawVQA``, the shipped ``raw_vqa`` checkpoint, trained on clean
images) answers from the reconstruction.

* Data: the training split of ``AgentsExperiment`` (8 400 scenes, seed 0), the same images the VQA
  models trained on; the test split (2 400 scenes, 7 200 questions) is only evaluated. Monitoring uses
  the first 256 validation images (no model selection).
* Codec: ``semcom.jscc.DeepJSCC`` with c = 16 filters, k/n = 1/6: a 64x64x3 image (n = 12 288 values)
  is k = 2 048 complex channel uses (4 096 real values). Optionally warm-started from another
  checkpoint of the same architecture (the 32x32 photo codec: the codec is fully convolutional).
* Training: ``semcom.jscc.train.train`` (the project's ``fit`` loop) over AWGN at an SNR drawn
  uniformly from 0-20 dB per image, capped by wall time; checkpoint in the ``semcom.checkpoint`` format.
* Evaluation: per-image PSNR and VQA accuracy over the named channels (AWGN, OFAT 2x4 ZF) per SNR.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from semcom.channels import named_channel
from semcom.errors import UsageError, finite_float, output_dir, positive_int
from semcom.results import plot_label, read_csv, save_figure, write_csv

from .checkpoint import load_checkpoint, save_checkpoint
from .model import DeepJSCC, JSCCConfig
from .train import TrainConfig, train

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
SCENE_CHECKPOINT = PACKAGE_DIR / "checkpoints" / "deepjscc_kn1-6_scenes64"
PHOTO_CHECKPOINT = PACKAGE_DIR / "checkpoints" / "deepjscc_kn1-6_32px"
AGENT_CHECKPOINTS = PACKAGE_DIR.parent / "agents" / "checkpoints"
DEFAULT_SNRS = (0.0, 5.0, 10.0, 15.0, 20.0)
DEFAULT_CHANNELS = ("awgn", "ofat_2x4_zf_ls")
N_MONITOR = 256


@dataclass
class SceneJSCCConfig:
    """A scene-codec run (stored in the checkpoint's metadata)."""

    c: int = 16                        # k/n = c/96 = 1/6
    init: str | None = str(PHOTO_CHECKPOINT)  # warm start (same architecture) or None: from scratch
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        epochs=30, batch_size=32, lr=1e-3, lr_min=1e-5, snr_db=(0.0, 20.0), seed=0, max_seconds=600.0))

    def to_dict(self) -> dict[str, Any]:
        return {"c": self.c, "init": self.init, "train": self.train.to_dict()}


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 3, H, W) -> float32 in [0, 1]."""
    return images.float().div_(255.0)


def train_scene_codec(cfg: SceneJSCCConfig, train_images: torch.Tensor, monitor_images: torch.Tensor,
                      checkpoint: str | Path, command: str = "", progress: bool = True
                      ) -> tuple[DeepJSCC, dict[str, Any]]:
    """Train the codec on ``train_images`` (N, 3, 64, 64) float in [0, 1] over AWGN; save ``checkpoint``.

    Returns the model (eval mode) and the metadata stored with it (history, wall time, config)."""
    torch.manual_seed(cfg.train.seed)
    model = DeepJSCC(JSCCConfig(c=cfg.c))
    if cfg.init:
        init, _ = load_checkpoint(cfg.init, expect=model.cfg)
        model.load_state_dict(init.state_dict())
    channel = named_channel("awgn", seed=cfg.train.seed)
    t0 = time.perf_counter()
    history = train(model, train_images, channel, cfg.train, val_images=monitor_images, val_snr_db=10.0,
                    progress=progress)
    meta = {"config": cfg.to_dict(), "history": history, "train_seconds": time.perf_counter() - t0,
            "n_train_images": int(train_images.shape[0]), "image_size": int(train_images.shape[-1]),
            "command": command, "torch_threads": torch.get_num_threads()}
    save_checkpoint(checkpoint, model, meta=meta)
    return model, meta


def evaluate_scene_codec(codec: DeepJSCC, raw_vqa: torch.nn.Module, test: Any, channels: tuple[str, ...],
                         snrs: tuple[float, ...], seed: int = 1) -> list[dict[str, Any]]:
    """Rows of (method, channel, snr_db, accuracy per family, image PSNR) for raw-image VQA on the
    codec's reconstructions of the test images (``agents.train.VQATensors``)."""
    from semcom.agents.experiment import deepjscc_rows

    return deepjscc_rows(raw_vqa, codec, test, channels, snrs, seed)


def plot(path: Path, rows: list[dict[str, Any]], photo_rows: list[dict[str, Any]]) -> None:
    """PSNR and VQA accuracy vs SNR, scene codec (and the photo codec when evaluated)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for label, rr, ls in (("scene codec", rows, "-o"), ("photo codec", photo_rows, "--s")):
        for ch in dict.fromkeys(r["channel"] for r in rr):
            pts = sorted((float(r["snr_db"]), r) for r in rr if r["channel"] == ch)
            x = [p[0] for p in pts]
            axes[0].plot(x, [p[1]["image_psnr_db"] for p in pts], ls, label=f"{label}, {plot_label(ch)}")
            axes[1].plot(x, [100 * p[1]["accuracy"] for p in pts], ls, label=f"{label}, {plot_label(ch)}")
    axes[0].set_ylabel("PSNR (dB), 64x64 test scenes")
    axes[1].set_ylabel("raw-image VQA accuracy (%)")
    for ax in axes:
        ax.set_xlabel("SNR (dB)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("DeepJSCC k/n = 1/6 (2 048 complex channel uses per 64x64 scene) + raw-image VQA",
                 fontsize=9)
    save_figure(fig, path)


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = " (default: %(default)s)"
    p.add_argument("--checkpoint", default=str(SCENE_CHECKPOINT), help="scene codec <name>(.pt/.json)" + d)
    p.add_argument("--retrain", action="store_true", help="train even if the checkpoint exists")
    p.add_argument("--init", default=str(PHOTO_CHECKPOINT),
                   help="warm-start checkpoint of the same architecture, or 'none'" + d)
    p.add_argument("--max-minutes", type=finite_float, default=10.0, help="training wall-time cap" + d)
    p.add_argument("--epochs", type=positive_int, default=30, help="epoch cap" + d)
    p.add_argument("--agents", default=str(AGENT_CHECKPOINTS), help="agent checkpoints (raw_vqa)" + d)
    p.add_argument("--snrs", type=finite_float, nargs="+", default=list(DEFAULT_SNRS), help="SNRs (dB)" + d)
    p.add_argument("--channels", nargs="+", default=list(DEFAULT_CHANNELS), help="evaluation channels" + d)
    p.add_argument("--n-test", type=positive_int, default=None, help="test questions (default: all 7 200)")
    p.add_argument("--photo", action="store_true", help="also evaluate the 32x32 photo codec")
    p.add_argument("--threads", type=positive_int, default=1, help="torch threads" + d)
    p.add_argument("--out", type=output_dir, default="experiments/jscc/output_scenes",
                   help="output directory" + d)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--replot", action="store_true", help="evaluate nothing: redraw --out's results.png "
                   "from its results.csv")


def replot(out: Path) -> Path:
    """results.png again from ``out``'s results.csv (the scene codec's rows and the photo codec's)."""
    if not (out / "results.csv").is_file():
        raise UsageError(f"--replot: no results.csv in {out}")
    rows = read_csv(out / "results.csv")
    plot(out / "results.png", [r for r in rows if r["method"] == "deepjscc_scenes_raw_vqa"],
         [r for r in rows if r["method"] == "deepjscc_photo_raw_vqa"])
    return out / "results.png"


def run(args: argparse.Namespace, argv: list[str] | None = None) -> int:
    from semcom.agents.experiment import AgentsExperiment, load_models, make_data

    if args.replot:
        print(f"wrote {replot(Path(args.out))}")
        return 0
    torch.set_num_threads(args.threads)
    exp = AgentsExperiment()
    data = make_data(exp, progress=not args.no_progress, pretrain=False)
    command = "python experiments/jscc/scenes.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    ckpt = Path(args.checkpoint)
    if args.retrain or not ckpt.with_suffix(".json").is_file():
        train_cfg = TrainConfig(epochs=args.epochs, batch_size=32, lr=1e-3, lr_min=1e-5, snr_db=(0.0, 20.0),
                                seed=0, max_seconds=60 * args.max_minutes)
        cfg = SceneJSCCConfig(init=None if args.init == "none" else args.init, train=train_cfg)
        codec, meta = train_scene_codec(cfg, to_float(data.train.images),
                                        to_float(data.val.images[:N_MONITOR]), ckpt, command,
                                        progress=not args.no_progress)
    else:
        codec, doc = load_checkpoint(ckpt)
        meta = doc.get("meta", {})
    raw = load_models(args.agents, data)["raw_vqa"]
    test = data.test.subset(args.n_test) if args.n_test else data.test
    t0 = time.perf_counter()
    rows = evaluate_scene_codec(codec, raw, test, tuple(args.channels), tuple(args.snrs))
    photo_rows: list[dict[str, Any]] = []
    if args.photo:
        photo, _ = load_checkpoint(PHOTO_CHECKPOINT)
        photo_rows = evaluate_scene_codec(photo, raw, test, tuple(args.channels), tuple(args.snrs))
        for r in photo_rows:
            r["method"] = "deepjscc_photo_raw_vqa"
    for r in rows:
        r["method"] = "deepjscc_scenes_raw_vqa"
    out = Path(args.out)
    write_csv(out / "results.csv", rows + photo_rows)
    plot(out / "results.png", rows, photo_rows)
    summary = {"command": command, "checkpoint": str(ckpt), "n_test_questions": len(test),
               "eval_seconds": time.perf_counter() - t0, "train": meta,
               "accuracy": {f"{r['method']}/{r['channel']}/{r['snr_db']:g}": r["accuracy"]
                            for r in rows + photo_rows},
               "psnr_db": {f"{r['method']}/{r['channel']}/{r['snr_db']:g}": r["image_psnr_db"]
                           for r in rows + photo_rows}}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=float) + "\n")
    for r in rows + photo_rows:
        print(f"{r['method']:24s} {r['channel']:16s} {r['snr_db']:5g} dB  PSNR {r['image_psnr_db']:6.2f}  "
              f"acc {100 * r['accuracy']:6.2f} %")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="DeepJSCC trained on the 64x64 scenes + raw-image VQA vs SNR")
    add_arguments(p)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run(args, argv)
