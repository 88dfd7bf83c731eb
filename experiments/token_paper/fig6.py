"""Fig. 6 of the machine-language-token paper: VQA accuracy vs SNR for the five systems, each over the
channel it really uses.

Systems (shipped agent checkpoints, one seed; the scene-trained DeepJSCC of ``semcom.jscc.scenes``):

* ``raw_image_digital``: the image's JPEG file (Pillow, quality 75) over the digital link
  (``semcom.digital``: gr-fec CC rate 1/2 + gr-digital OFDM, SISO); the raw-image VQA model answers
  from the decoded JPEG, or from a grey image when any packet of the file is lost.
* ``deepjscc_scenes``: DeepJSCC k/n = 1/6 (2 048 complex channel uses), raw-image VQA on the
  reconstruction, over the analog channel.
* ``natural_language_digital``: the natural-language summary in UTF-8 over the digital link; the
  summary-reading receiver answers from it, or from an empty summary (its fallback) when it is lost.
* ``tokens_raw`` / ``tokens_jtcc``: K = 5 machine-language tokens without / with JTCC (640 / 80 real
  values) over the analog channel.

Panels: ``awgn`` (analog: the torch AWGN channel; digital: ``mimo_channel`` 1x1 with one unit tap) and
``fading`` (analog: the torch OFAT 2x4 channel, 3-tap Rayleigh, LS CSI, ZF; digital: ``mimo_channel``
1x1 with the same 3-tap Rayleigh profile, redrawn per packet: SISO, no diversity).

Digital accuracy per question: every question's message is delivered or not, drawn from the packet
error rate measured once through the flowgraph (``host/semcom/digital/per_table.csv``), each packet
independently; the receiver's answer with and without the message is computed once per question. A
smaller number of questions goes fully through the flowgraph at a few SNRs (``--flowgraph-snrs``), the
received bytes decoded as they arrived, to check the sampling. ``--analog-flowgraph-snrs`` runs the
JTCC tokens over the OFAT loopback flowgraph (``FlowgraphChannel``, one frame per question).

    python experiments/token_paper/fig6.py              # the committed run: 2 400 test questions
    python experiments/token_paper/fig6.py --quick      # smoke: a few fresh scenes, 3 SNRs
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semcom.agents.experiment import AgentsExperiment, deepjscc_rows, load_models, make_data, uniform_rows
from semcom.agents.train import VQATensors, accuracy_by_family, evaluate_pipeline, predictions
from semcom.channels import named_channel
from semcom.data.vocab import BOS, EOS, Vocab
from semcom.digital import DigitalLink, PerTable, decode_jpeg, jpeg_bytes, send_messages, summary_text
from semcom.digital.messages import packets_per_message
from semcom.errors import finite_float, positive_int
from semcom.jscc.checkpoint import load_checkpoint
from semcom.jscc.scenes import SCENE_CHECKPOINT
from semcom.results import FIGURE_DPI, plot_label, write_csv

ROOT = Path(__file__).resolve().parents[2]
AGENTS = ROOT / "host" / "semcom" / "agents" / "checkpoints"
DEFAULT_SNRS = tuple(float(s) for s in range(0, 21))  # the digital curves: cheap, and the cliff is steep
DEFAULT_ANALOG_SNRS = (0.0, 5.0, 10.0, 15.0, 20.0)
PANELS = {"awgn": ("awgn", "awgn"), "fading": ("ofat_2x4_zf_ls", "rayleigh")}  # (analog, digital)
SYSTEMS = ("raw_image_digital", "deepjscc_scenes", "natural_language_digital", "tokens_raw", "tokens_jtcc")
JPEG_QUALITY = 75


def _grey(images: torch.Tensor) -> torch.Tensor:
    return torch.full_like(images, 128)


def digital_messages(test: VQATensors, itos: list[str]) -> tuple[list[bytes], list[bytes]]:
    """Per test image: the summary in UTF-8 and the JPEG file."""
    summaries = [summary_text(test.summary[i], itos).encode("utf-8") for i in range(test.images.shape[0])]
    jpegs = [jpeg_bytes(test.images[i], JPEG_QUALITY) for i in range(test.images.shape[0])]
    return summaries, jpegs


def with_images(test: VQATensors, images: torch.Tensor) -> VQATensors:
    return dataclasses.replace(test, images=images)


def with_summaries(test: VQATensors, ids: torch.Tensor) -> VQATensors:
    return dataclasses.replace(test, summary=ids)


def decoded_jpegs(jpegs: list[bytes | None], size: int) -> torch.Tensor:
    """Received JPEG files (None = lost) -> uint8 images (S, 3, size, size); lost ones grey."""
    return torch.stack([(decode_jpeg(j, size) * 255).round().to(torch.uint8) if j is not None
                        else torch.full((3, size, size), 128, dtype=torch.uint8) for j in jpegs])


def encoded_summaries(texts: list[bytes | None], vocab: Vocab | None, width: int) -> torch.Tensor:
    """Received summaries (None = lost) -> id matrix (S, width); a lost one is BOS EOS (empty)."""
    out = torch.zeros(len(texts), width, dtype=torch.long)
    for i, t in enumerate(texts):
        ids = vocab.encode(t.decode("utf-8")) if t is not None and vocab is not None else [BOS, EOS]
        out[i, :min(len(ids), width)] = torch.tensor(ids[:width])
    return out


def raw_correct(raw_vqa: Any, data: VQATensors) -> np.ndarray:
    """Per question: is the raw-image VQA model right on ``data``'s images?"""
    return predictions(lambda b: raw_vqa(b["image"], b["question"]), data)[0]


