"""MIMO multipath channel realisations (numpy only: no GNU Radio, no torch).

One realisation is a time-domain FIR per (receive, transmit) antenna pair, ``taps`` of shape
``(n_rx, n_tx, L)`` complex, applied as

    y_r[n] = exp(j(phi0 + 2 pi cfo (n - n0))) * sum_t sum_k taps[r, t, k] x_t[n - int_delay - k] + w_r[n]

by the GNU Radio block ``gnuradio.semcom.mimo_channel`` (and, later, by the differentiable torch channel).
It is built from:

* **Multipath**: ``n_taps`` symbol-spaced taps with an exponential power-delay profile
  ``p_l ∝ exp(-l / decay)`` (``decay`` in samples; ``inf`` gives a uniform profile), normalised so that
  ``sum_l p_l = 1``. Every tap of every antenna pair is an independent CN(0, p_l) draw (i.i.d. Rayleigh).
* **Rician K-factor** (linear, not dB) on the first tap only: ``h_0 = sqrt(p_0) (sqrt(K/(K+1)) A +
  sqrt(1/(K+1)) W)``. The line-of-sight matrix ``A`` has unit-modulus entries. ``los="ula"`` (default):
  ``A = exp(j phi) a_rx(theta_rx) a_tx(theta_tx)^H`` with half-wavelength uniform linear arrays,
  ``a(theta)_n = exp(j pi n sin theta)``, angles uniform in [-pi/2, pi/2) and ``phi`` uniform in
  [0, 2 pi), all drawn per realisation. ``los="ones"``: ``A`` is the all-ones matrix (deterministic, so
  ``E[h_0] = sqrt(p_0 K/(K+1))``).
* **Kronecker spatial correlation** of the scattered (Rayleigh) part with the exponential model
  ``R[i, j] = rho^(j-i)`` for ``j >= i`` (Hermitian), separately for the receive (``corr_rx``) and
  transmit (``corr_tx``) arrays: ``W = R_rx^(1/2) G (R_tx^(1/2))^T``, ``G`` i.i.d. CN(0, 1), so that
  ``E[W_it W_jt^*] = R_rx[i, j]`` and ``E[W_rs W_rt^*] = R_tx[s, t]``. ``|rho| <= 1``.
* **Fractional delay**: a short (``fd_len`` = 8 taps by default) Kaiser-windowed sinc centred at
  ``(fd_len - 1) // 2 + frac`` samples, ``frac`` in [0, 1), normalised to unit energy. The multipath taps
  are convolved with it, so ``L = n_taps + fd_len - 1``. Without a fractional delay no filter is applied
  and ``L = n_taps``.
* **Integer delay**: ``int_delay`` whole samples, returned separately in :class:`Realisation` (the block
  applies it as a buffer offset); :func:`draw_channel` and :attr:`Realisation.full_taps` prepend it as
  leading zeros.

Power convention: the *average* total power of each (rx, tx) pair's FIR is exactly 1,
``E[sum_k |taps[r, t, k]|^2] = 1`` (the taps are independent and zero mean except the LOS part of tap 0,
whose power is kept at ``p_0``; the fractional-delay filter has unit energy). So a total transmit power
``P`` spread over the ``n_tx`` antennas with independent signals arrives, on average, as ``P`` at each
receive antenna.

Frequency response on OFDM bins: ``H[k] = sum_l taps[..., l] exp(-j 2 pi k l / fft_len)`` (numpy FFT bin
order), see :func:`channel_frequency_response`. With a unitary FFT at both ends and a cyclic prefix at
least as long as the FIR (including ``int_delay`` relative to the receiver's timing), ``Y[k] = H[k] X[k]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FD_LEN = 8
"""Default length of the fractional-delay FIR (taps)."""
FD_KAISER_BETA = 2.0
"""Kaiser window shape of the fractional-delay sinc: <= 1.3 dB magnitude ripple and <= 0.05 rad phase
error up to |f| = 0.41 cycles/sample with 8 taps (and <= 1 dB / 0.03 rad up to |f| = 0.35)."""
LOS_MODELS = ("ula", "ones")


def exponential_pdp(n_taps: int, decay: float) -> np.ndarray:
    """Exponential power-delay profile ``p_l ∝ exp(-l / decay)``, ``l = 0..n_taps-1``; shape (n_taps,), sum 1.

    ``decay`` is the e-folding delay in samples (> 0); ``np.inf`` gives equal-power taps.
    """
    if n_taps < 1:
        raise ValueError(f"n_taps must be >= 1, got {n_taps}")
    if not decay > 0:
        raise ValueError(f"decay must be > 0 samples, got {decay}")
    p = np.exp(-np.arange(n_taps) / decay)
    return p / p.sum()


def exponential_correlation(n: int, rho: complex) -> np.ndarray:
    """Exponential correlation matrix, shape (n, n): ``R[i, j] = rho^(j-i)`` for ``j >= i``, Hermitian."""
    if abs(rho) > 1:
        raise ValueError(f"correlation coefficient must satisfy |rho| <= 1, got {rho}")
    d = np.arange(n)[None, :] - np.arange(n)[:, None]
    upper = np.power(complex(rho), np.abs(d))
    return np.where(d >= 0, upper, np.conj(upper))


def hermitian_sqrt(r: np.ndarray) -> np.ndarray:
    """Hermitian positive semi-definite square root ``S`` with ``S @ S = r``; works for singular ``r``."""
    w, v = np.linalg.eigh(r)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.conj().T


def ula_steering(n: int, theta: float) -> np.ndarray:
    """Half-wavelength ULA steering vector ``exp(j pi n sin theta)``, shape (n,)."""
    return np.exp(1j * np.pi * np.arange(n) * np.sin(theta))


def fractional_delay_fir(frac: float, length: int = FD_LEN, beta: float = FD_KAISER_BETA) -> np.ndarray:
    """Kaiser-windowed sinc delaying by ``(length - 1) // 2 + frac`` samples; shape (length,), unit energy.

    ``frac`` in [0, 1). The window is evaluated at the fractional offsets, so the filter stays centred on
    the delayed pulse; ``frac = 0`` gives a pure delta at ``(length - 1) // 2``.
    """
    return fractional_delay_firs(np.array([frac], float), length, beta)[0]


def fractional_delay_firs(fracs: np.ndarray, length: int = FD_LEN, beta: float = FD_KAISER_BETA
                          ) -> np.ndarray:
    """:func:`fractional_delay_fir` of each of ``fracs`` (k,) at once: shape (k, length).

    The arithmetic is elementwise per filter (and each norm is ``sqrt(h @ h)``, as ``np.linalg.norm``
    computes it), so every row is what the filter alone gives; one ``np.i0`` call costs ~50 us whatever
    its size, which made these filters most of a per-frame channel redraw (``ChannelSpec.draw_many``).
    """
    fracs = np.asarray(fracs, float)
    bad = fracs[~((fracs >= 0.0) & (fracs < 1.0))]
    if bad.size:
        raise ValueError(f"frac must be in [0, 1), got {bad[0]}")
    if length < 2:
        raise ValueError(f"fractional-delay length must be >= 2, got {length}")
    t = np.arange(length) - ((length - 1) // 2 + fracs[:, None])
    window = np.i0(beta * np.sqrt(np.clip(1.0 - (t / (length / 2)) ** 2, 0.0, None))) / np.i0(beta)
    h = np.sinc(t) * window
    norms = np.sqrt([row.dot(row) for row in h])
    return h / norms[:, None]


def fir_length(n_taps: int, frac_delay: bool, fd_len: int = FD_LEN) -> int:
    """FIR length ``L`` of a realisation without its integer delay: ``n_taps (+ fd_len - 1)``."""
    return n_taps + (fd_len - 1 if frac_delay else 0)


def fd_bulk_delay(fd_len: int = FD_LEN) -> int:
    """Whole-sample delay the fractional-delay FIR adds in front of its fractional part."""
    return (fd_len - 1) // 2


def convolve_taps(h: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Full linear convolution of every FIR in ``h`` (..., L) with ``f`` (F,) -> (..., L + F - 1).

    ``f`` may also be one filter per index of ``h``'s first axis: ``f`` (B, F) with ``h`` (B, ..., L).
    """
    f = np.asarray(f)
    out = np.zeros((*h.shape[:-1], h.shape[-1] + f.shape[-1] - 1), dtype=np.result_type(h, f))
    per_item = (1,) * (h.ndim - f.ndim + 1)  # f[..., i] broadcast over h's other axes
    for i in range(f.shape[-1]):  # F <= 8 shifts, each vectorised over all antenna pairs (and filters)
        out[..., i:i + h.shape[-1]] += f[..., i].reshape(f.shape[:-1] + per_item) * h
    return out


