"""The agents experiment's results read back: the issue's acceptance checks on the results table, the
figures (accuracy vs SNR per channel, accuracy vs number of tokens) and the per-family text table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from semcom.errors import UsageError
from semcom.results import plot_label, read_csv, save_figure

if TYPE_CHECKING:
    from .experiment import AgentsExperiment


def _pick(rows: list[dict[str, Any]], method: str, channel: str | None = None,
          snr: float | None = None) -> float | None:
    for r in rows:
        if r["method"] == method and (channel is None or r["channel"] == channel) and (
                snr is None or (r["snr_db"] != "" and float(r["snr_db"]) == snr)):
            return float(r["accuracy"])
    return None


def acceptance(rows: list[dict[str, Any]], snr: float = 15.0) -> dict[str, Any]:
    """The issue's checks on a results table (None where a method was not evaluated)."""
    gt = _pick(rows, "receiver_ground_truth")
    jt = _pick(rows, "tokens_jtcc", "awgn", snr)
    rt = _pick(rows, "tokens_raw", "awgn", snr)
    raw = _pick(rows, "raw_image_vqa")
    values = {r["method"]: float(r["channel_values"]) for r in rows if r["method"].startswith("tokens_")}
    out: dict[str, Any] = {"receiver_ground_truth_accuracy": gt,
                           "receiver_ground_truth_at_least_95": None if gt is None else gt >= 0.95,
                           f"tokens_jtcc_awgn_{snr:g}db": jt, f"tokens_raw_awgn_{snr:g}db": rt,
                           "raw_image_vqa": raw}
    if jt is not None and raw is not None:
        out["jtcc_at_least_raw_image_vqa"] = jt >= raw
    if {"tokens_raw", "tokens_jtcc"} <= set(values):
        ratio = values["tokens_raw"] / values["tokens_jtcc"]
        out["jtcc_compression_vs_raw_tokens"] = ratio
        if jt is not None and rt is not None:
            out["jtcc_8x_fewer_within_2_points"] = ratio >= 8 and jt >= rt - 0.02
    return out


def plot(path: Path, rows: list[dict[str, Any]], exp: AgentsExperiment) -> None:
    """Accuracy vs SNR, one panel per channel; methods without a channel as horizontal lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    channels = sorted({r["channel"] for r in rows if r["snr_db"] != ""})
    fig, axes = plt.subplots(1, max(len(channels), 1), figsize=(5.2 * max(len(channels), 1), 4.2),
                             squeeze=False)
    flat = [r for r in rows if r["snr_db"] == ""]
    for ax, ch in zip(axes[0], channels, strict=False):
        for method in dict.fromkeys(r["method"] for r in rows if r["channel"] == ch):
            pts = sorted((float(r["snr_db"]), 100 * float(r["accuracy"])) for r in rows
                         if r["method"] == method and r["channel"] == ch)
            vals = next(r["channel_values"] for r in rows if r["method"] == method)
            ax.plot(*zip(*pts, strict=True), "-o", label=f"{plot_label(method)} ({vals:g} values)")
        for i, r in enumerate(flat):
            if r["method"].startswith("tokens_"):
                continue
            ax.axhline(100 * float(r["accuracy"]), ls=["--", ":", "-."][i % 3], color=f"C{4 + i}",
                       label=f"{plot_label(r['method'])} ({plot_label(r['channel'])})")
        ax.set_xlabel("SNR (dB)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"{plot_label(ch)}: K = {exp.k_tokens} tokens, d = {exp.d}, JTCC m = {exp.jtcc_m}",
                     fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    save_figure(fig, path)


def plot_tokens(path: Path, rows: list[dict[str, Any]]) -> None:
    """Accuracy of the receiver given the first k ground-truth object tokens, k = 1..6, with the token
    pipelines' accuracy at K (ideal channel) marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = sorted((r["k_tokens"], 100 * r["accuracy"]) for r in rows
                 if r["method"] == "receiver_first_k_objects")
    if not pts:
        return
    fig, ax = plt.subplots(figsize=(5.2, 4.0))
    ax.plot(*zip(*pts, strict=True), "-o", label=plot_label("receiver_first_k_objects"))
    for r in rows:
        if r["method"].startswith("tokens_") and r["channel"] == "ideal":
            ax.plot([r["k_tokens"]], [100 * r["accuracy"]], "s",
                    label=f"{plot_label(r['method'])} ({plot_label('ideal')})")
    ax.set_xlabel("tokens k")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("accuracy vs number of tokens", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    save_figure(fig, path)


def per_family_table(rows: list[dict[str, Any]]) -> str:
    """A plain-text table of accuracy per family (for the command's output)."""
    fams = list(dict.fromkeys(k for r in rows for k in r if k.startswith("acc_")))
    head = f"{'method':26s} {'channel':18s} {'SNR':>5s} {'acc':>6s} " + " ".join(
        f"{f[4:][:9]:>9s}" for f in fams)
    lines = [head]
    for r in rows:
        snr = "" if r["snr_db"] == "" else f"{float(r['snr_db']):g}"
        lines.append(f"{r['method']:26s} {r['channel']:18s} {snr:>5s} {100 * float(r['accuracy']):6.2f} "
                     + " ".join(f"{100 * float(r[f]):9.1f}" if r.get(f, "") != "" else f"{'':>9s}"
                                for f in fams))
    return "\n".join(lines)


def replot(out_dir: str | Path) -> tuple[Path, Path]:
    """results.png and accuracy_vs_tokens.png again from ``out_dir``'s results.csv and summary.json."""
    from .experiment import AgentsExperiment

    out = Path(out_dir)
    missing = [n for n in ("results.csv", "summary.json") if not (out / n).is_file()]
    if missing:
        raise UsageError(f"--replot: no {' or '.join(missing)} in {out} (run semcom eval agents first)")
    rows = read_csv(out / "results.csv")
    exp = AgentsExperiment.from_dict(json.loads((out / "summary.json").read_text())["experiment"])
    plot(out / "results.png", [r for r in rows if r["method"] != "receiver_first_k_objects"], exp)
    plot_tokens(out / "accuracy_vs_tokens.png", rows)
    return out / "results.png", out / "accuracy_vs_tokens.png"
