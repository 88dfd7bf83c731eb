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
from semcom.ofat.frame import signed_bins

if TYPE_CHECKING:
    from semcom.ofat.channel_model import Impairments
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


def mirror_bins(fft_len: int) -> Tensor:
    """FFT bin of each bin's mirror image, ``(-k) mod fft_len``: (fft_len,) long."""
    return torch.remainder(-torch.arange(fft_len), fft_len)


def iq_mix_freq(grid: Tensor, k1: Tensor, k2: Tensor, dim: int) -> Tensor:
    """IQ imbalance in the frequency domain. In time, ``y = k1 x + k2 conj(x)`` per antenna
    (``channel_model.iq_coefficients``); with a unitary DFT, ``DFT(conj x)[k] = conj(X[-k])``, so
    ``Y[k] = k1 X[k] + k2 conj(X[-k])``: each subcarrier gets its mirror's conjugate as an image of relative
    power ``|k2|^2 / |k1|^2`` (the image rejection ratio of ``channel_model.image_rejection_db``).

    grid: (B, fft_len, ..., S) complex, every FFT bin in numpy order on dim 1; k1, k2: (n_ant,) complex,
    the antenna axis being ``dim``. Returns the same shape."""
    shape = [1] * grid.dim()
    shape[dim] = -1
    mirror = grid[:, mirror_bins(grid.shape[1]).to(grid.device)]
    return k1.reshape(shape) * grid + k2.reshape(shape) * mirror.conj()


def phase_noise_freq(grid: Tensor, phases: Tensor) -> Tensor:
    """A phase ``phi[b, s, n]`` on the n-th sample of the FFT window of symbol s, in the frequency domain:
    ``Y[k] = sum_m J[k - m] X[m]`` with ``J = fft(exp(j phi)) / fft_len`` (J[0]: the common phase error,
    the rest: inter-carrier interference). grid: (B, fft_len, Nr, S) complex, phases: (B, S, fft_len)
    real. Returns the same shape as grid."""
    n = grid.shape[1]
    spread = torch.fft.fft(torch.polar(torch.ones_like(phases), phases), dim=-1) / n  # (B, S, N)
    circulant = torch.remainder(torch.arange(n)[:, None] - torch.arange(n)[None, :], n)  # (k, m) -> k - m
    return torch.einsum("bskm,bmrs->bkrs", spread[..., circulant].to(grid.dtype), grid)


CSI_MODES = ("perfect", "ls", "denoised")


