"""Differentiable channels in PyTorch for training and evaluating semantic codecs.

Every channel is an ``nn.Module`` that takes the *real-valued* tensor a codec produces, shape
``(B, *dims)`` with an even number of values per sample, and returns what the receiver gets, with the same
shape and dtype. Adjacent pairs of reals are the real and imaginary parts of one complex baseband symbol:
``z.reshape(B, n, 2)`` -> ``n`` complex channel uses per sample.

Conventions (the project's, also used by the OFAT frame module):

* The codec has already normalised the power: one complex symbol has unit *average* power
  (``mean |x|^2 = 1`` per sample). The channels do not renormalise; they scale the noise to the nominal
  unit power.
* SNR = total transmit power over the noise power per receive antenna per resource element. For the
  single-antenna channels here this is ``1 / sigma^2`` with complex noise ``CN(0, sigma^2)`` (each real
  component has variance ``sigma^2 / 2``).
* ``snr_db`` is a settable attribute; ``forward(z, snr_db=...)`` overrides it per call, and may be a tensor
  of shape ``(B,)`` (one SNR per sample, e.g. random-SNR training).
* Randomness comes only from the module's ``torch.Generator`` (``seed`` at construction, ``reseed()``
  later), so a run is reproducible. Noise and fading draws carry no gradient; the gradient w.r.t. the
  input flows through every operation applied to it.

The OFAT MIMO channel (frame layout + per-subcarrier MIMO + ZF/MMSE) lives in ``OfatChannel`` below; it
reuses ``semcom.ofat.frame`` and ``semcom.ofat.equalize`` rather than re-deriving either.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from semcom.ofat import equalize

if TYPE_CHECKING:
    from semcom.ofat.frame import OfatLayout

Tensor = torch.Tensor

EQUALIZERS = ("zf", "mmse", "none")


def snr_db_to_noise_var(snr_db: float | Tensor) -> float | Tensor:
    """Complex noise variance ``sigma^2 = 10^(-snr_db/10)`` for unit transmit power."""
    if isinstance(snr_db, Tensor):
        return torch.pow(10.0, -snr_db / 10.0)
    return 10.0 ** (-float(snr_db) / 10.0)


def real_to_complex(z: Tensor) -> tuple[Tensor, torch.Size]:
    """Pair adjacent reals into complex symbols.

    z: (B, *dims) real, ``prod(dims)`` even.  Returns ``(x, shape)`` with x: (B, n) complex,
    ``n = prod(dims) / 2``, and the original shape for ``complex_to_real``.
    """
    if z.is_complex():
        raise TypeError("channels take real-valued codec outputs (pairs of reals = one complex symbol)")
    if z.dim() < 2:
        raise ValueError(f"expected (B, ...) with a batch dimension, got shape {tuple(z.shape)}")
    flat = z.reshape(z.shape[0], -1)
    if flat.shape[1] % 2:
        raise ValueError(f"need an even number of reals per sample, got {flat.shape[1]}")
    x = torch.view_as_complex(flat.reshape(z.shape[0], -1, 2).contiguous())
    return x, z.shape


def complex_to_real(x: Tensor, shape: torch.Size) -> Tensor:
    """Inverse of ``real_to_complex``: x (B, n) complex -> real tensor of ``shape`` (B, *dims)."""
    return torch.view_as_real(x).reshape(shape)


def complex_normal(shape: tuple[int, ...], var: float | Tensor, generator: torch.Generator,
                   dtype: torch.dtype, device: torch.device) -> Tensor:
    """``CN(0, var)`` samples of ``shape``: real and imaginary parts each ``N(0, var/2)``.

    ``var`` is a float or a tensor broadcastable to ``shape``.
    """
    pair = torch.randn((*shape, 2), generator=generator, dtype=dtype, device=device)
    c = torch.view_as_complex(pair)
    std = torch.sqrt(var / 2.0) if isinstance(var, Tensor) else math.sqrt(var / 2.0)
    return c * std


class _SeededChannel(nn.Module):
    """Common base: SNR handling and a private generator (CPU by default)."""

    def __init__(self, snr_db: float, seed: int | None = None, device: str | torch.device = "cpu") -> None:
        super().__init__()
        self.snr_db = float(snr_db)
        self.generator = torch.Generator(device=device)
        self.reseed(seed)

    def reseed(self, seed: int | None) -> None:
        """Restart the random stream (``None``: a fresh non-deterministic seed)."""
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(int(seed))

    def _noise_var(self, snr_db: float | Tensor | None, batch: int, ref: Tensor) -> Tensor:
        """Noise variance per sample, shape (B, 1), on ``ref``'s device/dtype (real)."""
        s = self.snr_db if snr_db is None else snr_db
        real_dtype = ref.real.dtype if ref.is_complex() else ref.dtype
        s_t = torch.as_tensor(s, dtype=real_dtype, device=ref.device)
        if s_t.dim() == 0:
            s_t = s_t.expand(batch)
        if s_t.shape != (batch,):
            raise ValueError(f"snr_db must be a scalar or shape ({batch},), got {tuple(s_t.shape)}")
        return snr_db_to_noise_var(s_t).reshape(batch, 1)

    def extra_repr(self) -> str:
        return f"snr_db={self.snr_db}"