def draw_multipath(rng: np.random.Generator, n_rx: int, n_tx: int, *, n_taps: int = 3, decay: float = 1.0,
                   rician_k: float = 0.0, corr_tx: complex = 0.0, corr_rx: complex = 0.0,
                   los: str = "ula") -> np.ndarray:
    """Symbol-spaced multipath taps, shape (n_rx, n_tx, n_taps) complex128, ``E[sum_l |h_l|^2] = 1``.

    Draw order (fixed, for reproducibility): the Gaussian scatter (n_taps, n_rx, n_tx, 2) first, then,
    only when ``rician_k > 0`` and ``los == "ula"``, the LOS angles theta_rx, theta_tx and phase phi.
    """
    if rician_k < 0:
        raise ValueError(f"rician_k must be >= 0 (linear), got {rician_k}")
    if los not in LOS_MODELS:
        raise ValueError(f"los must be one of {LOS_MODELS}, got {los!r}")
    p = exponential_pdp(n_taps, decay)
    g = rng.standard_normal((n_taps, n_rx, n_tx, 2)).view(np.complex128)[..., 0] / np.sqrt(2.0)
    if corr_rx != 0 or corr_tx != 0:
        s_rx = hermitian_sqrt(exponential_correlation(n_rx, corr_rx))
        s_tx = hermitian_sqrt(exponential_correlation(n_tx, corr_tx))
        g = s_rx @ g @ s_tx.T  # broadcast over taps
    h = np.sqrt(p)[:, None, None] * g
    if rician_k > 0:
        if los == "ula":
            th_rx, th_tx = rng.uniform(-np.pi / 2, np.pi / 2, size=2)
            phi = rng.uniform(0.0, 2 * np.pi)
            a = np.exp(1j * phi) * np.outer(ula_steering(n_rx, th_rx), ula_steering(n_tx, th_tx).conj())
        else:
            a = np.ones((n_rx, n_tx), dtype=np.complex128)
        k = float(rician_k)
        h[0] = np.sqrt(p[0]) * (np.sqrt(k / (k + 1)) * a + np.sqrt(1 / (k + 1)) * g[0])
    return np.moveaxis(h, 0, -1).copy()