class OfatChannel(_SeededChannel):
    """The OFAT MIMO link in torch: values -> grid -> per-subcarrier ``Y = H X + N`` -> ZF/MMSE -> values.

    Each sample of the batch is one OFAT frame with its own channel draw (block fading per frame):

    1. ``semcom.ofat.frame.map_values_batch`` (``map_values`` for every frame at once) puts the sample's
       reals on the data resource elements, X (K, Nt, S) complex, normalised so every resource element
       carries unit total power over the Nt antennas. The scale is the quantised one the header
       carries; its gradient is that of the exact power normalisation (``scale * sqrt(E.detach() / E)``,
       ``E`` the payload energy), so the whole channel is differentiable w.r.t. the values.
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

    6. Front-end impairments (``impairments``, a ``semcom.ofat.channel_model.Impairments``; ``None``, the
       default, or one with every impairment off leaves steps 1-5 exactly as above). With any on, the
       frame's symbols are taken on the whole FFT grid (data, the layout's pilots with their CDD, nulls)
       and go through ``mimo_channel``'s order of impairments, each in the frequency domain and with the
       parameters and conventions of ``channel_model`` (``iq_coefficients``, ``wiener_phase``):

       * TX IQ, then H, ..., then RX IQ: ``Y[k] = k1 X[k] + k2 conj(X[-k])`` per antenna
         (:func:`iq_mix_freq`). Not corrected: the receiver model is ``ofat_rx`` with
         ``iq_correction=False``.
       * Phase noise: the Wiener phase (one oscillator for every receive antenna, as ``mimo_channel``)
         over each data symbol's FFT window -> its common phase error and the inter-carrier
         interference it causes (:func:`phase_noise_freq`). The receiver removes the common phase per
         symbol estimated from the pilots (``phase_tracking="per_symbol"``; the estimate is detached);
         the ICI stays.
       * Sampling-clock offset: the phase ramp ``-2 pi k e (m - m_train) symbol_len / fft_len`` on
         subcarrier k of symbol m (``e = ppm 1e-6``, ``m_train`` the centre of the training symbols),
         the part of an SFO that acts per resource element; the ICI of the drift (a few hundredths of a
         sample per frame) is left out. Not tracked: ``ofat_rx`` with ``sfo_tracking=False``.
       * AWGN on every bin (the data carriers' draw is the same as without impairments).
       * The receiver's CSI: the training symbols go through the same impairments (their images, the
         phase noise over them less the linear drift that the receiver's CFO refinement from repeated
         training symbols takes out, the SFO ramp), and their noiseless LS estimate's departure from the
         effective channel ``diag(k1_rx) H diag(k1_tx)`` is added to the ``csi`` mode's error before its
         denoising (``"perfect"``: the effective channel itself).
       * RX DC offset: ``sqrt(fft_len) d_r`` on bin 0 of every symbol (a constant in time), ``|d_r|``
         from ``dc_offset_dbc`` relative to unit power, random phase. OFAT nulls bin 0 and the RX IQ
         acts before the offset (as in ``mimo_channel``), so it reaches no data or pilot carrier: it
         costs nothing here (the front end's S&C detection problem it causes is not in this model).

    forward: z (B, *dims) real, ``prod(dims) <= layout.capacity`` -> (B, *dims) real.
    ``last_h`` / ``last_h_est`` keep the last draw, (B, K, Nr, Nt) complex (``last_h_est`` of the
    effective channel with impairments).
    """

    def __init__(self, snr_db: float, layout: OfatLayout | None = None, equalizer: str = "mmse",
                 csi: str = "denoised", denoise_taps: int | None = None, channel_kwargs: dict | None = None,
                 seed: int | None = None, device: str | torch.device = "cpu",
                 impairments: Impairments | None = None) -> None:
        from semcom.ofat import channel_model, frame

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
        self.impairments = impairments
        if impairments is not None:  # fail here on a per-antenna list of the wrong length
            imp, lay = impairments, self.layout
            channel_model.iq_coefficients(imp.tx_iq_gain_db, imp.tx_iq_phase_deg, lay.n_tx)
            channel_model.iq_coefficients(imp.rx_iq_gain_db, imp.rx_iq_phase_deg, lay.n_rx)
        self.last_h: Tensor | None = None
        self.last_h_est: Tensor | None = None
        self._projections: dict[int, Tensor] = {}  # tap count -> the denoising projection (_delay_projection)

    def reseed(self, seed: int | None) -> None:
        """Restart the random streams; the impairments (phase noise, DC phases) draw from a numpy stream
        of their own, seeded from this one, so turning them on leaves the channel and noise draws as
        they were."""
        super().reseed(seed)
        self._imp_rng = np.random.default_rng([self.generator.initial_seed(), 14])

    @property
    def impaired(self) -> bool:
        """Whether any impairment acts (else forward is the unimpaired model, bit for bit)."""
        imp = self.impairments
        return imp is not None and (imp.tx_iq or imp.rx_iq or imp.phase_noise_linewidth > 0
                                    or imp.sfo_ppm != 0 or imp.dc_offset_dbc is not None)

    def extra_repr(self) -> str:
        return (f"snr_db={self.snr_db}, equalizer={self.equalizer!r}, csi={self.csi!r}, "
                f"layout=({self.layout.describe()}), channel_kwargs={self.channel_kwargs}"
                + ("" if self.impairments is None else f", impairments={self.impairments}"))

    @property
    def ls_error_factor(self) -> float:
        """Per-entry LS channel-estimate error variance over sigma^2: ``Nt / n_train_symbols``."""
        return self.layout.n_tx / self.layout.n_train_symbols

    def _draw_full(self, rng: np.random.Generator, batch: int) -> tuple[np.ndarray, int]:
        """``batch`` frames' channels on every FFT bin, numpy (B, fft_len, Nr, Nt), and their FIR length
        (one for all: ``channel_kwargs`` fix it)."""
        from semcom.ofat import channel_model

        lay = self.layout
        taps = channel_model.draw_channels(rng, batch, lay.n_rx, lay.n_tx, **self.channel_kwargs)
        if taps.shape[-1] > lay.cp_len + 1:
            raise ValueError(f"channel FIR of {taps.shape[-1]} taps is longer than the cyclic prefix "
                             f"({lay.cp_len}): Y = H X per subcarrier would not hold")
        return channel_model.channel_frequency_response(taps, lay.fft_len), taps.shape[-1]

    def _draw(self, batch: int, noise_var: Tensor, cdtype: torch.dtype, device: torch.device
              ) -> tuple[Tensor, Tensor, Tensor]:
        """H and the receiver's estimate on the used subcarriers, each (B, Nu, Nr, Nt) complex, and H on
        every FFT bin (B, fft_len, Nr, Nt), for ``batch`` frames. With impairments the estimate is of the
        effective channel, its error including what they do to the training symbols (:meth:`_training`)."""
        lay = self.layout
        # numpy draws for channel_model, seeded from this module's torch generator (one random stream).
        rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=self.generator)))
        h_np, fir_len = self._draw_full(rng, batch)
        h_full = torch.as_tensor(h_np).to(device=device, dtype=cdtype)
        h_used = h_full[:, torch.as_tensor(lay.used_bins, device=device)]
        target, training_err = h_used, None
        if self.impaired:
            target, h_ls = self._training(h_full)
            training_err = h_ls - target
        if self.csi == "perfect":
            return h_used, target, h_full
        ls_var = (noise_var * self.ls_error_factor).reshape(batch, 1, 1, 1)
        err = complex_normal(tuple(h_used.shape), ls_var, self.generator, noise_var.dtype, device).to(cdtype)
        if training_err is not None:
            err = err + training_err
        if self.csi == "denoised":
            # Project the error over the used subcarriers onto the first `taps` delays (the projection
            # made once per tap count), every frame in one product.
            proj = self._delay_projection(self.denoise_taps or fir_len).to(device=device, dtype=cdtype)
            err = torch.einsum("uv,bvrt->burt", proj, err)
        return h_used, target + err, h_full

    def _delay_projection(self, taps: int) -> Tensor:
        """(Nu, Nu) complex128: the projection of a function of the used subcarriers onto the first
        ``taps`` delays (least squares), made once per tap count."""
        if taps not in self._projections:
            lay = self.layout
            basis = np.exp(-2j * np.pi * np.outer(lay.used_signed, np.arange(taps)) / lay.fft_len)  # (Nu, L)
            self._projections[taps] = torch.as_tensor(basis @ np.linalg.pinv(basis))
        return self._projections[taps]

    def _iq(self, side: str, n_ant: int, like: Tensor) -> tuple[Tensor, Tensor]:
        """channel_model.iq_coefficients of the ``side`` ("tx" / "rx") imbalance, as tensors like ``like``."""
        from semcom.ofat import channel_model

        imp = self.impairments
        # GNU Radio's iqbal_gen conventions, as mimo_channel: the transmit model's k1 is the conjugate.
        k1, k2 = channel_model.iq_coefficients(getattr(imp, f"{side}_iq_gain_db"),
                                               getattr(imp, f"{side}_iq_phase_deg"), n_ant,
                                               transmit=side == "tx")
        return (torch.as_tensor(k1).to(device=like.device, dtype=like.dtype),
                torch.as_tensor(k2).to(device=like.device, dtype=like.dtype))

    def _before_noise(self, xf: Tensor, h_full: Tensor, symbols: np.ndarray, training: bool = False
                      ) -> Tensor:
        """The impairments that act before the receiver's noise, in mimo_channel's order: TX IQ, H, phase
        noise, SFO. xf (B, fft_len, Nt, S): every FFT bin of the frame's consecutive symbols ``symbols``
        (S,). ``training``: the symbols are the training, over which the receiver refines its CFO from the
        phase step between repetitions (receiver step 2), which takes that much linear drift out of the
        phase noise. Returns (B, fft_len, Nr, S)."""
        from semcom.ofat import channel_model

        lay, imp = self.layout, self.impairments
        b, n, _, n_sym = xf.shape
        if imp.tx_iq:
            xf = iq_mix_freq(xf, *self._iq("tx", lay.n_tx, xf), dim=2)
        y = h_full @ xf
        if imp.phase_noise_linewidth > 0:
            # One Wiener path over the symbols (CPs included); each symbol sees it over its FFT window.
            path = channel_model.wiener_phase(self._imp_rng, b, n_sym * lay.symbol_len,
                                              imp.phase_noise_linewidth)
            window = lay.cp_len + lay.symbol_len * np.arange(n_sym)[:, None] + np.arange(n)[None, :]
            if training and n_sym > lay.n_tx:
                mean = path[:, window].mean(axis=-1)  # (B, S) each symbol's common phase
                step = (mean[:, lay.n_tx:] - mean[:, :-lay.n_tx]).mean(axis=1) / (lay.n_tx * lay.symbol_len)
                path = path - step[:, None] * np.arange(path.shape[1])[None, :]
            y = phase_noise_freq(y, torch.as_tensor(path[:, window], device=y.device))
        if imp.sfo_ppm != 0:
            signed = signed_bins(np.arange(n), n)
            since_train = symbols - (lay.n_preamble_symbols + (lay.n_train_symbols - 1) / 2)
            ramp = -2 * np.pi * np.outer(signed, since_train) * imp.sfo_ppm * 1e-6 * lay.symbol_len / n
            y = y * torch.as_tensor(np.exp(1j * ramp)).to(device=y.device, dtype=y.dtype)[None, :, None, :]
        return y

    def _rx_iq(self, y: Tensor) -> Tensor:
        return iq_mix_freq(y, *self._iq("rx", self.layout.n_rx, y), dim=2) if self.impairments.rx_iq else y

    def _training(self, h_full: Tensor) -> tuple[Tensor, Tensor]:
        """The effective channel diag(k1_rx) H diag(k1_tx) on the used subcarriers and the receiver's
        noiseless LS estimate of it from the layout's training symbols sent through the same impairments
        (their images, the phase noise and SFO over them), each (B, Nu, Nr, Nt)."""
        lay = self.layout
        used = torch.as_tensor(lay.used_bins, device=h_full.device)
        train = torch.as_tensor(lay.training_freq).to(device=h_full.device, dtype=h_full.dtype)  # (Nt, P, N)
        xf = train.permute(2, 0, 1).expand(h_full.shape[0], -1, -1, -1)  # (B, N, Nt, P)
        symbols = lay.n_preamble_symbols + np.arange(lay.n_train_symbols)
        y = self._rx_iq(self._before_noise(xf, h_full, symbols, training=True))  # (B, N, Nr, P)
        # LS: H[k]_{r,a} = Nt / n_train sum_p Y_r[k, p] conj(T_a[p, k]), T = c_k W[p, a] / sqrt(Nt).
        h_ls = torch.einsum("bkrp,apk->bkra", y[:, used], train[:, :, used].conj()) * self.ls_error_factor
        k1_tx, _ = self._iq("tx", lay.n_tx, h_full)
        k1_rx, _ = self._iq("rx", lay.n_rx, h_full)
        return k1_rx[:, None] * h_full[:, used] * k1_tx, h_ls

    def _impaired_link(self, x: Tensor, h_full: Tensor, h_est_used: Tensor, noise_data: Tensor,
                       var: Tensor) -> tuple[Tensor, Tensor]:
        """Step 6 of the class docstring: the data grid x (B, K, Nt, S) through the impaired link; h_est_used
        is the receiver's estimate of the effective channel (B, Nu, Nr, Nt). Returns what the receiver
        equalises: Y on the data carriers (B, K, Nr, S) after its common-phase correction, and its
        channel estimate there (B, K, Nr, Nt)."""
        lay, imp = self.layout, self.impairments
        b, _, n_tx, n_sym = x.shape
        n, dev, cd = lay.fft_len, x.device, x.dtype
        data_bins = torch.as_tensor(lay.data_bins, device=dev)
        pilot_bins = torch.as_tensor(lay.pilot_bins, device=dev)
        # The frame's pilots on its data symbols (they follow the header), with CDD: (P, Nt, S).
        pilots = lay.pilot_values(n_sym, lay.n_header_symbols).T  # (P, S)
        cdd = lay.cdd_phases(lay.pilot_bins).T  # (P, Nt)
        pilot_grid = torch.as_tensor(pilots[:, None, :] * cdd[:, :, None]).to(device=dev, dtype=cd)
        xf = x.new_zeros((b, n, n_tx, n_sym)).index_copy(1, data_bins, x)
        xf = xf.index_copy(1, pilot_bins, pilot_grid.expand(b, -1, -1, -1))
        y = self._before_noise(xf, h_full, lay.n_sync_symbols + np.arange(n_sym))
        others = torch.as_tensor(np.setdiff1d(np.arange(n), lay.data_bins), device=dev)
        noise_rest = complex_normal((b, len(others), lay.n_rx, n_sym), var.reshape(b, 1, 1, 1),
                                    self.generator, var.dtype, dev).to(cd)
        noise = y.new_zeros(y.shape).index_copy(1, data_bins, noise_data).index_copy(1, others, noise_rest)
        y = self._rx_iq(y + noise)
        if imp.dc_offset_dbc is not None:
            dc = imp.dc_amplitude() * np.exp(2j * np.pi * self._imp_rng.uniform(size=(b, 1, lay.n_rx, 1)))
            dc_bin = torch.as_tensor(np.sqrt(n) * dc).to(device=dev, dtype=cd).expand(-1, -1, -1, n_sym)
            y = y.index_add(1, torch.zeros(1, dtype=torch.long, device=dev), dc_bin)
        if imp.phase_noise_linewidth > 0:
            # Common phase per symbol from the pilots, as ofat_rx's per_symbol tracking.
            cdd_t = torch.as_tensor(cdd).to(device=dev, dtype=cd)
            g = (h_est_used[:, lay.pilot_index_in_used] * cdd_t[:, None]).sum(-1)  # (B, P, Nr)
            ref = g[..., None] * torch.as_tensor(pilots).to(device=dev, dtype=cd)[:, None]  # (B, P, Nr, S)
            z = (ref.conj() * y[:, pilot_bins]).sum(dim=(1, 2)).detach()  # (B, S)
            y = y * torch.polar(torch.ones_like(z.real), -z.angle())[:, None, None, :]
        return y[:, data_bins], h_est_used[:, torch.as_tensor(lay.data_index_in_used, device=dev)]

    def forward(self, z: Tensor, snr_db: float | Tensor | None = None) -> Tensor:
        from semcom.ofat import frame

        lay = self.layout
        if z.is_complex() or z.dim() < 2:
            raise ValueError(f"expected a real (B, ...) tensor, got {tuple(z.shape)} {z.dtype}")
        b = z.shape[0]
        flat = z.reshape(b, -1)
        var = self._noise_var(snr_db, b, flat)  # (B, 1)
        # each frame's quantised header scale (numpy, what the transmitter would put in the header)
        s_q = torch.tensor([frame.decode_scale(frame.encode_scale(frame.payload_scale(lay, v)))
                            for v in flat.detach().cpu().numpy()], dtype=flat.dtype, device=flat.device)
        energy = flat.pow(2).sum(dim=1)
        scales = s_q * torch.sqrt(energy.detach() / energy.clamp_min(1e-30))  # (B,)
        x = frame.map_values_batch(lay, flat, scales)  # (B, K, Nt, S)
        h_used, h_est_used, h_full = self._draw(b, var, x.dtype, x.device)
        data = torch.as_tensor(lay.data_index_in_used, device=x.device)
        h, h_est = h_used[:, data], h_est_used[:, data]
        noise = complex_normal((b, lay.n_data_carriers, lay.n_rx, x.shape[-1]), var.reshape(b, 1, 1, 1),
                               self.generator, var.dtype, x.device).to(x.dtype)
        if self.impaired:
            y, h_est = self._impaired_link(x, h_full, h_est_used, noise, var)
        else:
            y = h @ x + noise  # (B, K, Nr, S)
        self.last_h, self.last_h_est = h.detach(), h_est.detach()
        # The receiver's one dispatch: real-mode layouts get the widely linear (stacked real) detectors.
        x_hat = equalize.reconstruct(h_est, y, self.equalizer, var.expand(b, lay.n_data_carriers),
                                     signal_var=1.0 / lay.n_tx, real=lay.mode == "real")
        out = frame.unmap_values(lay, x_hat, flat.shape[1], scales)  # each frame its own scale
        return out.reshape(z.shape).to(z.dtype)


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