def text_correct(reader: Any, data: VQATensors) -> np.ndarray:
    """Per question: is the summary-reading receiver right on ``data``'s summaries?"""
    return predictions(lambda b: reader.answer_text(b["summary"], b["question"]), data)[0]


class DigitalReceivers:
    """The two digital baselines' receivers, with each question's answer with and without its message."""

    def __init__(self, models: dict[str, Any], test: VQATensors, jpegs: list[bytes]) -> None:
        raw, text = models["raw_vqa"], models["text"]
        self.test = test
        empty = encoded_summaries([None] * test.images.shape[0], None, 2)
        size = test.images.shape[-1]
        with torch.no_grad():
            self.answers = {  # (delivered, lost): the JPEG as decoded or grey; the summary or empty
                "raw_image_digital": (raw_correct(raw, with_images(test, decoded_jpegs(jpegs, size))),
                                      raw_correct(raw, with_images(test, _grey(test.images)))),
                "natural_language_digital": (text_correct(text, test),
                                             text_correct(text, with_summaries(test, empty))),
            }


    def accuracy(self, system: str, delivered: np.ndarray) -> dict[str, float]:
        ok, lost = self.answers[system]
        return accuracy_by_family(np.where(delivered, ok, lost), self.test.family.numpy(), self.test.families)


def _row(system: str, panel: str, channel: str, snr: float, acc: dict[str, float], uses: float, n: int,
         how: str, **extra: Any) -> dict[str, Any]:
    row = {"system": system, "panel": panel, "channel": channel, "snr_db": snr, "accuracy": acc["all"],
           "complex_channel_uses": uses, "n_questions": n, "evaluated": how, "packets_sent": "",
           "packets_lost": "", "messages_delivered": ""}
    row.update(extra)
    row.update({f"acc_{k}": v for k, v in acc.items() if k != "all"})
    return row


def load_data_and_models(args: argparse.Namespace) -> tuple[Any, VQATensors, dict[str, Any]]:
    """The agents' data (or, ``--quick``, fresh scenes of another seed: a smoke run, not a result), the
    test questions and the shipped models."""
    exp = AgentsExperiment()
    if args.quick:
        exp = dataclasses.replace(exp, n_scenes=60, seed=4242)
    data = make_data(exp, progress=False, pretrain=False)
    test = data.test.subset(args.n_test) if args.n_test else data.test
    return data, test, load_models(args.checkpoints, data)