@dataclass(frozen=True)
class Realisation:
    """One channel draw. ``taps``: (n_rx, n_tx, L) complex128 WITHOUT the integer delay.

    ``frac_delay`` is the fractional part in [0, 1) or ``None`` when no fractional-delay filter is used;
    ``delay`` is the bulk delay of the first multipath tap in samples (``int_delay`` + the filter's centre).
    ``cfo`` is in cycles per sample (subcarrier spacing = 1/fft_len).
    """

    taps: np.ndarray
    int_delay: int = 0
    frac_delay: float | None = None
    cfo: float = 0.0
    fd_len: int = FD_LEN

    @property
    def delay(self) -> float:
        if self.frac_delay is None:
            return float(self.int_delay)
        return self.int_delay + fd_bulk_delay(self.fd_len) + self.frac_delay

    @property
    def full_taps(self) -> np.ndarray:
        """Taps with the integer delay as leading zeros, shape (n_rx, n_tx, int_delay + L)."""
        return np.pad(self.taps, ((0, 0), (0, 0), (self.int_delay, 0)))

    @property
    def extra_samples(self) -> int:
        """How much longer :meth:`apply`'s output is than its input: ``int_delay + L - 1``."""
        return self.int_delay + self.taps.shape[-1] - 1

    def apply(self, x: np.ndarray, *, phase: float = 0.0) -> np.ndarray:
        """Noise-free received burst: x (Nt, n) complex -> y (Nr, n + :attr:`extra_samples`) complex128,

            y_r[m] = exp(j (phase + 2 pi cfo m)) sum_t sum_k taps[r, t, k] x_t[m - int_delay - k]

        (the full linear convolution, with the input zero outside [0, n)). ``y[:, :n]`` is what
        ``gnuradio.semcom.mimo_channel`` outputs for ``x`` with this realisation held from sample 0 and no
        noise, impairments or per-channel offsets (qa_mimo_channel checks it); ``phase`` is the CFO phase
        at output sample 0 (rad). AWGN and the front-end impairments (:class:`Impairments`) stay with the
        caller; no caller here needs them in one shot.
        """
        n_rx, n_tx, length = self.taps.shape
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[0] != n_tx:
            raise ValueError(f"x must be (n_tx={n_tx}, n) transmit streams, got shape {x.shape}")
        if not np.iscomplexobj(x):
            raise ValueError(f"x must be complex baseband samples, got dtype {x.dtype}")
        n = x.shape[1]
        y = np.zeros((n_rx, n + self.extra_samples), np.complex128)
        for k in range(length):  # L <= a few dozen lags, each one (Nr, Nt) @ (Nt, n) product
            start = self.int_delay + k
            y[:, start: start + n] += self.taps[:, :, k] @ x
        if self.cfo or phase:
            y *= np.exp(1j * (phase + 2 * np.pi * self.cfo * np.arange(y.shape[1])))
        return y


