/* -*- c++ -*- */
/*
 * Copyright 2026 gr-semcom authors.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

// mimo_channel's per-sample work: see include/gnuradio/semcom/mimo_channel_kernels.h.

#include <gnuradio/semcom/mimo_channel_kernels.h>
#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace gr {
namespace semcom {

namespace {
constexpr double TWO_PI = 6.283185307179586;
// Output samples per tile of the FIR: the accumulators stay in L1, and so do the input rows they read.
constexpr int TILE = 512;
// The rotation's phasor is recomputed from the phase every ROT_BLOCK samples (no drift of its modulus).
constexpr int ROT_BLOCK = 256;
// The ziggurat's rightmost layer edge (Marsaglia & Tsang 2000, 128 layers).
constexpr double ZIG_R = 3.442619855899;

// acc[i] += c x[i - k], i < len, over the lags k of one antenna pair; x interleaved (re, im) floats.
// (GCC's target_clones for AVX2 + FMA measured no faster here: 10.4 ns per 2x2 sample either way.)
void accumulate_pair(const float* x, const std::complex<float>* taps, int n_taps, int len, float* acc_re, float* acc_im)
{
    for (int k = 0; k < n_taps; ++k) {
        const float cr = taps[k].real(), ci = taps[k].imag();
        if (cr == 0.0f && ci == 0.0f)
            continue; // the zeros of folded per-channel delays
        const float* xs = x - 2 * k;
        for (int i = 0; i < len; ++i) {
            const float xr = xs[2 * i], xi = xs[2 * i + 1];
            acc_re[i] += cr * xr - ci * xi;
            acc_im[i] += cr * xi + ci * xr;
        }
    }
}

void check_size(std::size_t got, int want, const char* what)
{
    if (got != 0 && got != static_cast<std::size_t>(want))
        throw std::invalid_argument(std::string("mimo_channel_kernels: ") + what + " has the wrong length");
}
} // namespace

mimo_channel_kernels::mimo_channel_kernels(int n_tx, int n_rx, int history_len, std::uint64_t seed)
    : d_n_tx(n_tx),
      d_n_rx(n_rx),
      d_hl(history_len),
      d_taps(static_cast<std::size_t>(n_rx) * n_tx, cf(0.0f, 0.0f)),
      d_drift(n_rx, 0.0),
      d_history(static_cast<std::size_t>(n_tx) * history_len, cf(0.0f, 0.0f)),
      d_rng(seed)
{
    if (n_tx < 1 || n_rx < 1 || history_len < 0)
        throw std::invalid_argument("mimo_channel_kernels: n_tx, n_rx >= 1 and history_len >= 0");
    // Marsaglia & Tsang's zigset for RNOR, 128 layers (their constants: r = dn, layer area vn).
    const double m1 = 2147483648.0, vn = 9.91256303526217e-3;
    double dn = ZIG_R, tn = dn;
    const double q = vn / std::exp(-0.5 * dn * dn);
    d_kn[0] = static_cast<std::uint32_t>((dn / q) * m1);
    d_kn[1] = 0;
    d_wn[0] = q / m1;
    d_wn[127] = dn / m1;
    d_fn[0] = 1.0;
    d_fn[127] = std::exp(-0.5 * dn * dn);
    for (int i = 126; i >= 1; --i) {
        dn = std::sqrt(-2.0 * std::log(vn / dn + std::exp(-0.5 * dn * dn)));
        d_kn[i + 1] = static_cast<std::uint32_t>((dn / tn) * m1);
        tn = dn;
        d_fn[i] = std::exp(-0.5 * dn * dn);
        d_wn[i] = dn / m1;
    }
}

double mimo_channel_kernels::uniform()
{
    return (static_cast<double>(d_rng() >> 11) + 0.5) * 0x1.0p-53; // (0, 1)
}

float mimo_channel_kernels::normal()
{
    const std::uint64_t u = d_rng();
    const int iz = static_cast<int>(u & 127);                                   // the layer
    const std::int64_t hz = static_cast<std::int32_t>(static_cast<std::uint32_t>(u >> 32)); // sign + value
    if (static_cast<std::uint64_t>(hz < 0 ? -hz : hz) < d_kn[iz])
        return static_cast<float>(static_cast<double>(hz) * d_wn[iz]); // inside the layer's rectangle: ~99 %
    return normal_slow(hz, iz);
}

float mimo_channel_kernels::normal_slow(std::int64_t hz, int iz)
{
    for (;;) {
        const double x = static_cast<double>(hz) * d_wn[iz];
        if (iz == 0) { // the tail beyond r (Marsaglia's method)
            double xt, yt;
            do {
                xt = -std::log(uniform()) / ZIG_R;
                yt = -std::log(uniform());
            } while (yt + yt < xt * xt);
            return static_cast<float>(hz > 0 ? ZIG_R + xt : -ZIG_R - xt);
        }
        if (d_fn[iz] + uniform() * (d_fn[iz - 1] - d_fn[iz]) < std::exp(-0.5 * x * x))
            return static_cast<float>(x); // under the density in the layer's wedge
        const std::uint64_t u = d_rng();
        iz = static_cast<int>(u & 127);
        hz = static_cast<std::int32_t>(static_cast<std::uint32_t>(u >> 32));
        if (static_cast<std::uint64_t>(hz < 0 ? -hz : hz) < d_kn[iz])
            return static_cast<float>(static_cast<double>(hz) * d_wn[iz]);
    }
}

void mimo_channel_kernels::set_realisation(const std::vector<cf>& taps, int length, int int_delay, double cfo)
{
    if (length < 1 || taps.size() != static_cast<std::size_t>(d_n_rx) * d_n_tx * length)
        throw std::invalid_argument("mimo_channel_kernels: taps must be (n_rx, n_tx, length)");
    if (int_delay < 0 || int_delay + length - 1 > d_hl)
        throw std::invalid_argument("mimo_channel_kernels: int_delay + length - 1 exceeds the history");
    d_taps = taps;
    d_len = length;
    d_delay = int_delay;
    d_cfo = cfo;
}

void mimo_channel_kernels::set_drift(const std::vector<double>& drift)
{
    check_size(drift.size(), d_n_rx, "drift");
    d_drift.assign(d_n_rx, 0.0);
    std::copy(drift.begin(), drift.end(), d_drift.begin());
    d_drifting = std::any_of(d_drift.begin(), d_drift.end(), [](double v) { return v != 0.0; });
}

namespace {
// IQ imbalance coefficients of n antennas (or none: both empty) into k1_out, k2_out.
void set_iq(const std::vector<std::complex<float>>& k1,
            const std::vector<std::complex<float>>& k2,
            int n,
            std::vector<std::complex<float>>& k1_out,
            std::vector<std::complex<float>>& k2_out)
{
    check_size(k1.size(), n, "IQ k1");
    if (k1.size() != k2.size())
        throw std::invalid_argument("mimo_channel_kernels: IQ k1 and k2 differ in length");
    k1_out = k1;
    k2_out = k2;
}
} // namespace

void mimo_channel_kernels::set_tx_iq(const std::vector<cf>& k1, const std::vector<cf>& k2)
{
    set_iq(k1, k2, d_n_tx, d_tx_k1, d_tx_k2);
}

void mimo_channel_kernels::set_rx_iq(const std::vector<cf>& k1, const std::vector<cf>& k2)
{
    set_iq(k1, k2, d_n_rx, d_rx_k1, d_rx_k2);
}

void mimo_channel_kernels::set_dc(const std::vector<cf>& dc)
{
    check_size(dc.size(), d_n_rx, "dc");
    d_dc = dc;
}

void mimo_channel_kernels::begin(const std::vector<const cf*>& inputs, std::vector<cf*> outputs, int n)
{
    if (inputs.size() != static_cast<std::size_t>(d_n_tx) ||
        outputs.size() != static_cast<std::size_t>(d_n_rx) || n < 0)
        throw std::invalid_argument("mimo_channel_kernels: begin needs n_tx inputs and n_rx outputs");
    const std::size_t row = static_cast<std::size_t>(d_hl) + n;
    if (d_ext.size() < d_n_tx * row)
        d_ext.resize(d_n_tx * row);
    for (int t = 0; t < d_n_tx; ++t) {
        cf* ext = d_ext.data() + t * row;
        cf* hist = d_history.data() + static_cast<std::size_t>(t) * d_hl;
        std::copy(hist, hist + d_hl, ext);
        std::copy(inputs[t], inputs[t] + n, ext + d_hl);
        std::copy(ext + n, ext + n + d_hl, hist); // the raw input: TX IQ is applied per call
        if (!d_tx_k1.empty()) {
            const cf k1 = d_tx_k1[t], k2 = d_tx_k2[t];
            for (std::size_t i = 0; i < row; ++i)
                ext[i] = k1 * ext[i] + k2 * std::conj(ext[i]);
        }
    }
    d_out = std::move(outputs);
    d_n = n;
}

double mimo_channel_kernels::filter(int s0, int s1, double phase, std::int64_t start)
{
    if (s0 < 0 || s1 > d_n || s0 > s1)
        throw std::invalid_argument("mimo_channel_kernels: filter range outside the call");
    const std::size_t row = static_cast<std::size_t>(d_hl) + d_n;
    alignas(64) float acc_re[TILE], acc_im[TILE];
    for (int r = 0; r < d_n_rx; ++r) {
        cf* y = d_out[r];
        for (int i0 = s0; i0 < s1; i0 += TILE) {
            const int len = std::min(TILE, s1 - i0);
            std::fill(acc_re, acc_re + len, 0.0f);
            std::fill(acc_im, acc_im + len, 0.0f);
            for (int t = 0; t < d_n_tx; ++t) {
                // x points at input sample i0 - D of antenna t; lag k reads x - k.
                const float* x = reinterpret_cast<const float*>(d_ext.data() + t * row + d_hl + i0 - d_delay);
                const cf* taps = d_taps.data() + (static_cast<std::size_t>(r) * d_n_tx + t) * d_len;
                accumulate_pair(x, taps, d_len, len, acc_re, acc_im);
            }
            cf* out = y + i0;
            for (int i = 0; i < len; ++i)
                out[i] = cf(acc_re[i], acc_im[i]);
        }
    }
    const int m = s1 - s0;
    if (d_cfo == 0.0 && !d_drifting)
        return phase;
    const double step = TWO_PI * d_cfo;
    for (int r = 0; r < d_n_rx; ++r) {
        cf* y = d_out[r] + s0;
        const double drift = d_drift[r];
        const std::complex<double> inc = std::polar(1.0, step + drift);
        for (int b = 0; b < m; b += ROT_BLOCK) {
            // Exact at the block's first sample: CFO ramp from s0, drift from the absolute index.
            const double a = std::fmod(phase + step * b, TWO_PI) +
                             std::fmod(drift * static_cast<double>(start + s0 + b), TWO_PI);
            std::complex<double> p = std::polar(1.0, a);
            const int end = std::min(m, b + ROT_BLOCK);
            for (int i = b; i < end; ++i) {
                y[i] *= cf(static_cast<float>(p.real()), static_cast<float>(p.imag()));
                p *= inc;
            }
        }
    }
    return std::fmod(phase + step * m, TWO_PI);
}

void mimo_channel_kernels::finish(double noise_var)
{
    if (noise_var > 0.0) {
        const float scale = static_cast<float>(std::sqrt(noise_var / 2.0));
        // Sample-major, as the numpy path's (n, 2 Nr) draw: the noise does not depend on call sizes.
        for (int i = 0; i < d_n; ++i) {
            for (int r = 0; r < d_n_rx; ++r) {
                const float re = normal();
                const float im = normal();
                d_out[r][i] += cf(scale * re, scale * im);
            }
        }
    }
    if (!d_rx_k1.empty()) {
        for (int r = 0; r < d_n_rx; ++r) {
            const cf k1 = d_rx_k1[r], k2 = d_rx_k2[r];
            cf* y = d_out[r];
            for (int i = 0; i < d_n; ++i)
                y[i] = k1 * y[i] + k2 * std::conj(y[i]);
        }
    }
    if (!d_dc.empty()) {
        for (int r = 0; r < d_n_rx; ++r) {
            const cf dc = d_dc[r];
            cf* y = d_out[r];
            for (int i = 0; i < d_n; ++i)
                y[i] += dc;
        }
    }
    d_out.clear();
    d_n = 0;
}

} // namespace semcom
} // namespace gr