def run(args: argparse.Namespace, argv: list[str]) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    data, test, models = load_data_and_models(args)
    codec, _ = load_checkpoint(args.codec)
    vocab = Vocab(data.vocab)
    per_table = PerTable.load(args.per_table)
    link = DigitalLink()
    burst = link.cfg.burst_samples
    snrs, analog_snrs = tuple(args.snrs), tuple(args.analog_snrs)
    k = models["jtcc"].sensor.cfg.k_tokens
    q_image = test.image_of.numpy()
    summaries, jpegs = digital_messages(test, data.vocab)
    n_pk = {"natural_language_digital": np.array([packets_per_message(len(m), link.cfg) for m in summaries]),
            "raw_image_digital": np.array([packets_per_message(len(m), link.cfg) for m in jpegs])}
    messages = {"natural_language_digital": summaries, "raw_image_digital": jpegs}
    receivers = DigitalReceivers(models, test, jpegs)
    clean = {s: float(receivers.answers[s][0].mean()) for s in receivers.answers}
    with torch.no_grad():
        clean_image = float(raw_correct(models["raw_vqa"], test).mean())
    rows: list[dict[str, Any]] = []
    rng = np.random.default_rng(args.seed)
    for panel in args.panels:
        analog, digital_ch = PANELS[panel]
        for system in ("raw_image_digital", "natural_language_digital"):
            per_question = n_pk[system][q_image]
            uses = float(per_question.mean() * burst)
            for snr in snrs:
                delivered = per_table.delivered(per_question, digital_ch, snr, rng)
                rows.append(_row(system, panel, f"digital SISO {digital_ch}", snr,
                                 receivers.accuracy(system, delivered), uses, len(test), "PER table",
                                 messages_delivered=float(delivered.mean())))
        for r in deepjscc_rows(models["raw_vqa"], codec, test, (analog,), analog_snrs, args.seed + 1):
            rows.append(_row("deepjscc_scenes", panel, analog, r["snr_db"],
                             {"all": r["accuracy"],
                              **{c[4:]: v for c, v in r.items() if c.startswith("acc_")}},
                             r["channel_values"] / 2, len(test), "torch channel",
                             image_psnr_db=r["image_psnr_db"]))
        for system, stage in (("tokens_raw", "tokens"), ("tokens_jtcc", "jtcc")):
            pipe = models[stage]
            ch = named_channel(analog, seed=args.seed + 1)
            for snr in analog_snrs:
                acc = evaluate_pipeline(pipe, test, ch, snr, seed=args.seed + 1)
                rows.append(_row(system, panel, analog, snr, acc, k * pipe.link.m / 2, len(test),
                                 "torch channel"))
        print(f"{panel}: {len(rows)} rows, {time.perf_counter() - t_start:.0f} s", flush=True)
    rows += flowgraph_rows(args, link, test, messages, models, vocab, q_image, receivers, per_table)
    rows += analog_flowgraph_rows(args, models, codec, test)
    out = Path(args.out)
    write_csv(out / "fig6.csv", uniform_rows(rows))
    plot(out / "fig6.png", rows, clean | {"clean_image": clean_image}, link.cfg.rate)
    summary = {
        "command": "python experiments/token_paper/fig6.py " + shlex.join(argv),
        "n_test_questions": len(test), "digital_snrs_db": list(snrs), "analog_snrs_db": list(analog_snrs),
        "panels": {p: PANELS[p] for p in args.panels},
        "seed_of_checkpoints": "one seed (the shipped checkpoints, seed 0)",
        "digital_link": link.cfg.to_dict(), "jpeg_quality": JPEG_QUALITY,
        "mean_packets": {s: float(n_pk[s][q_image].mean()) for s in n_pk},
        "mean_bytes": {s: float(np.mean([len(m) for m in messages[s]])) for s in messages},
        "error_free_digital_accuracy": clean, "raw_image_vqa_clean_image": clean_image,
        "per_table": str(args.per_table),
        "per_table_command": per_table.meta.get("command", ""), "codec": str(args.codec),
        "checks": checks(rows), "seconds": time.perf_counter() - t_start,
    }
    (out / "fig6.json").write_text(json.dumps(summary, indent=2, default=float) + "\n")
    return summary


def per_question(data: VQATensors, image_of: np.ndarray) -> VQATensors:
    """``data`` with one image (and its scene and summary rows) per question, for per-question contents."""
    idx = torch.as_tensor(image_of)
    return dataclasses.replace(data, images=data.images[idx], scene=data.scene[idx],
                               summary=data.summary[idx], image_of=torch.arange(len(idx)))