@dataclass(frozen=True)
class ChannelSpec:
    """Parameters of the random channel; :meth:`draw` makes one :class:`Realisation`.

    ``frac_delay``: draw a fractional delay uniform in [0, 1) per realisation (else no FD filter).
    ``max_int_delay``: integer delay uniform in {0, ..., max_int_delay}. ``cfo`` + uniform
    [-cfo_jitter, cfo_jitter] is the carrier frequency offset in cycles per sample.
    """

    n_rx: int
    n_tx: int
    n_taps: int = 3
    decay: float = 1.0
    rician_k: float = 0.0
    corr_tx: complex = 0.0
    corr_rx: complex = 0.0
    los: str = "ula"
    frac_delay: bool = True
    max_int_delay: int = 0
    cfo: float = 0.0
    cfo_jitter: float = 0.0
    fd_len: int = FD_LEN

    def __post_init__(self) -> None:
        if self.n_rx < 1 or self.n_tx < 1:
            raise ValueError(f"need n_rx, n_tx >= 1, got {self.n_rx}, {self.n_tx}")
        if self.max_int_delay < 0:
            raise ValueError(f"max_int_delay must be >= 0, got {self.max_int_delay}")
        if self.cfo_jitter < 0:
            raise ValueError(f"cfo_jitter must be >= 0, got {self.cfo_jitter}")
        exponential_pdp(self.n_taps, self.decay)  # validates n_taps, decay
        for rho in (self.corr_tx, self.corr_rx):
            if abs(rho) > 1:
                raise ValueError(f"correlation coefficients need |rho| <= 1, got {rho}")
        if self.los not in LOS_MODELS:
            raise ValueError(f"los must be one of {LOS_MODELS}, got {self.los!r}")

    @property
    def fir_len(self) -> int:
        """L of every realisation (without the integer delay)."""
        return fir_length(self.n_taps, self.frac_delay, self.fd_len)

    @property
    def max_total_len(self) -> int:
        """Longest impulse response including the integer delay: ``max_int_delay + L``."""
        return self.max_int_delay + self.fir_len

    def draw(self, rng: np.random.Generator) -> Realisation:
        """Draw order: multipath (see :func:`draw_multipath`), frac delay, integer delay, CFO jitter."""
        return self.draw_many(rng, 1)[0]

    def draw_many(self, rng: np.random.Generator, count: int) -> list[Realisation]:
        """``count`` successive draws: the realisations ``count`` calls of :meth:`draw` give, bit for bit,
        and ``rng`` left as they leave it. Each draw takes its random numbers in :meth:`draw`'s order; the
        fractional-delay filters and their convolution with the multipath are then computed for all of
        them at once (one at a time they were ~0.25 ms of numpy calls per draw, mimo_channel's largest
        cost per frame when it redraws at every frame)."""
        multipath, fracs, delays, cfos = [], [], [], []
        for _ in range(count):
            multipath.append(draw_multipath(rng, self.n_rx, self.n_tx, n_taps=self.n_taps, decay=self.decay,
                                            rician_k=self.rician_k, corr_tx=self.corr_tx,
                                            corr_rx=self.corr_rx, los=self.los))
            if self.frac_delay:
                fracs.append(float(rng.uniform(0.0, 1.0)))
            delays.append(int(rng.integers(0, self.max_int_delay + 1)))
            jitter = float(rng.uniform(-self.cfo_jitter, self.cfo_jitter)) if self.cfo_jitter else 0.0
            cfos.append(float(self.cfo + jitter))
        if not count:
            return []
        h = np.stack(multipath)
        if self.frac_delay:
            h = convolve_taps(h, fractional_delay_firs(np.array(fracs), self.fd_len))
        return [Realisation(taps=h[i].copy(), int_delay=delays[i],
                            frac_delay=fracs[i] if self.frac_delay else None, cfo=cfos[i], fd_len=self.fd_len)
                for i in range(count)]


