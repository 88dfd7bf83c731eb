"""How close a learned channel is to the real one, on held-out captures.

* ``error_stats``: mean and variance of the error vector ``y - x`` per value, overall and on the REs
  whose expected equaliser noise is in the weakest / strongest quarter (where ZF/MMSE enhance the noise).
* ``mmd_test``: the kernel two-sample test (Gretton et al., JMLR 2012) with a Gaussian kernel (median
  heuristic bandwidth on the pooled sample) and a permutation p-value: does the joint distribution of
  (condition, x, y - x) of a generated RE differ from the real one?
* ``awgn_control``: the AWGN-only model of the same captures (``semcom.channels.AWGNChannel`` at the
  SNR that gives the captures' mean error power): the control that ignores the equaliser and the
  channel, so a test that does not separate it from the real channel has no power.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from semcom.adapt.captures import Captures
from semcom.adapt.cgan import CGANChannel
from semcom.channels import AWGNChannel

Tensor = torch.Tensor


def mmd_test(a: np.ndarray, b: np.ndarray, n_perm: int = 300, seed: int = 0,
             groups_a: np.ndarray | None = None, groups_b: np.ndarray | None = None) -> tuple[float, float]:
    """Unbiased MMD^2 of samples a (n, d) and b (m, d) and its permutation p-value.

    ``groups_a`` / ``groups_b`` (n,) / (m,): a cluster id per row (here: the frame an RE came from).
    REs of one frame share its channel, so they are not independent; the permutations then move whole
    clusters between the two samples, which keeps the test's level under that dependence.
    """
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"need two (n, d) samples of the same d, got {a.shape} and {b.shape}")
    n, m = len(a), len(b)
    ga = np.arange(n) if groups_a is None else np.asarray(groups_a)
    gb = np.arange(m) if groups_b is None else np.asarray(groups_b)
    if ga.shape != (n,) or gb.shape != (m,):
        raise ValueError("groups_a / groups_b need one id per row")
    _, cluster = np.unique(np.concatenate([ga, gb + (ga.max() + 1 if n else 0)]), return_inverse=True)
    n_clusters = int(cluster.max()) + 1
    n_a_clusters = len(np.unique(cluster[:n]))
    z = np.concatenate([a, b]).astype(np.float64)
    z = (z - z.mean(0)) / z.std(0).clip(1e-12)
    sq = np.sum(z**2, 1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * z @ z.T, 0.0)
    bw = np.median(d2[np.triu_indices(len(z), 1)])
    k = np.exp(-d2 / max(bw, 1e-12))
    np.fill_diagonal(k, 0.0)
    rng = np.random.default_rng(seed)
    # Column 0: the observed split; columns 1..: random relabellings of whole clusters (one product).
    lab = np.zeros((n + m, n_perm + 1))
    lab[:n, 0] = 1.0
    for j in range(1, n_perm + 1):
        in_a = np.zeros(n_clusters, bool)
        in_a[rng.permutation(n_clusters)[:n_a_clusters]] = True
        lab[:, j] = in_a[cluster]
    other = 1.0 - lab
    na, nb = lab.sum(0).clip(2), other.sum(0).clip(2)
    ka, kb = k @ lab, k @ other
    stats = ((lab * ka).sum(0) / (na * (na - 1)) + (other * kb).sum(0) / (nb * (nb - 1))
             - 2 * (other * ka).sum(0) / (na * nb))
    observed = stats[0]
    return float(observed), float((1 + np.sum(stats[1:] >= observed)) / (1 + n_perm))


def awgn_control(cap: Captures, seed: int = 0) -> AWGNChannel:
    """AWGN at the SNR whose noise equals the captures' mean error power per complex value."""
    d = cap.delivered
    err = float(np.mean((cap.y[d] - cap.x[d]) ** 2)) * 2  # complex symbol = two reals
    return AWGNChannel(-10 * np.log10(err), seed=seed)


def re_features(x: Tensor, y: Tensor, std: Tensor) -> np.ndarray:
    """The feature map the two-sample test compares per RE (the same for both samples, so the test stays
    valid): x and the error ``y - x`` in units of the std the receiver expects from its side information
    on that RE. The scaled error exposes a model that gets the noise level per subcarrier wrong (the
    AWGN control) or the MMSE shrinkage (its dependence on x) to a kernel test of moderate sample size."""
    return torch.cat([x, (y - x) / std], 1).numpy()


def fisher_combined(p_values: list[float]) -> float:
    """Fisher's combination of independent p-values (here: seeds x SNR steps) into one p-value."""
    from scipy.stats import chi2

    p = np.clip(np.asarray(p_values, float), 1e-300, 1.0)
    return float(chi2.sf(-2.0 * np.log(p).sum(), 2 * p.size))


@torch.no_grad()
def fidelity_rows(channel: CGANChannel, held_out: Captures, awgn: AWGNChannel, *, n_samples: int = 800,
                  n_perm: int = 300, seed: int = 0) -> dict[str, Any]:
    """Error statistics and two-sample tests of the cGAN and the AWGN control against ``held_out``.

    The held-out frames are split in two halves: the real sample is REs of the first half, the generated
    samples are REs of the second half with y replaced by the model's output for the same x and side
    information, so the two samples are independent; the permutations move whole frames.
    """
    cap = held_out.only_delivered()
    rows = channel.re_samples(cap)
    n = rows["x"].shape[0]
    gen = torch.Generator().manual_seed(seed)
    half = n // 2
    eps = torch.randn(n, channel.generator_net.noise_dim, generator=gen)
    y_gan = channel.generator_net(rows["x"], rows["a"], rows["std"], rows["cond"], eps)
    awgn.reseed(seed)
    y_awgn = awgn(rows["x"])
    nt = channel.layout.n_tx
    pick_a = torch.randperm(half, generator=gen)[:n_samples]
    pick_b = half + torch.randperm(n - half, generator=gen)[:n_samples]
    frame = torch.arange(n) // (n // cap.n_frames)  # the frame each RE row came from
    out: dict[str, Any] = {"n_frames": cap.n_frames, "n_re": n, "n_test_samples": int(len(pick_a))}
    real_feat = re_features(rows["x"][pick_a], rows["y"][pick_a], rows["std"][pick_a])
    # Weak / strong REs by the expected equaliser noise (the mean log variance of the RE's streams).
    strength = rows["cond"][:, 2 * nt * nt: 2 * nt * nt + nt].mean(1)
    weak = strength >= torch.quantile(strength, 0.75)
    strong = strength <= torch.quantile(strength, 0.25)
    for name, y in (("real", rows["y"]), ("cgan", y_gan), ("awgn", y_awgn)):
        e = (y - rows["x"]).numpy()
        out[f"{name}_err_mean"] = float(e.mean())
        out[f"{name}_err_var_db"] = float(10 * np.log10(e.var()))
        out[f"{name}_err_var_weak_db"] = float(10 * np.log10(e[weak.numpy()].var()))
        out[f"{name}_err_var_strong_db"] = float(10 * np.log10(e[strong.numpy()].var()))
        out[f"{name}_err_kurtosis"] = float(np.mean(e**4) / np.mean(e**2) ** 2)
        if name != "real":
            feat = re_features(rows["x"][pick_b], y[pick_b], rows["std"][pick_b])
            mmd, p = mmd_test(real_feat, feat, n_perm=n_perm, seed=seed, groups_a=frame[pick_a].numpy(),
                              groups_b=frame[pick_b].numpy())
            out[f"{name}_mmd2"] = mmd
            out[f"{name}_mmd_p"] = p
    return out