class AWGNChannel(_SeededChannel):
    """Complex AWGN: ``y = x + n``, ``n ~ CN(0, 10^(-SNR/10))``.

    forward: z (B, *dims) real, unit average complex-symbol power -> (B, *dims) real (the noisy symbols).
    """

    def forward(self, z: Tensor, snr_db: float | Tensor | None = None) -> Tensor:
        x, shape = real_to_complex(z)
        var = self._noise_var(snr_db, x.shape[0], x)
        n = complex_normal(tuple(x.shape), var, self.generator, var.dtype, x.device)
        return complex_to_real(x + n, shape)


def _estimate_flat(h: Tensor, noise_var: Tensor, n_pilots: int | None, generator: torch.Generator) -> Tensor:
    """LS estimate of flat gains from ``n_pilots`` unit-power pilots: ``h + e``, ``e ~ CN(0, var/n_pilots)``.

    h: (B, m) complex, noise_var: (B, 1).  Returns h_est (B, m); ``n_pilots=None`` is perfect CSI.
    """
    if n_pilots is None:
        return h
    e = complex_normal(tuple(h.shape), noise_var / n_pilots, generator, noise_var.dtype, h.device)
    return h + e


class RayleighBlockChannel(_SeededChannel):
    """Flat Rayleigh block fading: ``y_i = h_b x_i + n_i`` with ``h_b ~ CN(0, 1)`` constant over a block.

    A block is ``coherence`` consecutive complex symbols of one sample (``None``: the whole sample, i.e.
    slow fading over one codeword as in Bourtsoulatze et al.). The receiver knows the gain perfectly
    (``n_pilots=None``) or from an LS estimate on ``n_pilots`` unit-power pilots per block
    (``h_est = h + e``, ``e ~ CN(0, sigma^2/n_pilots)``), and equalises:

    * ``"zf"``:   ``x_hat = y / h_est``  (heavy-tailed noise in deep fades),
    * ``"mmse"``: ``x_hat = conj(h_est) y / (|h_est|^2 + sigma^2)`` (unit-power symbols; the receiver
      uses its noise variance, as the OFAT receiver does),
    * ``"none"``: return ``y`` and let the decoder cope (no CSI at all).

    ZF/MMSE are the project's shared ``semcom.ofat.equalize`` functions with Nr = Nt = 1.

    forward: z (B, *dims) real -> (B, *dims) real.
    """

    def __init__(self, snr_db: float, equalizer: str = "mmse", n_pilots: int | None = None,
                 coherence: int | None = None, seed: int | None = None,
                 device: str | torch.device = "cpu") -> None:
        super().__init__(snr_db, seed, device)
        if equalizer not in EQUALIZERS:
            raise ValueError(f"equalizer must be one of {EQUALIZERS}, got {equalizer!r}")
        if n_pilots is not None and n_pilots < 1:
            raise ValueError("n_pilots must be >= 1 or None (perfect CSI)")
        if coherence is not None and coherence < 1:
            raise ValueError("coherence must be >= 1 symbols or None (one block per sample)")
        self.equalizer = equalizer
        self.n_pilots = n_pilots
        self.coherence = coherence
        self.last_gain: Tensor | None = None  # (B, n) complex: h and the receiver's estimate, for tests
        self.last_gain_est: Tensor | None = None

    def forward(self, z: Tensor, snr_db: float | Tensor | None = None) -> Tensor:
        x, shape = real_to_complex(z)
        b, n = x.shape
        var = self._noise_var(snr_db, b, x)
        block = n if self.coherence is None else self.coherence
        n_blocks = -(-n // block)
        hb = complex_normal((b, n_blocks), 1.0, self.generator, var.dtype, x.device)
        hb_est = _estimate_flat(hb, var, self.n_pilots, self.generator)
        h = hb.repeat_interleave(block, dim=1)[:, :n]
        h_est = hb_est.repeat_interleave(block, dim=1)[:, :n]
        self.last_gain, self.last_gain_est = h.detach(), h_est.detach()
        y = h * x + complex_normal((b, n), var, self.generator, var.dtype, x.device)
        if self.equalizer != "none":
            # (B, n) scalars as a batch of 1x1 systems for the shared equaliser.
            h11, y11 = h_est[..., None, None], y[..., None, None]
            if self.equalizer == "zf":
                y = equalize.zf(h11, y11)[..., 0, 0]
            else:
                y = equalize.mmse(h11, y11, var.expand(b, n), 1.0)[..., 0, 0]
        return complex_to_real(y, shape)

    def extra_repr(self) -> str:
        return (f"snr_db={self.snr_db}, equalizer={self.equalizer!r}, n_pilots={self.n_pilots}, "
                f"coherence={self.coherence}")


CSI_MODES = ("perfect", "ls", "denoised")


class OfatChannel(_SeededChannel):
    """The OFAT MIMO link in torch: values -> grid -> per-subcarrier ``Y = H X + N`` -> ZF/MMSE -> values.

    Each sample of the batch is one OFAT frame with its own channel draw (block fading per frame):

    1. ``semcom.ofat.frame.map_values`` puts the sample's reals on the data resource elements,
       X (K, Nt, S) complex, normalised so every resource element carries unit total power over the Nt
       antennas. The scale is the quantised one the header carries; its gradient is that of the exact
       power normalisation (``scale * sqrt(E.detach() / E)``, ``E`` the payload energy), so the whole
       channel is differentiable w.r.t. the values.
    2. H (K, Nr, Nt): ``semcom.ofat.channel_model.draw_channel`` (i.i.d. Rayleigh multipath taps,
       ``channel_kwargs`` passed through, unit average power per antenna pair) ->
       ``channel_frequency_response`` at the layout's data subcarriers.
    3. ``Y = H X + N``, N ~ CN(0, sigma^2) per receive antenna and resource element,
       ``sigma^2 = 10^(-SNR/10)`` (SNR = total transmit power / noise power per receive antenna).
    4. The receiver's channel knowledge, ``csi``:

       * ``"perfect"``: H itself.
       * ``"ls"``: the least-squares estimate from the layout's orthogonal training, without denoising:
         ``H + E`` with E i.i.d. CN(0, sigma^2 Nt / n_train) per entry and subcarrier. (Training symbol
         p sends ``c_k W[p, a] / sqrt(Nt)`` from antenna a, so each LS entry averages ``n_train`` noise
         terms of variance ``Nt sigma^2``; ``n_train = layout.n_train_symbols = Nt * train_reps``.)
       * ``"denoised"`` (default): that LS error projected, over the used subcarriers, onto the delay
         taps the channel occupies (``denoise_taps``, default the drawn FIR length), as the OFAT
         receiver's tap-selection denoiser does when it finds the support: error variance
         ``~ sigma^2 Nt / n_train * taps / n_used``, correlated across subcarriers. The real receiver
         picks its taps against the noise floor (data dependent, may miss weak taps at low SNR); this is
         the model of that step, exposed through ``denoise_taps``.
    5. ``semcom.ofat.equalize.reconstruct`` ZF / MMSE, widely linear in real mode
       (MMSE with the receiver's ``sigma^2`` and per-antenna
       signal energy 1/Nt) -> X_hat (K, Nt, S) -> ``unmap_values`` -> the sample's reals.

    forward: z (B, *dims) real, ``prod(dims) <= layout.capacity`` -> (B, *dims) real.
    ``last_h`` / ``last_h_est`` keep the last draw, (B, K, Nr, Nt) complex.
    """

    def __init__(self, snr_db: float, layout: OfatLayout | None = None, equalizer: str = "mmse",
                 csi: str = "denoised", denoise_taps: int | None = None, channel_kwargs: dict | None = None,
                 seed: int | None = None, device: str | torch.device = "cpu") -> None:
        from semcom.ofat import frame

        super().__init__(snr_db, seed, device)
        if equalizer not in ("zf", "mmse"):
            raise ValueError(f"equalizer must be 'zf' or 'mmse', got {equalizer!r}")
        if csi not in CSI_MODES:
            raise ValueError(f"csi must be one of {CSI_MODES}, got {csi!r}")
        self.layout = layout if layout is not None else frame.make_layout("wifi64")
        # Real mode detects on the stacked real system, which separates up to 2 Nr real streams.
        streams = self.layout.n_rx * (2 if self.layout.mode == "real" else 1)
        if equalizer == "zf" and streams < self.layout.n_tx:
            raise ValueError(f"ZF needs n_rx >= n_tx ({'2 n_rx' if self.layout.mode == 'real' else 'n_rx'} = "
                             f"{streams} < {self.layout.n_tx} here)")
        self.equalizer = equalizer
        self.csi = csi
        self.denoise_taps = denoise_taps
        self.channel_kwargs = dict(channel_kwargs or {})
        self.last_h: Tensor | None = None
        self.last_h_est: Tensor | None = None

    def extra_repr(self) -> str:
        return (f"snr_db={self.snr_db}, equalizer={self.equalizer!r}, csi={self.csi!r}, "
                f"layout=({self.layout.describe()}), channel_kwargs={self.channel_kwargs}")

    @property
    def ls_error_factor(self) -> float:
        """Per-entry LS channel-estimate error variance over sigma^2: ``Nt / n_train_symbols``."""
        return self.layout.n_tx / self.layout.n_train_symbols

    def _draw_used(self, rng: np.random.Generator) -> tuple[np.ndarray, int]:
        """One frame's channel on the used subcarriers, numpy (Nu, Nr, Nt), and its FIR length."""
        from semcom.ofat import channel_model

        lay = self.layout
        taps = channel_model.draw_channel(rng, lay.n_rx, lay.n_tx, **self.channel_kwargs)
        if taps.shape[-1] > lay.cp_len + 1:
            raise ValueError(f"channel FIR of {taps.shape[-1]} taps is longer than the cyclic prefix "
                             f"({lay.cp_len}): Y = H X per subcarrier would not hold")
        return channel_model.channel_frequency_response(taps, lay.fft_len)[lay.used_bins], taps.shape[-1]

    def _draw(self, batch: int, noise_var: Tensor, cdtype: torch.dtype, device: torch.device
              ) -> tuple[Tensor, Tensor]:
        """H and the receiver's estimate for ``batch`` frames, each (B, K, Nr, Nt) complex."""
        lay = self.layout
        # numpy draws for channel_model, seeded from this module's torch generator (one random stream).
        rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=self.generator)))
        draws = [self._draw_used(rng) for _ in range(batch)]
        h_used = torch.as_tensor(np.stack([d[0] for d in draws])).to(device=device, dtype=cdtype)
        data = torch.as_tensor(lay.data_index_in_used, device=device)
        h = h_used[:, data]
        if self.csi == "perfect":
            return h, h
        ls_var = (noise_var * self.ls_error_factor).reshape(batch, 1, 1, 1)
        err = complex_normal(tuple(h_used.shape), ls_var, self.generator, noise_var.dtype, device).to(cdtype)
        if self.csi == "denoised":
            # Project the error over the used subcarriers onto the first `taps` delays (per frame).
            signed = np.where(lay.used_bins >= lay.fft_len // 2, lay.used_bins - lay.fft_len, lay.used_bins)
            projected = []
            for b, (_, fir_len) in enumerate(draws):
                taps = self.denoise_taps or fir_len
                basis = np.exp(-2j * np.pi * np.outer(signed, np.arange(taps)) / lay.fft_len)  # (Nu, taps)
                proj = torch.as_tensor(basis @ np.linalg.pinv(basis)).to(device=device, dtype=cdtype)
                projected.append(torch.einsum("uv,vrt->urt", proj, err[b]))
            err = torch.stack(projected)
        return h, h + err[:, data]

    def forward(self, z: Tensor, snr_db: float | Tensor | None = None) -> Tensor:
        from semcom.ofat import frame

        lay = self.layout
        if z.is_complex() or z.dim() < 2:
            raise ValueError(f"expected a real (B, ...) tensor, got {tuple(z.shape)} {z.dtype}")
        b = z.shape[0]
        flat = z.reshape(b, -1)
        var = self._noise_var(snr_db, b, flat)  # (B, 1)
        grids, scales = [], []
        for v in flat:
            energy = v.pow(2).sum()
            s_q = frame.map_values(lay, v.detach())[1]  # the quantised header scale
            scale = s_q * torch.sqrt(energy.detach() / energy.clamp_min(1e-30))
            x, _ = frame.map_values(lay, v, scale=scale)
            grids.append(x)
            scales.append(scale)
        x = torch.stack(grids)  # (B, K, Nt, S)
        h, h_est = self._draw(b, var, x.dtype, x.device)
        self.last_h, self.last_h_est = h.detach(), h_est.detach()
        noise = complex_normal((b, lay.n_data_carriers, lay.n_rx, x.shape[-1]), var.reshape(b, 1, 1, 1),
                               self.generator, var.dtype, x.device).to(x.dtype)
        y = h @ x + noise  # (B, K, Nr, S)
        # The receiver's one dispatch: real-mode layouts get the widely linear (stacked real) detectors.
        x_hat = equalize.reconstruct(h_est, y, self.equalizer, var.expand(b, lay.n_data_carriers),
                                     signal_var=1.0 / lay.n_tx, real=lay.mode == "real")
        out = [frame.unmap_values(lay, x_hat[i], flat.shape[1], scales[i]) for i in range(b)]
        return torch.stack(out).reshape(z.shape).to(z.dtype)


def make_channel(name: str, snr_db: float = 10.0, seed: int | None = None, **kwargs) -> nn.Module:
    """Channel by name: ``"awgn"``, ``"rayleigh"`` (RayleighBlockChannel) or ``"ofat"`` (OfatChannel)."""
    classes = {"awgn": AWGNChannel, "rayleigh": RayleighBlockChannel, "ofat": OfatChannel}
    if name not in classes:
        raise ValueError(f"unknown channel {name!r}; choose from {sorted(classes)}")
    return classes[name](snr_db, seed=seed, **kwargs)


# Channels the experiments are evaluated over, by name: name -> (make_channel name, kwargs). OFAT is the
# default wifi64 layout (2 transmit, 4 receive antennas), 3-tap multipath and the receiver's LS estimate.
NAMED_CHANNELS: dict[str, tuple[str, dict]] = {
    "awgn": ("awgn", {}),
    "rayleigh_zf_ls": ("rayleigh", {"equalizer": "zf", "n_pilots": 4}),
    "rayleigh_mmse_ls": ("rayleigh", {"equalizer": "mmse", "n_pilots": 4}),
    "ofat_2x4_mmse_ls": ("ofat", {"equalizer": "mmse", "csi": "denoised"}),
    "ofat_2x4_zf_ls": ("ofat", {"equalizer": "zf", "csi": "denoised"}),
}


def named_channel(name: str, snr_db: float = 10.0, seed: int | None = None) -> nn.Module:
    """A channel of ``NAMED_CHANNELS`` by name."""
    if name not in NAMED_CHANNELS:
        raise ValueError(f"unknown channel {name!r}; choose from {sorted(NAMED_CHANNELS)}")
    kind, kwargs = NAMED_CHANNELS[name]
    return make_channel(kind, snr_db, seed=seed, **kwargs)