def draw_channel(rng: np.random.Generator, n_rx: int, n_tx: int, *, n_taps: int = 3, decay: float = 1.0,
                 rician_k: float = 0.0, corr_tx: complex = 0.0, corr_rx: complex = 0.0,
                 frac_delay: float | None = None, int_delay: int = 0, los: str = "ula",
                 fd_len: int = FD_LEN) -> np.ndarray:
    """One channel FIR, shape (n_rx, n_tx, int_delay + L) complex128 (``L`` as in :func:`fir_length`).

    ``frac_delay`` is the fractional part in [0, 1) (``None``: no fractional-delay filter); ``int_delay``
    whole samples are prepended as zeros. Average power per (rx, tx) pair is 1 (module docstring).
    """
    return draw_channels(rng, 1, n_rx, n_tx, n_taps=n_taps, decay=decay, rician_k=rician_k,
                         corr_tx=corr_tx, corr_rx=corr_rx, frac_delay=frac_delay, int_delay=int_delay,
                         los=los, fd_len=fd_len)[0]


def draw_channels(rng: np.random.Generator, count: int, n_rx: int, n_tx: int, *, n_taps: int = 3,
                  decay: float = 1.0, rician_k: float = 0.0, corr_tx: complex = 0.0, corr_rx: complex = 0.0,
                  frac_delay: float | None = None, int_delay: int = 0, los: str = "ula",
                  fd_len: int = FD_LEN) -> np.ndarray:
    """``count`` successive :func:`draw_channel` draws, (count, n_rx, n_tx, int_delay + L) complex128, bit
    for bit what ``count`` calls give (the random numbers drawn in the same order, one frame after the
    other); the fractional-delay filter and the delay are applied to all of them at once."""
    if int_delay < 0:
        raise ValueError(f"int_delay must be >= 0, got {int_delay}")
    h = np.stack([draw_multipath(rng, n_rx, n_tx, n_taps=n_taps, decay=decay, rician_k=rician_k,
                                 corr_tx=corr_tx, corr_rx=corr_rx, los=los) for _ in range(count)])
    if frac_delay is not None:
        h = convolve_taps(h, fractional_delay_fir(frac_delay, fd_len))
    return np.pad(h, ((0, 0), (0, 0), (0, 0), (int_delay, 0)))