def flowgraph_rows(args: argparse.Namespace, link: DigitalLink, test: VQATensors,
                   messages: dict[str, list[bytes]], models: dict[str, Any], vocab: Vocab,
                   q_image: np.ndarray, receivers: DigitalReceivers, per_table: PerTable
                   ) -> list[dict[str, Any]]:
    """The digital baselines fully through the flowgraph for the first ``--flowgraph-questions``
    questions (one transmission each): the received bytes are decoded and answered as they arrived.

    Beside each row, for the same questions: the accuracy with every message delivered / none, and what
    the PER table predicts (messages delivered, expected accuracy), to check the sampled curves."""
    if not args.flowgraph_snrs:
        return []
    sub = per_question(test.subset(args.flowgraph_questions), q_image[:args.flowgraph_questions])
    qi = q_image[:len(sub)]
    rows = []
    for panel in args.panels:
        digital_ch = PANELS[panel][1]
        for snr in args.flowgraph_snrs:
            for system in ("raw_image_digital", "natural_language_digital"):
                sent = [messages[system][i] for i in qi]
                received, res = send_messages(link, sent, snr, digital_ch, seed=args.seed + int(10 * snr))
                with torch.no_grad():
                    if system == "raw_image_digital":
                        data = with_images(sub, decoded_jpegs(received, sub.images.shape[-1]))
                        correct = raw_correct(models["raw_vqa"], data)
                    else:
                        data = with_summaries(sub, encoded_summaries(received, vocab, sub.summary.shape[1]))
                        correct = text_correct(models["text"], data)
                acc = accuracy_by_family(correct, sub.family.numpy(), sub.families)
                packets = np.mean([packets_per_message(len(m), link.cfg) for m in sent])
                uses = float(packets * link.cfg.burst_samples)
                ok, lost = (a[:len(sub)] for a in receivers.answers[system])
                p_msg = (1.0 - per_table.per(digital_ch, snr)) ** np.array(
                    [packets_per_message(len(m), link.cfg) for m in sent])
                rows.append(_row(system, panel, f"digital SISO {digital_ch}", snr, acc, uses, len(sub),
                                 "flowgraph", packets_sent=res.sent, packets_lost=res.lost,
                                 messages_delivered=float(np.mean([m is not None for m in received])),
                                 accuracy_all_delivered=float(ok.mean()),
                                 accuracy_none_delivered=float(lost.mean()),
                                 table_messages_delivered=float(p_msg.mean()),
                                 table_expected_accuracy=float(np.mean(p_msg * ok + (1 - p_msg) * lost))))
                print(f"flowgraph {system} {digital_ch} {snr:g} dB: acc {acc['all']:.3f}, "
                      f"packets {res.counts()}", flush=True)
    return rows


def analog_flowgraph_rows(args: argparse.Namespace, models: dict[str, Any], codec: Any, test: VQATensors
                          ) -> list[dict[str, Any]]:
    """The analog systems of ``--analog-flowgraph-systems`` over the OFAT 2x4 loopback flowgraph (one
    frame per question: 80 / 640 / 4 096 real values), ZF as on the torch path; lost frames reach the
    receiver as zeros and are counted."""
    if not args.analog_flowgraph_snrs:
        return []
    from semcom.flowgraph_channel import FlowgraphChannel
    from semcom.jscc.train import psnr_per_image

    sub = test.subset(args.analog_flowgraph_questions)
    raw = models["raw_vqa"]
    rows = []
    for system in args.analog_flowgraph_systems:
        for snr in args.analog_flowgraph_snrs:
            extra: dict[str, Any] = {}
            with FlowgraphChannel(snr, seed=args.seed + 1, method="zf") as fg:
                if system == "deepjscc_scenes":
                    psnrs: list[torch.Tensor] = []

                    def logits(b: dict[str, torch.Tensor], fg: Any = fg, snr: float = snr,
                               psnrs: list = psnrs) -> torch.Tensor:
                        x_hat = codec(b["image"], fg, snr_db=snr)
                        psnrs.append(psnr_per_image(b["image"], x_hat))
                        return raw(x_hat, b["question"])

                    with torch.no_grad():
                        acc = accuracy_by_family(*predictions(logits, sub), sub.families)
                    uses = float(codec.encoder(sub.images[:1].float() / 255).numel() / 2)
                    extra["image_psnr_db"] = float(torch.cat(psnrs).mean())
                else:
                    pipe = models["jtcc" if system == "tokens_jtcc" else "tokens"]
                    acc = evaluate_pipeline(pipe, sub, fg, snr, seed=args.seed + 1)
                    uses = pipe.sensor.cfg.k_tokens * pipe.link.m / 2
                rows.append(_row(system, "fading", "OFAT 2x4 loopback flowgraph, ZF", snr, acc, uses,
                                 len(sub), "flowgraph", packets_sent=fg.sent, packets_lost=fg.lost, **extra))
            print(f"flowgraph {system} {snr:g} dB: acc {acc['all']:.3f}, frames {fg.sent} lost {fg.lost}",
                  flush=True)
    return rows


def _curve(rows: list[dict[str, Any]], system: str, panel: str, how: str) -> dict[float, float]:
    return {float(r["snr_db"]): float(r["accuracy"]) for r in rows
            if r["system"] == system and r["panel"] == panel and r["evaluated"] == how}


