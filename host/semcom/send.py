"""`semcom send`: a trained model, unchanged, over the torch OFAT channel and over the flowgraph.

    semcom send jscc   --checkpoint host/semcom/jscc/checkpoints/<name> --snr 20 --n 100
    semcom send jscc   --checkpoint experiments/lightweight/output/checkpoints/structured50_int8
    semcom send tokens --checkpoint host/semcom/agents/checkpoints/tokens_jtcc --snr 20 --n 1000

The same model and inputs go through `semcom.channels.OfatChannel` (the differentiable torch channel
it was trained or evaluated with) and through `FlowgraphChannel` (the loopback flowgraph, or
`--connect TX RX` for a running one: split arrangement, USRP bench); the scores (PSNR for DeepJSCC
images, answer accuracy for the machine-language tokens of the agents, one OFAT frame per image or per
question) are printed side by side and written as CSV.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from semcom.errors import check_loss, finite_float, fraction, nonnegative_int, output_dir, positive_int
from semcom.results import write_csv

# ZF on both paths: codecs trained over AWGN expect unbiased symbols (MMSE shrinks them).
EQUALIZER = "zf"


def compare_channels(score: Callable[[Any], float], metric: str, snr: float, seed: int = 0,
                     connect: tuple[str, str] | None = None, progress: bool = True) -> list[dict[str, Any]]:
    """``score(channel)`` over the torch OFAT 2x4 channel and over the flowgraph -> two result rows
    (channel, snr_db, ``metric``, frames, lost); the flowgraph's frames are all counted sent or lost."""
    from semcom.channels import OfatChannel
    from semcom.flowgraph_channel import FlowgraphChannel
    from semcom.ofat.frame import make_layout

    layout = make_layout("wifi64", n_tx=2, n_rx=4)
    torch_channel = OfatChannel(snr, layout=layout, seed=seed, equalizer=EQUALIZER)
    rows = [{"channel": f"torch OFAT 2x4, {EQUALIZER.upper()} (differentiable)", "snr_db": snr,
             metric: score(torch_channel), "frames": 0, "lost": 0}]
    with FlowgraphChannel(snr, seed=seed, connect=connect, method=EQUALIZER, progress=progress) as fg:
        value = score(fg)
        rows.append({"channel": "GNU Radio flowgraph" + (" (external)" if connect else " (loopback 2x4)"),
                     "snr_db": snr, metric: value, "frames": fg.sent, "lost": fg.lost})
    return rows


def _compare(args: argparse.Namespace, score: Callable[[Any], float], metric: str, name: str) -> int:
    """``score(channel)`` over the torch OFAT channel and over the flowgraph -> printed rows + CSV."""
    connect = tuple(args.connect) if args.connect else None
    rows = compare_channels(score, metric, args.snr, seed=args.seed, connect=connect,
                            progress=not args.no_progress)
    for row in rows:
        print(f"{row['channel']:38s} SNR {row['snr_db']:5.1f} dB  {metric} {row[metric]:8.4f}  "
              f"frames {row['frames']}  lost {row['lost']}")
    print(f"difference {rows[1][metric] - rows[0][metric]:+.4f} {metric}")
    print(f"wrote {write_csv(Path(args.out) / f'send_{name}.csv', rows)}")
    check_loss(rows[1]["channel"], rows[1]["frames"], rows[1]["lost"], args.max_loss)
    return 0


def _send_jscc(args: argparse.Namespace) -> int:
    import numpy as np

    from semcom.jscc.experiment import load_images
    from semcom.jscc.train import evaluate_psnr
    from semcom.lightweight.checkpoint import load_codec

    # a plain DeepJSCC checkpoint or a compressed one (pruned / int8 / distilled encoder); a missing or
    # corrupt one raises CheckpointError, which semcom.cli.main reports (stderr, exit 2)
    model, doc = load_codec(args.checkpoint)
    if doc["kind"] != "semcom.deepjscc":
        print(f"compressed encoder: {doc['config']['weights']}, architecture {doc['config']['encoder']}")
    images = load_images(args.images, n=args.n, seed=args.seed, split="test")
    return _compare(args, lambda ch: float(np.mean(evaluate_psnr(model, images, ch, args.snr,
                                                                 batch_size=args.batch))),
                    "psnr_db", "jscc")


def _send_tokens(args: argparse.Namespace) -> int:
    from semcom.agents.checkpoint import load_pipeline
    from semcom.agents.experiment import AgentsExperiment, make_data
    from semcom.agents.train import evaluate_pipeline

    pipeline, doc = load_pipeline(args.checkpoint)  # CheckpointError: reported by semcom.cli.main
    exp = AgentsExperiment.from_dict(doc["meta"]["experiment"])  # the test split it was not trained on
    test = make_data(exp, progress=False, pretrain=False).test.subset(args.n)
    print(f"{len(test)} test questions, {pipeline.link.m * pipeline.sensor.cfg.k_tokens} real channel "
          f"values each ({type(pipeline.link).__name__})")
    return _compare(args, lambda ch: evaluate_pipeline(pipeline, test, ch, args.snr, seed=args.seed,
                                                       batch_size=args.batch)["all"],
                    "accuracy", "tokens")


def _common(p: argparse.ArgumentParser, n: int, batch: int) -> None:
    p.add_argument("--checkpoint", required=True,
                   help="checkpoint base path (<path>.pt + <path>.json) (required, no default)")
    d = " (default: %(default)s)"
    p.add_argument("--n", type=positive_int, default=n, help="test items (one OFAT frame each)" + d)
    p.add_argument("--snr", type=finite_float, default=20.0, help="channel SNR in dB" + d)
    p.add_argument("--batch", type=positive_int, default=batch, help="items per flowgraph batch" + d)
    p.add_argument("--seed", type=nonnegative_int, default=0, help="channel and data seed" + d)
    p.add_argument("--connect", nargs=2, metavar=("TX_ENDPOINT", "RX_ENDPOINT"),
                   help="use a running flowgraph (default: start the loopback flowgraph)")
    p.add_argument("--out", type=output_dir, default="results/send", help="directory for the CSV" + d)
    p.add_argument("--max-loss", type=fraction, default=0.05,
                   help="exit 1 when the flowgraph loses more than this share of its frames or "
                   "delivers none" + d)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("send", help="run a trained model over the torch channel and the flowgraph")
    sub = p.add_subparsers(dest="send_what", required=True)
    j = sub.add_parser("jscc", help="DeepJSCC images: PSNR over torch OFAT vs the flowgraph")
    _common(j, 100, 25)
    j.add_argument("--images", default="photos", choices=["photos", "digits", "scenes"],
                   help="image set (default: %(default)s)")
    j.set_defaults(func=_send_jscc)
    t = sub.add_parser("tokens", help="machine-language tokens: VQA accuracy, torch OFAT vs the flowgraph")
    _common(t, 1000, 250)
    t.set_defaults(func=_send_tokens)