def channel_frequency_response(taps: np.ndarray, fft_len: int) -> np.ndarray:
    """Per-bin MIMO channel, shape (fft_len, n_rx, n_tx), in numpy FFT bin order (bin k <-> k mod fft_len).

    ``H[k] = sum_l taps[..., l] exp(-j 2 pi k l / fft_len)`` (the un-normalised DFT of the taps), which is
    what a unitary-FFT OFDM link sees when the FIR fits in the cyclic prefix. ``taps``: (n_rx, n_tx, L),
    ``L <= fft_len``; or B channels (B, n_rx, n_tx, L) -> (B, fft_len, n_rx, n_tx).
    """
    taps = np.asarray(taps)
    if taps.ndim not in (3, 4):
        raise ValueError(f"taps must be (n_rx, n_tx, L) or (B, n_rx, n_tx, L), got shape {taps.shape}")
    if taps.shape[-1] > fft_len:
        raise ValueError(f"FIR length {taps.shape[-1]} exceeds fft_len {fft_len}")
    return np.moveaxis(np.fft.fft(taps, n=fft_len, axis=-1), -1, -3)


# --------------------------------------------------------------------- front-end impairments
PerAntenna = float | tuple[float, ...]


@dataclass(frozen=True)
class Impairments:
    """Radio front-end impairments of the loopback channel, each off at its default (so a channel without
    them is unchanged sample for sample).

    * ``sfo_ppm``: sampling-clock offset: the receiver's sample clock runs (1 + ppm 1e-6) times the
      transmitter's, so receive sample n reads the transmitted waveform at n / (1 + ppm 1e-6) and the
      signal drifts later by ppm 1e-6 samples per sample (:class:`SfoResampler`).
    * ``phase_noise_linewidth``: oscillator phase noise as a Wiener process (free-running oscillator,
      Lorentzian spectrum of this two-sided 3-dB linewidth), in cycles per sample (linewidth in Hz over
      the sample rate): phase increments N(0, 2 pi linewidth) per sample (:func:`wiener_phase`);
      ``mimo_channel`` applies one such process to every receive antenna (one oscillator per radio, as
      a B210's or an X310's shared LO; the transmitter's and the receiver's noise folded into one).
    * ``tx_iq_gain_db`` / ``tx_iq_phase_deg``, ``rx_iq_gain_db`` / ``rx_iq_phase_deg``: IQ gain and
      phase imbalance per transmit / receive antenna (a float for all, or one per antenna),
      y = k1 x + k2 conj(x) (:func:`iq_coefficients`: GNU Radio's ``iqbal_gen`` transmit and receive
      models).
    * ``dc_offset_dbc``: a constant complex offset on every receive antenna, of power this many dB
      relative to the nominal signal power per antenna (``noise_ref_power``), random phase per antenna;
      ``None`` for none.
    """

    sfo_ppm: float = 0.0
    phase_noise_linewidth: float = 0.0
    tx_iq_gain_db: PerAntenna = 0.0
    tx_iq_phase_deg: PerAntenna = 0.0
    rx_iq_gain_db: PerAntenna = 0.0
    rx_iq_phase_deg: PerAntenna = 0.0
    dc_offset_dbc: float | None = None

    def __post_init__(self) -> None:
        if not abs(self.sfo_ppm) < 1000:
            raise ValueError(f"sfo_ppm must be within +-1000, got {self.sfo_ppm}")
        if not 0 <= self.phase_noise_linewidth < 0.1:
            raise ValueError(f"phase_noise_linewidth must be in [0, 0.1) cycles/sample, got "
                             f"{self.phase_noise_linewidth}")

    def dc_amplitude(self, ref_power: float = 1.0) -> float:
        """|DC offset| per receive antenna for a nominal signal power `ref_power` (0 without one)."""
        if self.dc_offset_dbc is None:
            return 0.0
        return float(np.sqrt(ref_power * 10 ** (self.dc_offset_dbc / 10)))

    @property
    def tx_iq(self) -> bool:
        return bool(np.any(self.tx_iq_gain_db) or np.any(self.tx_iq_phase_deg))

    @property
    def rx_iq(self) -> bool:
        return bool(np.any(self.rx_iq_gain_db) or np.any(self.rx_iq_phase_deg))