def checks(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The issue's Fig. 6 statements, per panel, on this run (one seed)."""
    out: dict[str, Any] = {}
    for panel in dict.fromkeys(r["panel"] for r in rows):
        cur = {s: _curve(rows, s, panel, "torch channel" if s.startswith(("tokens", "deepjscc")) else
                         "PER table") for s in SYSTEMS}
        low = [s for s in cur["tokens_jtcc"] if s <= 5.0]
        high = [s for s in cur["tokens_jtcc"] if s >= 15.0]
        others = ("raw_image_digital", "deepjscc_scenes", "natural_language_digital")
        out[panel] = {
            "jtcc_ahead_of_raw_deepjscc_nl_at_or_below_5db": bool(low) and all(
                cur["tokens_jtcc"][s] > max(cur[o][s] for o in others) for s in low),
            "jtcc_minus_best_other_at_or_below_5db": {
                s: cur["tokens_jtcc"][s] - max(cur[o][s] for o in others) for s in low},
            "jtcc_minus_raw_image_digital_at_or_above_15db": {
                s: cur["tokens_jtcc"][s] - cur["raw_image_digital"][s] for s in high},
            "deepjscc_degrades_at_low_snr": bool(cur["deepjscc_scenes"]) and
            min(cur["deepjscc_scenes"].values()) < max(cur["deepjscc_scenes"].values()),
        }
    return out


def plot(path: Path, rows: list[dict[str, Any]], clean: dict[str, float], code_rate: float) -> None:
    """Accuracy vs SNR, one panel per channel pair; one legend below both panels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = list(dict.fromkeys(r["panel"] for r in rows))
    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 5.6), squeeze=False)
    handles: dict[str, Any] = {}
    for ax, panel in zip(axes[0], panels, strict=True):
        for i, system in enumerate(SYSTEMS):
            pr = [r for r in rows if r["system"] == system and r["panel"] == panel]
            for how, style in (("torch channel", "-o"), ("PER table", "-o"), ("flowgraph", "D")):
                pts = sorted((float(r["snr_db"]), 100 * float(r["accuracy"])) for r in pr
                             if r["evaluated"] == how)
                if pts:
                    uses = float(next(r["complex_channel_uses"] for r in pr if r["evaluated"] == how))
                    lab = f"{plot_label(system)} ({uses:,.0f} ch. uses)" if how != "flowgraph" else \
                        f"{plot_label(system)}, through the flowgraph"
                    handles[lab] = ax.plot(*zip(*pts, strict=True), style, color=f"C{i}", label=lab,
                                           ms=4 if how != "flowgraph" else 7,
                                           mfc="none" if how == "flowgraph" else None)[0]
        for system, ls in (("raw_image_digital", ":"), ("natural_language_digital", "--")):
            lab = f"{plot_label(system).split(':')[0].split(' over')[0]}, error-free digital"
            handles[lab] = ax.axhline(100 * clean[system], color="grey", ls=ls, lw=0.8, label=lab)
        if "clean_image" in clean:
            lab = "raw-image VQA on the clean image (no channel)"
            handles[lab] = ax.axhline(100 * clean["clean_image"], color="black", ls="-", lw=0.6, label=lab)
        chans = PANELS[panel]
        ax.set_title(f"{panel}: analog over {plot_label(chans[0])}, digital over SISO {plot_label(chans[1])} "
                     f"(CC r={code_rate:.2f}, BPSK)", fontsize=8)
        ax.set_xlabel("SNR (dB)")
        ax.set_ylabel("VQA accuracy (%)")
        ax.grid(alpha=0.3)
    fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=3, fontsize=7)
    fig.tight_layout(rect=(0, 0.17, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=FIGURE_DPI)
    plt.close(fig)


def flowgraph_only(args: argparse.Namespace, argv: list[str]) -> int:
    """``--flowgraph-only``: the analog systems over the OFAT loopback flowgraph, their own CSV + JSON."""
    t0 = time.perf_counter()
    torch.set_num_threads(args.threads)
    _, test, models = load_data_and_models(args)
    codec, _ = load_checkpoint(args.codec)
    rows = analog_flowgraph_rows(args, models, codec, test)
    out = Path(args.out)
    write_csv(out / "fig6_flowgraph.csv", uniform_rows(rows))
    (out / "fig6_flowgraph.json").write_text(json.dumps(
        {"command": "python experiments/token_paper/fig6.py " + shlex.join(argv),
         "seconds": time.perf_counter() - t0}, indent=2) + "\n")
    return replot(out)


def replot(out: Path) -> int:
    """fig6.png again from fig6.csv and fig6.json."""
    import csv

    rows = []
    for name in ("fig6.csv", "fig6_flowgraph.csv"):
        if (out / name).is_file():
            with (out / name).open() as f:
                rows += list(csv.DictReader(f))
    summary = json.loads((out / "fig6.json").read_text())
    clean = summary["error_free_digital_accuracy"]
    if "raw_image_vqa_clean_image" in summary:
        clean = clean | {"clean_image": summary["raw_image_vqa_clean_image"]}
    plot(out / "fig6.png", rows, clean, summary["digital_link"]["code_rate"])
    print(f"wrote {out / 'fig6.png'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    d = " (default: %(default)s)"
    p = argparse.ArgumentParser(description="Fig. 6: accuracy vs SNR for the five systems")
    p.add_argument("--snrs", type=finite_float, nargs="+", default=list(DEFAULT_SNRS),
                   help="SNRs (dB) of the digital curves (drawn from the PER table)" + d)
    p.add_argument("--analog-snrs", type=finite_float, nargs="+", default=list(DEFAULT_ANALOG_SNRS),
                   help="SNRs (dB) of the analog curves (DeepJSCC, tokens)" + d)
    p.add_argument("--panels", nargs="+", default=list(PANELS), choices=list(PANELS), help="channels" + d)
    p.add_argument("--n-test", type=positive_int, default=2400,
                   help="test questions (the first of the 7 200; DeepJSCC's convolutions at 64x64 cost "
                   "about 20 ms per question here)" + d)
    p.add_argument("--flowgraph-snrs", type=finite_float, nargs="*", default=[6.0, 10.0, 15.0],
                   help="SNRs at which the digital baselines also run fully through the flowgraph" + d)
    p.add_argument("--flowgraph-questions", type=positive_int, default=1000,
                   help="questions per full-flowgraph point" + d)
    p.add_argument("--analog-flowgraph-snrs", type=finite_float, nargs="*", default=[0.0, 10.0, 20.0],
                   help="SNRs at which JTCC tokens run over the OFAT loopback flowgraph" + d)
    p.add_argument("--analog-flowgraph-questions", type=positive_int, default=1000, help="questions" + d)
    p.add_argument("--analog-flowgraph-systems", nargs="+", default=["tokens_jtcc"],
                   choices=["tokens_jtcc", "tokens_raw", "deepjscc_scenes"], help="analog systems" + d)
    p.add_argument("--flowgraph-only", action="store_true",
                   help="only the analog systems over the OFAT flowgraph, written to fig6_flowgraph.csv "
                   "(+ .json) beside fig6.csv; the figure is redrawn with both")
    p.add_argument("--checkpoints", default=str(AGENTS), help="agent checkpoints" + d)
    p.add_argument("--codec", default=str(SCENE_CHECKPOINT), help="scene DeepJSCC checkpoint" + d)
    p.add_argument("--per-table", default=str(ROOT / "host" / "semcom" / "digital" / "per_table.csv"),
                   help="measured PER table" + d)
    p.add_argument("--seed", type=int, default=0, help="loss draws and channel seed" + d)
    p.add_argument("--threads", type=positive_int, default=1, help="torch threads" + d)
    p.add_argument("--out", default=str(ROOT / "experiments" / "token_paper" / "output"),
                   help="output dir" + d)
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 36 questions on fresh scenes, AWGN at 0/10/20 dB, 6 questions through "
                   "the flowgraph at 20 dB")
    p.add_argument("--replot", action="store_true", help="only redraw fig6.png from --out's fig6.csv + .json")
    args = p.parse_args(argv)
    if args.replot:
        return replot(Path(args.out))
    if args.quick:
        args.snrs = args.analog_snrs = [0.0, 10.0, 20.0]
        args.flowgraph_snrs, args.flowgraph_questions = [20.0], 6
        if not args.flowgraph_only:
            args.analog_flowgraph_snrs = []
        args.panels = ["awgn"]
    from gnuradio import gr

    gr.logging().set_default_level(gr.log_levels.warn)
    if args.flowgraph_only:
        return flowgraph_only(args, argv)
    summary = run(args, argv)
    print(json.dumps(summary["checks"], indent=1, default=float))
    print(f"wrote {args.out}/fig6.csv, fig6.png, fig6.json in {summary['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