def iq_coefficients(gain_db: PerAntenna, phase_deg: PerAntenna, n: int, transmit: bool = False
                    ) -> tuple[np.ndarray, np.ndarray]:
    """IQ imbalance y = k1 x + k2 conj(x) for n antennas: (k1, k2), each (n,) complex.

    The conventions of GNU Radio's ``channels.iqbal_gen`` (checked against it coefficient for
    coefficient): gain g = 10^(gain_db/20) and phase error phi; its receive model (mode 1: I' = g (I cos
    phi + Q sin phi), Q' = Q) is k1 = (1 + g e^{-j phi}) / 2, k2 = (g e^{j phi} - 1) / 2; its transmit
    model (mode 0, ``transmit=True``: I' = g I cos phi, Q' = g I sin phi + Q) has the conjugate k1 =
    (1 + g e^{j phi}) / 2 and the same k2 (no imbalance: k1 = 1, k2 = 0). A tone at +f comes out with an
    image at -f of relative power |k2|^2 / |k1|^2 (:func:`image_rejection_db`), the same for both."""
    g = 10 ** (np.broadcast_to(np.asarray(gain_db, float), (n,)) / 20)
    phi = np.deg2rad(np.broadcast_to(np.asarray(phase_deg, float), (n,)))
    return (1 + g * np.exp((1j if transmit else -1j) * phi)) / 2, (g * np.exp(1j * phi) - 1) / 2


def image_rejection_db(gain_db: float, phase_deg: float) -> float:
    """Image rejection ratio |k1|^2 / |k2|^2 in dB of an IQ imbalance (inf without one)."""
    k1, k2 = iq_coefficients(gain_db, phase_deg, 1)
    return float(10 * np.log10(abs(k1[0]) ** 2 / max(abs(k2[0]) ** 2, 1e-300)))


def apply_iq(x: np.ndarray, k1: np.ndarray, k2: np.ndarray) -> np.ndarray:
    """x (n_ant, m) -> k1 x + k2 conj(x) per antenna, same dtype."""
    return (k1[:, None] * x + k2[:, None] * np.conj(x)).astype(x.dtype, copy=False)


def wiener_phase(rng: np.random.Generator, n_ant: int, m: int, linewidth: float,
                 start: np.ndarray | None = None) -> np.ndarray:
    """(n_ant, m) phases (rad) of a Wiener process continuing from `start` (n_ant,): increments
    N(0, 2 pi linewidth) per sample, so var(phi[n + d] - phi[n]) = 2 pi linewidth d. Drawn time-major
    ((m, n_ant)), so the sequence does not depend on how a stream is cut into calls."""
    steps = rng.standard_normal((m, n_ant)).T * np.sqrt(2 * np.pi * linewidth)
    return (np.zeros(n_ant) if start is None else start)[:, None] + np.cumsum(steps, axis=1)


def phase_noise_gen_magnitude(linewidth: float, alpha: float) -> float:
    """GNU Radio's ``channels.phase_noise_gen(noise_mag, alpha)`` for a Wiener phase of `linewidth`.

    That block's phase is Gaussian noise of standard deviation noise_mag through the one-pole IIR
    phi[n] = alpha w[n] + (1 - alpha) phi[n - 1] (an AR(1) process, not a random walk): its increments
    have var(phi[n + d] - phi[n]) = 2 alpha noise_mag^2 (1 - (1 - alpha)^d) / (2 - alpha)
    (:func:`ar1_phase_structure`), 2 alpha^2 noise_mag^2 d / (2 - alpha) for d << 1 / alpha. Equal to a
    Wiener process's 2 pi linewidth d there when noise_mag = sqrt(pi linewidth (2 - alpha)) / alpha;
    beyond 1 / alpha samples its phase stops wandering (variance alpha noise_mag^2 / (2 - alpha))."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    return float(np.sqrt(np.pi * linewidth * (2 - alpha)) / alpha)


def ar1_phase_structure(noise_mag: float, alpha: float, lag: np.ndarray | float) -> np.ndarray:
    """var(phi[n + lag] - phi[n]) of ``channels.phase_noise_gen(noise_mag, alpha)``'s stationary phase."""
    return 2 * alpha * noise_mag**2 * (1 - (1 - alpha) ** np.asarray(lag, float)) / (2 - alpha)


def kaiser_sinc(offsets: np.ndarray, half: int, beta: float = 8.0) -> np.ndarray:
    """Kaiser-windowed sinc interpolation weights at `offsets` (samples from the interpolation point),
    zero outside |offset| < half; each row normalised to unit DC gain."""
    x = np.clip(offsets / half, -1.0, 1.0)
    h = np.sinc(offsets) * np.i0(beta * np.sqrt(1 - x**2)) / np.i0(beta)
    return h / h.sum(axis=-1, keepdims=True)


class SfoResampler:
    """Streaming sampling-clock offset on n_ch streams with a constant number of samples out per sample in
    (so it can live in a sync block): output n reads the input at n - latency + tau(n), tau decreasing by
    ppm 1e-6 / (1 + ppm 1e-6) per sample (a receive clock (1 + ppm 1e-6) times faster). tau is
    re-centred (an integer jump, a sample repeated or skipped) where `process` is told a burst starts
    (tx_sob: the jump falls in the gap before it, no frame is cut) and, without one, whenever |tau|
    reaches 1. Interpolation: a 32-tap Kaiser-windowed sinc (error below -60 dB up to 0.41 cycles/sample,
    the edge of wifi64's band). Adds `latency` whole samples of delay.
    """

    HALF = 16

    def __init__(self, n_ch: int, ppm: float):
        self.ppm = float(ppm)
        self.rate = ppm * 1e-6 / (1 + ppm * 1e-6)
        self.latency = self.HALF + 2
        self._taps = np.arange(-self.HALF + 1, self.HALF + 1)
        self._hist = np.zeros((n_ch, 2 * self.HALF + 3), np.complex64)
        self.tau = 0.0  # offset of the next output sample, before its own step

    def process(self, z: np.ndarray, resets: list[int] | tuple[int, ...] = ()) -> np.ndarray:
        """z (n_ch, m) -> (n_ch, m); resets: indices into this chunk where a burst starts."""
        m = z.shape[1]
        h = self._hist.shape[1]
        ext = np.concatenate([self._hist, z.astype(np.complex64, copy=False)], axis=1)
        raw = np.empty(m)
        tau = self.tau
        starts = {int(r) for r in resets if 0 <= r < m}
        bounds = sorted(starts | {0, m})
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            if a in starts:
                tau -= round(tau)
            seg = tau - self.rate * np.arange(1, b - a + 1)
            seg -= np.trunc(seg)  # |tau| reaching 1: one whole sample jump
            raw[a:b] = seg
            tau = float(seg[-1])
        self.tau = tau
        pos = h + np.arange(m) - self.latency + raw  # positions in ext
        base = np.floor(pos).astype(int)
        mu = pos - base
        weights = kaiser_sinc(self._taps[None, :] - mu[:, None], self.HALF)  # (m, K)
        idx = base[:, None] + self._taps[None, :]  # (m, K)
        out = np.einsum("cmk,mk->cm", ext[:, idx], weights.astype(np.complex64))
        self._hist = ext[:, -h:].copy()
        return out.astype(np.complex64, copy=False)
