/* -*- c++ -*- */
/*
 * Copyright 2026 gr-semcom authors.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

// FrameReceiver's hot methods compiled: each follows its numpy method in semcom/ofat/receiver.py step
// by step (same order of decisions, same tie-breaking), so that the taps chosen and the fits agree.

#include <fftw3.h>
#include <gnuradio/fft/fft.h>
#include <gnuradio/io_signature.h>
#include <gnuradio/semcom/ofat_rx_kernels.h>
#include <algorithm>
#include <charconv>
#include <cstring>
#include <cmath>
#include <limits>
#include <mutex>
#include <numeric>
#include <stdexcept>
#if defined(__SSE2__)
#include <emmintrin.h> // store_cf
#endif

namespace gr {
namespace semcom {

namespace {
using cd = std::complex<double>;

double norm2(cd z) { return z.real() * z.real() + z.imag() * z.imag(); }

// out = (float(re), float(im)). Why not cf(float(re), float(im)): GCC 12 writes the two doubles to the
// stack and reloads them as one 16-byte vector to convert (also for two float stores, which its SLP
// pass packs the same way, and for _mm_set_pd), a failed store forward per element: perf put ~75 % of
// data()'s cycles on its h_out store. The pair is built in registers (unpcklpd) or loaded as one
// vector; cvtpd2ps rounds each double as cvtsd2ss does, so the floats are the same.
inline void store_cf(std::complex<float>* out, double re, double im)
{
#if defined(__SSE2__)
    _mm_storel_pi(reinterpret_cast<__m64*>(out), _mm_cvtpd_ps(_mm_unpacklo_pd(_mm_set_sd(re), _mm_set_sd(im))));
#else
    *out = std::complex<float>(static_cast<float>(re), static_cast<float>(im));
#endif
}

inline void store_cf(std::complex<float>* out, const cd& v)
{
#if defined(__SSE2__)
    _mm_storel_pi(reinterpret_cast<__m64*>(out),
                  _mm_cvtpd_ps(_mm_loadu_pd(reinterpret_cast<const double*>(&v))));
#else
    *out = std::complex<float>(static_cast<float>(v.real()), static_cast<float>(v.imag()));
#endif
}

// R rows from r0 and Q columns from q0 of product(): the R x Q sums in registers over the whole of Nu
// (each in Nu order, as a plain loop adds them). GCC 12's AVX2 code packs each row's entry of mat with
// the next row's into one vector, so it reads up to a row past the last one: product() hands it a copy
// of mat with a spare row (reading past the caller's array crashed test_impairments where that crossed
// into an unmapped page).
template <int R, int Q>
__attribute__((always_inline)) inline void product_block(const cd* __restrict__ mat, int nu,
                                                         const double* __restrict__ xre,
                                                         const double* __restrict__ xim, int p, int r0, int q0,
                                                         cd* __restrict__ out)
{
    double re[R][Q] = {}, im[R][Q] = {};
    for (int u = 0; u < nu; ++u) {
        const double* ur = xre + static_cast<std::size_t>(u) * p + q0;
        const double* ui = xim + static_cast<std::size_t>(u) * p + q0;
        for (int i = 0; i < R; ++i) {
            const cd m = mat[static_cast<std::size_t>(r0 + i) * nu + u];
            const double ar = m.real(), ai = m.imag();
            for (int q = 0; q < Q; ++q) {
                re[i][q] += ar * ur[q] - ai * ui[q];
                im[i][q] += ar * ui[q] + ai * ur[q];
            }
        }
    }
    for (int i = 0; i < R; ++i)
        for (int q = 0; q < Q; ++q)
            out[static_cast<std::size_t>(r0 + i) * p + q0 + q] = cd(re[i][q], im[i][q]);
}

template <int Q>
__attribute__((always_inline)) inline void product_columns(const cd* mat, int rows, int nu, const double* xre,
                                                           const double* xim, int p, int q0, cd* out)
{
    int r = 0;
    for (; r + 2 <= rows; r += 2)
        product_block<2, Q>(mat, nu, xre, xim, p, r, q0, out);
    for (; r < rows; ++r)
        product_block<1, Q>(mat, nu, xre, xim, p, r, q0, out);
}

// out (rows, P) = mat (rows, Nu) @ x (Nu, P), all row-major: x split into real and imaginary parts
// first, then real arithmetic with each block of outputs summed in registers (vectorised over the
// columns; std::complex loops are not), built for AVX2 as well (picked at load time where the CPU has it).
__attribute__((target_clones("avx2", "default"))) void
product(const cd* __restrict__ mat, int rows, int nu, const cd* __restrict__ x, int p, cd* __restrict__ out)
{
    thread_local std::vector<double> split;
    thread_local std::vector<cd> padded;
    split.resize(2 * static_cast<std::size_t>(nu) * p);
    double* __restrict__ xre = split.data();
    double* __restrict__ xim = xre + static_cast<std::size_t>(nu) * p;
    for (std::size_t i = 0; i < static_cast<std::size_t>(nu) * p; ++i) {
        xre[i] = x[i].real();
        xim[i] = x[i].imag();
    }
    // The blocks of rows with a whole row of mat after them read mat in place; the last block (the last
    // two rows, or the last one of an odd count: product_columns' own blocks, so the same sums) reads a
    // copy of its rows with a spare row after them (see product_block). Copying all of mat cost ~5 %
    // of front() (perf: memmove).
    const int tail = rows % 2 ? 1 : std::min(rows, 2), head = rows - tail;
    padded.resize(static_cast<std::size_t>(tail + 1) * nu);
    std::copy_n(mat + static_cast<std::size_t>(head) * nu, static_cast<std::size_t>(tail) * nu, padded.begin());
    cd* tail_out = out + static_cast<std::size_t>(head) * p;
    int q0 = 0;
    for (; q0 + 8 <= p; q0 += 8) {
        product_columns<8>(mat, head, nu, xre, xim, p, q0, out);
        product_columns<8>(padded.data(), tail, nu, xre, xim, p, q0, tail_out);
    }
    for (; q0 + 4 <= p; q0 += 4) {
        product_columns<4>(mat, head, nu, xre, xim, p, q0, out);
        product_columns<4>(padded.data(), tail, nu, xre, xim, p, q0, tail_out);
    }
    for (; q0 < p; ++q0) {
        product_columns<1>(mat, head, nu, xre, xim, p, q0, out);
        product_columns<1>(padded.data(), tail, nu, xre, xim, p, q0, tail_out);
    }
}

// The Schmidl & Cox sums of one antenna added to the running per-position sums (energy |x|^2 at every
// position, conj(x[d]) x[d + half] as (re, im) pairs): float, in the numpy method's antenna order.
__attribute__((target_clones("avx2", "default"))) void
antenna_sums(const float* __restrict__ x, std::size_t n, std::size_t half, float* __restrict__ energy,
             float* __restrict__ prod)
{
    for (std::size_t d = 0; d < n; ++d)
        energy[d] += x[2 * d] * x[2 * d] + x[2 * d + 1] * x[2 * d + 1];
    const float* y = x + 2 * half;
    for (std::size_t d = 0; d + half < n; ++d) {
        prod[2 * d] += x[2 * d] * y[2 * d] + x[2 * d + 1] * y[2 * d + 1];
        prod[2 * d + 1] += x[2 * d] * y[2 * d + 1] - x[2 * d + 1] * y[2 * d];
    }
}

// Cumulative sums in double (ce: n + 1 values, cp: n - half + 1), each starting at 0.
void cumulative_sums(const float* energy, const float* prod, std::size_t n, std::size_t half, double* ce,
                     std::complex<double>* cp)
{
    double e = 0.0, pr = 0.0, pi = 0.0;
    ce[0] = 0.0;
    cp[0] = 0.0;
    for (std::size_t d = 0; d < n; ++d) {
        e += energy[d];
        ce[d + 1] = e;
    }
    for (std::size_t d = 0; d + half < n; ++d) {
        pr += prod[2 * d];
        pi += prod[2 * d + 1];
        cp[d + 1] = std::complex<double>(pr, pi);
    }
}

// M(d) = |P(d)|^2 / R(d)^2 with P, R from the differenced cumulative sums; 0 where R < 1e-12 (idle zeros).
__attribute__((target_clones("avx2", "default"))) void
sc_metric(const double* __restrict__ ce, const std::complex<double>* __restrict__ cp, std::size_t n_out,
          std::size_t half, double* __restrict__ metric, std::complex<double>* __restrict__ p)
{
    const double* c = reinterpret_cast<const double*>(cp);
    double* po = reinterpret_cast<double*>(p);
    for (std::size_t d = 0; d < n_out; ++d) {
        const double pr = c[2 * (d + half)] - c[2 * d];
        const double pi = c[2 * (d + half) + 1] - c[2 * d + 1];
        const double r = 0.5 * (ce[d + 2 * half] - ce[d]);
        po[2 * d] = pr;
        po[2 * d + 1] = pi;
        const double rr = r > 1e-20 ? r : 1e-20;
        metric[d] = r < 1e-12 ? 0.0 : (pr * pr + pi * pi) / (rr * rr);
    }
}

// Forward elimination without pivoting of a (k, k) x = x (k, p), in place (receiver._eliminate).
void eliminate(std::vector<cd>& a, std::vector<cd>& x, int k, int p)
{
    for (int j = 0; j < k; ++j) {
        const cd pivot = a[j * k + j];
        for (int i = j + 1; i < k; ++i) {
            const cd factor = a[i * k + j] / pivot;
            for (int l = j; l < k; ++l)
                a[i * k + l] -= factor * a[j * k + l];
            for (int q = 0; q < p; ++q)
                x[i * p + q] -= factor * x[j * p + q];
        }
    }
}

// eliminate's steps on a (k, k) alone, in place (the pivot's inverse times each row's entry): the factor of row i at step j (i > j) stored at
// factors[i k + j] (real parts) and factors[k k + i k + j] (imaginary parts), for eliminate_split.
void elimination_factors(std::vector<cd>& a, int k, double* factors)
{
    for (int j = 0; j < k; ++j) {
        const cd inverse = 1.0 / a[j * k + j]; // one division per step (a product per row)
        for (int i = j + 1; i < k; ++i) {
            const cd factor = a[i * k + j] * inverse;
            factors[i * k + j] = factor.real();
            factors[k * k + i * k + j] = factor.imag();
            for (int l = j; l < k; ++l)
                a[i * k + l] -= factor * a[j * k + l];
        }
    }
}

// eliminate's steps on x (k, p) from elimination_factors, x split into real (xr) and imaginary (xi)
// rows: the same products, on contiguous runs the compiler vectorises.
__attribute__((target_clones("avx2", "default"))) void
eliminate_split(const double* __restrict__ factors, int k, int p, double* __restrict__ xr, double* __restrict__ xi)
{
    for (int j = 0; j < k; ++j) {
        const double* jr = xr + static_cast<std::size_t>(j) * p;
        const double* ji = xi + static_cast<std::size_t>(j) * p;
        for (int i = j + 1; i < k; ++i) {
            const double fr = factors[i * k + j], fi = factors[k * k + i * k + j];
            double* ir = xr + static_cast<std::size_t>(i) * p;
            double* ii = xi + static_cast<std::size_t>(i) * p;
            for (int q = 0; q < p; ++q) {
                const double pr = fr * jr[q] - fi * ji[q], pi = fr * ji[q] + fi * jr[q];
                ir[q] -= pr;
                ii[q] -= pi;
            }
        }
    }
}

// The integer CFO search's scores over n_windows training windows (w: each fft_len bins, in the
// receiver's (antenna, symbol) order): for each candidate shift s, the sum over the windows of
// |sum_j conj(w[b]) w[b + 1] code_j| over the adjacent pairs j, b = bins[s A + j] (_integer_shift:
// conj(w_b c_a) w_b' c_a+1 = (conj(w_b) w_b') (conj(c_a) c_a+1)). The products are laid out bin-major,
// so every step of the sum over j runs over all windows at once (the same order of additions per window).
__attribute__((target_clones("avx2", "default"))) void
adjacent_scores(const std::complex<double>* w, int n_windows, int fft_len, const int* bins, const double* code_re,
                const double* code_im, int n_adjacent, int n_shifts, double* scores)
{
    const int W = n_windows;
    thread_local std::vector<double> scratch;
    scratch.resize(2 * static_cast<std::size_t>(fft_len) * W + 2 * static_cast<std::size_t>(W));
    double* __restrict__ pr = scratch.data();
    double* __restrict__ pi = pr + static_cast<std::size_t>(fft_len) * W;
    double* __restrict__ sr = pi + static_cast<std::size_t>(fft_len) * W;
    double* __restrict__ si = sr + W;
    for (int k = 0; k < W; ++k) {
        const double* x = reinterpret_cast<const double*>(w + static_cast<std::size_t>(k) * fft_len);
        for (int b = 0; b < fft_len; ++b) {
            const int n = b + 1 < fft_len ? b + 1 : 0;
            pr[static_cast<std::size_t>(b) * W + k] = x[2 * b] * x[2 * n] + x[2 * b + 1] * x[2 * n + 1];
            pi[static_cast<std::size_t>(b) * W + k] = x[2 * b] * x[2 * n + 1] - x[2 * b + 1] * x[2 * n];
        }
    }
    for (int s = 0; s < n_shifts; ++s) {
        const int* idx = bins + static_cast<std::size_t>(s) * n_adjacent;
        std::fill(sr, sr + 2 * W, 0.0);
        for (int j = 0; j < n_adjacent; ++j) {
            const double* ar = pr + static_cast<std::size_t>(idx[j]) * W;
            const double* ai = pi + static_cast<std::size_t>(idx[j]) * W;
            const double cr = code_re[j], ci = code_im[j];
            for (int k = 0; k < W; ++k) {
                sr[k] += ar[k] * cr - ai[k] * ci;
                si[k] += ar[k] * ci + ai[k] * cr;
            }
        }
        for (int k = 0; k < W; ++k)
            scores[s] += std::sqrt(sr[k] * sr[k] + si[k] * si[k]);
    }
}

// acc (real parts acc_re, imaginary acc_im) += y c over n values (complex products, vectorised).
__attribute__((target_clones("avx2", "default"))) void
multiply_add(const std::complex<double>* y, std::complex<double> c, int n, double* __restrict__ acc_re,
             double* __restrict__ acc_im)
{
    const double* x = reinterpret_cast<const double*>(y);
    const double cr = c.real(), ci = c.imag();
    for (int u = 0; u < n; ++u) {
        acc_re[u] += x[2 * u] * cr - x[2 * u + 1] * ci;
        acc_im[u] += x[2 * u] * ci + x[2 * u + 1] * cr;
    }
}

// acc (real parts acc_re, imaginary acc_im) += x y elementwise over n values.
__attribute__((target_clones("avx2", "default"))) void
multiply_add_rows(const std::complex<double>* x, const std::complex<double>* y, int n, double* __restrict__ acc_re,
                  double* __restrict__ acc_im)
{
    const double* a = reinterpret_cast<const double*>(x);
    const double* b = reinterpret_cast<const double*>(y);
    for (int u = 0; u < n; ++u) {
        acc_re[u] += a[2 * u] * b[2 * u] - a[2 * u + 1] * b[2 * u + 1];
        acc_im[u] += a[2 * u] * b[2 * u + 1] + a[2 * u + 1] * b[2 * u];
    }
}

// power[i] += |z[i]|^2 over n values.
__attribute__((target_clones("avx2", "default"))) void
add_powers(const std::complex<double>* z, int n, double* __restrict__ power)
{
    const double* x = reinterpret_cast<const double*>(z);
    for (int i = 0; i < n; ++i)
        power[i] += x[2 * i] * x[2 * i] + x[2 * i + 1] * x[2 * i + 1];
}

// out[i] = sum over q of re[i, q]^2 + im[i, q]^2 for (rows, p) real and imaginary parts.
__attribute__((target_clones("avx2", "default"))) void
row_powers(const double* __restrict__ re, const double* __restrict__ im, int rows, int p, double* __restrict__ out)
{
    for (int i = 0; i < rows; ++i) {
        double s = 0.0;
        for (int q = 0; q < p; ++q)
            s += re[i * p + q] * re[i * p + q] + im[i * p + q] * im[i * p + q];
        out[i] = s;
    }
}

// (re, im)[i, q] -= a[i] b[q] for complex a (rows) and b (p) given by real and imaginary parts.
__attribute__((target_clones("avx2", "default"))) void
subtract_outer(const double* ar, const double* ai, const double* br, const double* bi, int rows, int p,
               double* __restrict__ re, double* __restrict__ im)
{
    for (int i = 0; i < rows; ++i)
        for (int q = 0; q < p; ++q) {
            re[i * p + q] -= ar[i] * br[q] - ai[i] * bi[q];
            im[i * p + q] -= ar[i] * bi[q] + ai[i] * br[q];
        }
}

// One symbol's CFO ramp as complex64 (interleaved re, im): (c + j s) times the window's ramp (real
// parts window[0, n), imaginary window[n, 2n)), rounded to float.
__attribute__((target_clones("avx2", "default"))) void
symbol_ramp(double c, double s, const double* __restrict__ window, int n, float* __restrict__ ramp)
{
    for (int i = 0; i < n; ++i) {
        ramp[2 * i] = static_cast<float>(c * window[i] - s * window[n + i]);
        ramp[2 * i + 1] = static_cast<float>(c * window[n + i] + s * window[i]);
    }
}

// out = win * ramp in complex64 (the numpy method's product), widened to complex128 for the FFT.
__attribute__((target_clones("avx2", "default"))) void
derotate(const std::complex<float>* __restrict__ win, const float* __restrict__ ramp, int n,
         std::complex<double>* __restrict__ out)
{
    const float* a = reinterpret_cast<const float*>(win);
    double* o = reinterpret_cast<double*>(out);
    for (int i = 0; i < n; ++i) {
        const float re = a[2 * i] * ramp[2 * i] - a[2 * i + 1] * ramp[2 * i + 1];
        const float im = a[2 * i] * ramp[2 * i + 1] + a[2 * i + 1] * ramp[2 * i];
        o[2 * i] = re;
        o[2 * i + 1] = im;
    }
}

// out = in * scale over n complex values.
__attribute__((target_clones("avx2", "default"))) void
scale_copy(const std::complex<double>* __restrict__ in, double scale, int n, std::complex<double>* __restrict__ out)
{
    const double* x = reinterpret_cast<const double*>(in);
    double* o = reinterpret_cast<double*>(out);
    for (int i = 0; i < 2 * n; ++i)
        o[i] = x[i] * scale;
}

// a^-1 x after eliminate(a, x): back substitution (receiver._hpd_solve).
void back_substitute(const std::vector<cd>& a, std::vector<cd>& x, int k, int p)
{
    for (int j = k - 1; j >= 0; --j) {
        for (int q = 0; q < p; ++q) {
            cd s(0.0, 0.0);
            for (int l = j + 1; l < k; ++l)
                s += a[j * k + l] * x[l * p + q];
            x[j * p + q] = (x[j * p + q] - s) / a[j * k + j];
        }
    }
}

// receiver._parabola_peak with cyclic=True.
double parabola_peak_cyclic(const std::vector<double>& x, const std::vector<double>& y)
{
    const int n = static_cast<int>(y.size());
    const int k = static_cast<int>(std::max_element(y.begin(), y.end()) - y.begin());
    const double a = y[(k - 1 + n) % n], b = y[k], c = y[(k + 1) % n];
    const double curvature = a - 2 * b + c;
    const double offset = curvature < 0 ? 0.5 * (a - c) / curvature : 0.0;
    return x[k] + offset * (x[1] - x[0]);
}
} // namespace

ofat_rx_kernels::ofat_rx_kernels(int n_rx,
                                 int fft_len,
                                 int symbol_len,
                                 const std::vector<int>& signed_used,
                                 const std::vector<int>& candidate_taps,
                                 const std::vector<cd>& basis,
                                 const std::vector<cd>& coarse_basis_h,
                                 const std::vector<cd>& derivative_basis_h,
                                 const std::vector<double>& coarse_fractions,
                                 int coarse_taps,
                                 int newton_steps)
    : d_n_rx(n_rx),
      d_fft_len(fft_len),
      d_symbol_len(symbol_len),
      d_nu(static_cast<int>(signed_used.size())),
      d_c(signed_used.empty() ? 0 : static_cast<int>(basis.size() / signed_used.size())),
      d_g(static_cast<int>(coarse_fractions.size())),
      d_coarse_taps(coarse_taps),
      d_newton_steps(newton_steps),
      d_signed_used(signed_used.begin(), signed_used.end()),
      d_basis(basis),
      d_coarse_basis_h(coarse_basis_h),
      d_derivative_basis_h(derivative_basis_h),
      d_coarse_fractions(coarse_fractions)
{
    if (n_rx < 1 || fft_len < 2 || symbol_len < fft_len || d_nu < 1 || d_c < 1 ||
        basis.size() != static_cast<std::size_t>(d_nu) * d_c ||
        coarse_basis_h.size() != static_cast<std::size_t>(d_g) * d_c * d_nu ||
        derivative_basis_h.size() != static_cast<std::size_t>(3) * d_c * d_nu || d_g < 2 ||
        coarse_taps < 1 || candidate_taps.size() != static_cast<std::size_t>(d_c))
        throw std::invalid_argument("ofat_rx_kernels: inconsistent layout arrays");
    auto zero = std::find(coarse_fractions.begin(), coarse_fractions.end(), 0.0);
    if (zero == coarse_fractions.end())
        throw std::invalid_argument("ofat_rx_kernels: the coarse fractions must include 0.0");
    d_grid_shift = static_cast<int>(zero - coarse_fractions.begin());
    d_mirror.assign(d_nu, -1); // the used bin of -k for each k, where used
    for (int u = 0; u < d_nu; ++u)
        for (int v = 0; v < d_nu; ++v)
            if (signed_used[v] == -signed_used[u] && signed_used[u] != 0)
                d_mirror[u] = v;
    d_basis_h.resize(d_basis.size());
    for (int u = 0; u < d_nu; ++u)
        for (int c = 0; c < d_c; ++c)
            d_basis_h[c * d_nu + u] = std::conj(d_basis[u * d_c + c]);
    d_gram.resize(static_cast<std::size_t>(d_c) * d_c);
    for (int a = 0; a < d_c; ++a)
        for (int b = 0; b < d_c; ++b) {
            cd s(0.0, 0.0);
            for (int u = 0; u < d_nu; ++u)
                s += d_basis_h[a * d_nu + u] * d_basis[u * d_c + b];
            d_gram[a * d_c + b] = s;
        }
    // Is coarse_basis_h[g, c, u] = exp(2 pi j k_u (G t_c + G f_g) / (G fft)) with G f_g integer? Then
    // one inverse DFT of length G fft per pair gives every shift's correlations (coarse_correlations).
    const int zoom_len = d_g * fft_len;
    d_coarse_index.resize(static_cast<std::size_t>(d_g) * d_c);
    bool zoom = true;
    // Where the outputs are G c + g from one start m0 (consecutive taps, shifts g - G/2 over G: the
    // receiver's), coarse_fraction reads them as one run (d_coarse_run).
    const long m0 = static_cast<long>(d_g) * candidate_taps[0] + std::lround(d_g * coarse_fractions[0]);
    bool run = d_g * d_c <= zoom_len;
    for (int g = 0; g < d_g && zoom; ++g) {
        const double shift = d_g * coarse_fractions[g];
        const long rounded = std::lround(shift);
        zoom = std::abs(shift - rounded) < 1e-9;
        for (int c = 0; c < d_c && zoom; ++c) {
            const long m = static_cast<long>(d_g) * candidate_taps[c] + rounded;
            run = run && m == m0 + static_cast<long>(d_g) * c + g;
            d_coarse_index[g * d_c + c] = static_cast<int>(((m % zoom_len) + zoom_len) % zoom_len);
            for (int u = 0; u < d_nu && zoom; ++u) {
                const double angle = 2 * M_PI * static_cast<double>(signed_used[u]) * m / zoom_len;
                const cd expected(std::cos(angle), std::sin(angle));
                zoom = std::abs(coarse_basis_h[(static_cast<std::size_t>(g) * d_c + c) * d_nu + u] -
                                expected) < 1e-9;
            }
        }
    }
    std::lock_guard<std::mutex> lock(gr::fft::planner::mutex()); // FFTW's planner is not thread safe
    if (zoom) {
        d_zoom_len = zoom_len;
        d_coarse_run = run ? static_cast<int>(((m0 % zoom_len) + zoom_len) % zoom_len) : -1;
        d_zoom_rows = 1;
        d_zoom = static_cast<cd*>(fftw_malloc(sizeof(fftw_complex) * zoom_len));
        // Out of place from a row that stays zero outside the used bins (no clearing per transform).
        d_zoom_in = static_cast<cd*>(fftw_malloc(sizeof(fftw_complex) * zoom_len));
        std::fill(d_zoom_in, d_zoom_in + zoom_len, cd(0.0, 0.0));
        d_zoom_plan = fftw_plan_dft_1d(zoom_len,
                                       reinterpret_cast<fftw_complex*>(d_zoom_in),
                                       reinterpret_cast<fftw_complex*>(d_zoom),
                                       FFTW_BACKWARD,
                                       FFTW_ESTIMATE);
    }
    d_fft_in = static_cast<cd*>(fftw_malloc(sizeof(fftw_complex) * fft_len));
    d_fft_out = static_cast<cd*>(fftw_malloc(sizeof(fftw_complex) * fft_len));
    d_plan = fftw_plan_dft_1d(fft_len,
                              reinterpret_cast<fftw_complex*>(d_fft_in),
                              reinterpret_cast<fftw_complex*>(d_fft_out),
                              FFTW_FORWARD,
                              FFTW_ESTIMATE);
}

ofat_rx_kernels::~ofat_rx_kernels()
{
    std::lock_guard<std::mutex> lock(gr::fft::planner::mutex());
    fftw_destroy_plan(static_cast<fftw_plan>(d_plan));
    if (d_zoom_plan)
        fftw_destroy_plan(static_cast<fftw_plan>(d_zoom_plan));
    fftw_free(d_zoom);
    fftw_free(d_zoom_in);
    fftw_free(d_fft_in);
    fftw_free(d_fft_out);
}

void ofat_rx_kernels::schmidl_cox(
    const cf* x, std::ptrdiff_t row_stride, std::size_t n, double* metric, cd* p) const
{
    const std::size_t half = d_fft_len / 2;
    if (n < static_cast<std::size_t>(d_fft_len))
        return;
    const std::size_t n_out = n - 2 * half + 1;
    // Per position the complex64 sums over antennas (vectorised over positions), then cumulative sums
    // in double, differenced: the numpy method's arithmetic, so the metric agrees to float rounding.
    d_sc_energy.assign(n, 0.0f);
    d_sc_prod.assign(2 * (n - half), 0.0f);
    for (int r = 0; r < d_n_rx; ++r)
        antenna_sums(reinterpret_cast<const float*>(x + r * row_stride), n, half, d_sc_energy.data(),
                     d_sc_prod.data());
    d_sc_cp.resize(n - half + 1);
    d_sc_ce.resize(n + 1);
    cumulative_sums(d_sc_energy.data(), d_sc_prod.data(), n, half, d_sc_ce.data(), d_sc_cp.data());
    sc_metric(d_sc_ce.data(), d_sc_cp.data(), n_out, half, metric, p);
}

void ofat_rx_kernels::windows_fft(const cf* buf,
                                  std::ptrdiff_t row_stride,
                                  std::size_t start,
                                  int first_sym,
                                  int n_sym,
                                  double cfo,
                                  cd* out)
{
    const double scale = 1.0 / std::sqrt(static_cast<double>(d_fft_len)); // norm="ortho"
    const double step = -2.0 * M_PI * cfo;
    // The ramp exp(-2 pi j cfo n), rounded to complex64 (as the numpy method's): exact at each symbol's
    // first sample times exp(-2 pi j cfo i) within the window (i < fft_len, a double-precision
    // recurrence once per call: 64 steps drift ~1e-14, far below float32).
    const std::size_t n_ramp = static_cast<std::size_t>(n_sym) * d_fft_len;
    d_ramp.resize(2 * n_ramp);
    d_window_ramp.resize(2 * static_cast<std::size_t>(d_fft_len));
    const cd rot(std::cos(step), std::sin(step));
    cd phasor(1.0, 0.0);
    for (int i = 0; i < d_fft_len; ++i) {
        d_window_ramp[i] = phasor.real();
        d_window_ramp[d_fft_len + i] = phasor.imag();
        phasor *= rot;
    }
    for (int s = 0; s < n_sym; ++s) {
        const double angle = step * (static_cast<double>(first_sym + s) * d_symbol_len);
        symbol_ramp(std::cos(angle), std::sin(angle), d_window_ramp.data(), d_fft_len,
                    d_ramp.data() + 2 * static_cast<std::size_t>(s) * d_fft_len);
    }
    for (int r = 0; r < d_n_rx; ++r) {
        for (int s = 0; s < n_sym; ++s) {
            const cf* win = buf + r * row_stride + start + static_cast<std::size_t>(s) * d_symbol_len;
            // applied in complex64, as the numpy method does
            derotate(win, d_ramp.data() + 2 * static_cast<std::size_t>(s) * d_fft_len, d_fft_len, d_fft_in);
            fftw_execute(static_cast<fftw_plan>(d_plan));
            scale_copy(d_fft_out, scale, d_fft_len, out + (static_cast<std::size_t>(r) * n_sym + s) * d_fft_len);
        }
    }
}

std::vector<cd> ofat_rx_kernels::delay_ramp(double fraction) const
{
    // The last fraction's ramp again where it is asked for again (fit_taps asks for the refined one up
    // to three times); a bin -k whose +k was computed takes its conjugate (cos and sin of -x are
    // exactly cos x and -sin x): the same values, half the sincos calls (~2 % of receive() by perf).
    if (d_ramp_cache.size() == static_cast<std::size_t>(d_nu) && fraction == d_ramp_fraction)
        return d_ramp_cache;
    std::vector<cd> ramp(d_nu);
    for (int u = 0; u < d_nu; ++u) {
        if (d_mirror[u] >= 0 && d_mirror[u] < u) {
            ramp[u] = std::conj(ramp[d_mirror[u]]);
            continue;
        }
        const double angle = 2 * M_PI * (fraction * d_signed_used[u]) / d_fft_len;
        ramp[u] = cd(std::cos(angle), std::sin(angle));
    }
    d_ramp_cache = ramp;
    d_ramp_fraction = fraction;
    return ramp;
}

std::vector<cd> ofat_rx_kernels::gram_inverse(const std::vector<int>& chosen) const
{
    const int k = static_cast<int>(chosen.size());
    std::vector<cd> a(static_cast<std::size_t>(k) * k), x(static_cast<std::size_t>(k) * k, 0.0);
    for (int i = 0; i < k; ++i) {
        x[i * k + i] = 1.0;
        for (int j = 0; j < k; ++j)
            a[i * k + j] = d_gram[chosen[i] * d_c + chosen[j]];
    }
    eliminate(a, x, k, k);
    back_substitute(a, x, k, k);
    return x;
}

std::vector<int> ofat_rx_kernels::select_taps(const std::vector<cd>& pairs,
                                              int n_pairs,
                                              double threshold,
                                              std::vector<cd>& fit,
                                              bool zoomed) const
{
    // FrameReceiver._select_taps: the greedy steps on c = basis^H pairs and the Gram matrix, the
    // inverse of G[S, S] grown by one row and column per step through the Schur complement.
    // zoomed: pairs are those of the last zoom_transform, whose integer grid gives c.
    const int P = n_pairs, C = d_c;
    std::vector<cd> c(static_cast<std::size_t>(C) * P);
    if (zoomed && d_zoom_len)
        coarse_correlations(pairs.data(), P, d_grid_shift, c);
    else
        product(d_basis_h.data(), C, d_nu, pairs.data(), P, c.data());
    const double limit = threshold * P * static_cast<double>(d_nu) * d_nu;
    // corr (C, P) split into real and imaginary rows (the updates below vectorise), its row powers
    std::vector<double> corr(2 * static_cast<std::size_t>(C) * P), powers(C), qs(2 * static_cast<std::size_t>(C)),
        row(2 * static_cast<std::size_t>(P));
    double* cr = corr.data();
    double* ci = cr + static_cast<std::size_t>(C) * P;
    for (std::size_t i = 0; i < static_cast<std::size_t>(C) * P; ++i) {
        cr[i] = c[i].real();
        ci[i] = c[i].imag();
    }
    std::vector<cd> inv, u;
    std::vector<int> chosen;
    std::vector<char> taken(C, 0);
    for (int step = 0; step < C; ++step) {
        int best = -1;
        double best_score = -std::numeric_limits<double>::infinity();
        row_powers(cr, ci, C, P, powers.data());
        for (int i = 0; i < C; ++i)
            if (!taken[i] && powers[i] > best_score) {
                best_score = powers[i];
                best = i;
            }
        if (best < 0 || (best_score <= limit && !chosen.empty()))
            break;
        const int k = static_cast<int>(chosen.size());
        u.assign(k, 0.0);
        for (int a = 0; a < k; ++a)
            for (int b = 0; b < k; ++b)
                u[a] += inv[a * k + b] * d_gram[chosen[b] * C + best];
        cd gu(0.0, 0.0);
        for (int a = 0; a < k; ++a)
            gu += std::conj(d_gram[chosen[a] * C + best]) * u[a];
        const double schur = (d_gram[best * C + best] - gu).real();
        for (int i = 0; i < C; ++i) {
            cd s(0.0, 0.0);
            for (int a = 0; a < k; ++a)
                s += d_gram[i * C + chosen[a]] * u[a];
            const cd qi = (d_gram[i * C + best] - s) / schur;
            qs[i] = qi.real();
            qs[C + i] = qi.imag();
        }
        std::copy_n(cr + static_cast<std::size_t>(best) * P, P, row.data());
        std::copy_n(ci + static_cast<std::size_t>(best) * P, P, row.data() + P);
        subtract_outer(qs.data(), qs.data() + C, row.data(), row.data() + P, C, P, cr, ci);
        std::vector<cd> grown(static_cast<std::size_t>(k + 1) * (k + 1));
        for (int a = 0; a < k; ++a) {
            for (int b = 0; b < k; ++b)
                grown[a * (k + 1) + b] = inv[a * k + b] + u[a] * std::conj(u[b]) / schur;
            grown[a * (k + 1) + k] = -u[a] / schur;
            grown[k * (k + 1) + a] = -std::conj(u[a]) / schur;
        }
        grown[k * (k + 1) + k] = 1.0 / schur;
        inv.swap(grown);
        chosen.push_back(best);
        taken[best] = 1;
    }
    std::vector<cd> c_chosen;
    for (int a : chosen)
        c_chosen.insert(c_chosen.end(), c.begin() + a * P, c.begin() + (a + 1) * P);
    fit = fit_from(inv, c_chosen, chosen, P);
    return chosen;
}

std::vector<cd> ofat_rx_kernels::fit_from(const std::vector<cd>& inv,
                                          const std::vector<cd>& c_chosen,
                                          const std::vector<int>& chosen,
                                          int n_pairs) const
{
    // basis[:, chosen] @ (inv @ c_chosen): the least-squares fit from the taps' correlations (k, P).
    const int k = static_cast<int>(chosen.size()), P = n_pairs;
    std::vector<cd> coef(static_cast<std::size_t>(k) * P), sub(static_cast<std::size_t>(d_nu) * k);
    product(inv.data(), k, k, c_chosen.data(), P, coef.data());
    for (int uu = 0; uu < d_nu; ++uu)
        for (int a = 0; a < k; ++a)
            sub[static_cast<std::size_t>(uu) * k + a] = d_basis[uu * d_c + chosen[a]];
    std::vector<cd> fit(static_cast<std::size_t>(d_nu) * P);
    product(sub.data(), d_nu, k, coef.data(), P, fit.data());
    return fit;
}

std::vector<cd> ofat_rx_kernels::fit_on(const std::vector<cd>& pairs,
                                        int n_pairs,
                                        const std::vector<int>& chosen) const
{
    const int k = static_cast<int>(chosen.size()), P = n_pairs;
    std::vector<cd> rows(static_cast<std::size_t>(k) * d_nu), c(static_cast<std::size_t>(k) * P);
    for (int a = 0; a < k; ++a)
        std::copy_n(d_basis_h.data() + static_cast<std::size_t>(chosen[a]) * d_nu, d_nu,
                    rows.data() + static_cast<std::size_t>(a) * d_nu);
    product(rows.data(), k, d_nu, pairs.data(), P, c.data());
    return fit_from(gram_inverse(chosen), c, chosen, P);
}

void ofat_rx_kernels::zoom_transform(const cd* pairs, int n_pairs)
{
    // Each pair's inverse DFT of length G fft (the pairs at their signed bins): every shifted grid's
    // tap correlations at once (coarse_correlations), the integer grid's at G t.
    const int P = n_pairs;
    {
        if (d_zoom_rows < P) { // new-array execution: every row stays as aligned as the planned one
            fftw_free(d_zoom);
            d_zoom = static_cast<cd*>(fftw_malloc(sizeof(fftw_complex) * d_zoom_len * P));
            d_zoom_rows = P;
        }
        for (int p = 0; p < P; ++p) {
            for (int u = 0; u < d_nu; ++u) {
                const int k = static_cast<int>(d_signed_used[u]);
                d_zoom_in[((k % d_zoom_len) + d_zoom_len) % d_zoom_len] = pairs[u * P + p];
            }
            fftw_execute_dft(static_cast<fftw_plan>(d_zoom_plan),
                             reinterpret_cast<fftw_complex*>(d_zoom_in),
                             reinterpret_cast<fftw_complex*>(d_zoom + static_cast<std::size_t>(p) * d_zoom_len));
        }
    }
}

void ofat_rx_kernels::coarse_correlations(const cd* pairs, int n_pairs, int g, std::vector<cd>& c) const
{
    // c (C, P) = coarse_basis_h[g] @ pairs: read from the pairs' zoom_transform, or computed directly.
    const int P = n_pairs;
    if (!d_zoom_len) {
        product(d_coarse_basis_h.data() + static_cast<std::size_t>(g) * d_c * d_nu, d_c, d_nu, pairs, P, c.data());
        return;
    }
    const int* index = d_coarse_index.data() + static_cast<std::size_t>(g) * d_c;
    for (int i = 0; i < d_c; ++i)
        for (int p = 0; p < P; ++p)
            c[i * P + p] = d_zoom[static_cast<std::size_t>(p) * d_zoom_len + index[i]];
}

double ofat_rx_kernels::coarse_fraction(const cd* pairs,
                                        int n_pairs,
                                        double tap_penalty,
                                        std::vector<int>& strongest) const
{
    // FrameReceiver._coarse_fraction: per shift, the fit on its strongest taps scored by Mallows' Cp.
    const int P = n_pairs, C = d_c, K = std::min(d_coarse_taps, d_c), G = d_g;
    // Every shift's tap powers summed over the pairs, (G, C), in the pairs' order (numpy's sum). From the
    // zoom transform the G shifts of one tap are adjacent outputs, so each pair's row is read in order.
    std::vector<double> profile(static_cast<std::size_t>(G) * C, 0.0);
    std::vector<cd> direct; // (G, C, P) without a zoom transform
    if (d_zoom_len && d_coarse_run >= 0) {
        // Outputs d_coarse_run + G c + g (cyclically): one run of G C powers per pair, then (G, C).
        const int span = G * C, first = std::min(span, d_zoom_len - d_coarse_run);
        std::vector<double> power(span, 0.0);
        for (int p = 0; p < P; ++p) {
            const cd* z = d_zoom + static_cast<std::size_t>(p) * d_zoom_len;
            add_powers(z + d_coarse_run, first, power.data());
            add_powers(z, span - first, power.data() + first);
        }
        for (int i = 0; i < C; ++i)
            for (int g = 0; g < G; ++g)
                profile[g * C + i] = power[i * G + g];
    } else if (d_zoom_len) {
        for (int p = 0; p < P; ++p) {
            const cd* z = d_zoom + static_cast<std::size_t>(p) * d_zoom_len;
            for (int i = 0; i < C; ++i)
                for (int g = 0; g < G; ++g)
                    profile[g * C + i] += norm2(z[d_coarse_index[g * C + i]]);
        }
    } else {
        direct.resize(static_cast<std::size_t>(G) * C * P);
        std::vector<cd> c(static_cast<std::size_t>(C) * P);
        for (int g = 0; g < G; ++g) {
            coarse_correlations(pairs, P, g, c);
            std::copy(c.begin(), c.end(), direct.begin() + static_cast<std::size_t>(g) * C * P);
            for (int i = 0; i < C; ++i)
                for (int p = 0; p < P; ++p)
                    profile[g * C + i] += norm2(c[i * P + p]);
        }
    }
    // (G, K) each: the strongest taps in order, the energy their first k + 1 capture
    std::vector<int> order(static_cast<std::size_t>(G) * K, -1);
    std::vector<double> captured(static_cast<std::size_t>(G) * K);
    std::vector<int> n_taps(G);
    std::vector<double> cp_min(G);
    std::vector<cd> a(static_cast<std::size_t>(K) * K);
    std::vector<double> factors(2 * static_cast<std::size_t>(K) * K), xs(2 * static_cast<std::size_t>(G) * K * P);
    for (int g = 0; g < G; ++g) {
        // The K strongest, ties in index order (numpy's stable argsort of -profile, first K): each tap's
        // rank is the number of taps before it in that order (no branch per comparison).
        const double* prof = profile.data() + static_cast<std::size_t>(g) * C;
        for (int i = 0; i < C; ++i) {
            int rank = 0;
            for (int j = 0; j < C; ++j)
                rank += (prof[j] > prof[i]) | ((prof[j] == prof[i]) & (j < i));
            if (rank < K)
                order[g * K + rank] = i;
        }
        if (std::find(order.begin() + g * K, order.begin() + (g + 1) * K, -1) != order.begin() + (g + 1) * K) {
            // unordered (NaN) powers: the plain selection
            std::vector<char> taken(C, 0);
            for (int j = 0; j < K; ++j) {
                int best_i = -1;
                for (int i = 0; i < C; ++i)
                    if (!taken[i] && (best_i < 0 || prof[i] > prof[best_i]))
                        best_i = i;
                order[g * K + j] = best_i;
                taken[best_i] = 1;
            }
        }
    }
    // Every shift's K x P correlations of its strongest taps, split into real and imaginary rows; with
    // the zoom transform read pair by pair (each pair's outputs together rather than 16 rows at once).
    auto rows_of = [&](int g) { return xs.data() + 2 * static_cast<std::size_t>(g) * K * P; };
    if (d_zoom_len) {
        for (int p = 0; p < P; ++p) {
            const cd* z = d_zoom + static_cast<std::size_t>(p) * d_zoom_len;
            for (int g = 0; g < G; ++g) {
                double* xr = rows_of(g);
                const int* index = d_coarse_index.data() + static_cast<std::size_t>(g) * C;
                for (int i = 0; i < K; ++i) {
                    const cd v = z[index[order[g * K + i]]];
                    xr[i * P + p] = v.real();
                    xr[(K + i) * P + p] = v.imag();
                }
            }
        }
    } else {
        for (int g = 0; g < G; ++g)
            for (int i = 0; i < K; ++i)
                for (int p = 0; p < P; ++p) {
                    const cd v = direct[(static_cast<std::size_t>(g) * C + order[g * K + i]) * P + p];
                    rows_of(g)[i * P + p] = v.real();
                    rows_of(g)[(K + i) * P + p] = v.imag();
                }
    }
    for (int g = 0; g < G; ++g) {
        const int* o = order.data() + static_cast<std::size_t>(g) * K;
        double* xr = rows_of(g);
        double* xi = xr + static_cast<std::size_t>(K) * P;
        for (int i = 0; i < K; ++i)
            for (int j = 0; j < K; ++j)
                a[i * K + j] = d_gram[o[i] * C + o[j]];
        elimination_factors(a, K, factors.data());
        eliminate_split(factors.data(), K, P, xr, xi);
        double total = 0.0;
        int best_k = 0;
        double best_cp = std::numeric_limits<double>::infinity();
        for (int i = 0; i < K; ++i) {
            double s = 0.0;
            for (int p = 0; p < P; ++p)
                s += xr[i * P + p] * xr[i * P + p] + xi[i * P + p] * xi[i * P + p];
            total += s / a[i * K + i].real();
            captured[g * K + i] = total;
            const double cp = -total + tap_penalty * (i + 1);
            if (cp < best_cp) {
                best_cp = cp;
                best_k = i;
            }
        }
        n_taps[g] = best_k;
        cp_min[g] = best_cp;
    }
    const int best = static_cast<int>(std::min_element(cp_min.begin(), cp_min.end()) - cp_min.begin());
    strongest.clear();
    if (cp_min[d_grid_shift] <= cp_min[best])
        return 0.0; // the integer grid fits as well (ties included)
    std::vector<double> y(G);
    for (int g = 0; g < G; ++g)
        y[g] = captured[g * K + n_taps[best]];
    strongest.assign(order.begin() + best * K, order.begin() + best * K + n_taps[best] + 1);
    std::sort(strongest.begin(), strongest.end());
    return parabola_peak_cyclic(d_coarse_fractions, y);
}

double ofat_rx_kernels::refine_fraction(const cd* pairs,
                                        int n_pairs,
                                        const std::vector<int>& chosen,
                                        double fraction) const
{
    // FrameReceiver._refine_fraction: Newton steps on E(f) = sum c^H G^-1 c over the pairs.
    const int k = static_cast<int>(chosen.size()), P = n_pairs;
    const std::vector<cd> inv = gram_inverse(chosen);
    std::vector<cd> pr(static_cast<std::size_t>(d_nu) * P), cdd(3 * static_cast<std::size_t>(k) * P),
        gh(2 * static_cast<std::size_t>(k) * P);
    // The chosen taps' rows of basis^H weighted by 1, j omega, -omega^2: (3 k, Nu), one product per step.
    std::vector<cd> rows(3 * static_cast<std::size_t>(k) * d_nu);
    for (int m = 0; m < 3; ++m)
        for (int a = 0; a < k; ++a)
            std::copy_n(d_derivative_basis_h.data() + (static_cast<std::size_t>(m) * d_c + chosen[a]) * d_nu, d_nu,
                        rows.data() + (static_cast<std::size_t>(m) * k + a) * d_nu);
    for (int step = 0; step < d_newton_steps; ++step) {
        const std::vector<cd> ramp = delay_ramp(fraction);
        for (int uu = 0; uu < d_nu; ++uu)
            for (int p = 0; p < P; ++p)
                pr[uu * P + p] = pairs[uu * P + p] * ramp[uu];
        product(rows.data(), 3 * k, d_nu, pr.data(), P, cdd.data());
        const cd* c0 = cdd.data();
        const cd* d1 = c0 + static_cast<std::size_t>(k) * P;
        const cd* d2 = d1 + static_cast<std::size_t>(k) * P;
        product(inv.data(), k, k, c0, P, gh.data());                                   // G^-1 c
        product(inv.data(), k, k, d1, P, gh.data() + static_cast<std::size_t>(k) * P); // G^-1 dc/df
        double slope = 0.0, curv_a = 0.0, curv_b = 0.0;
        for (std::size_t i = 0; i < static_cast<std::size_t>(k) * P; ++i) {
            const cd g = gh[i], h = gh[static_cast<std::size_t>(k) * P + i];
            slope += d1[i].real() * g.real() + d1[i].imag() * g.imag();  // Re(conj(d1) g)
            curv_a += d2[i].real() * g.real() + d2[i].imag() * g.imag();
            curv_b += d1[i].real() * h.real() + d1[i].imag() * h.imag();
        }
        slope *= 2;
        const double curvature = 2 * (curv_a + curv_b);
        if (curvature >= 0)
            break; // not near a maximum: keep the coarse estimate
        fraction -= std::clamp(slope / curvature, -0.25, 0.25);
    }
    return fraction;
}

ofat_rx_kernels::fit_result
ofat_rx_kernels::fit_taps(const cd* pairs_in, int n_pairs, double threshold, bool zoomed)
{
    // FrameReceiver._fit_taps with align_fraction (the receiver's default).
    const int P = n_pairs;
    const std::size_t n = static_cast<std::size_t>(d_nu) * P;
    const std::vector<cd> pairs(pairs_in, pairs_in + n);
    fit_result out;
    const double tap_penalty = 2.0 / 3.0 * threshold * d_nu * P;
    std::vector<int> strongest;
    if (d_zoom_len && !zoomed)
        zoom_transform(pairs.data(), P);
    double fraction = coarse_fraction(pairs.data(), P, tap_penalty, strongest);
    if (std::abs(fraction) < 0.5 / d_g) {
        out.chosen = select_taps(pairs, P, threshold, out.fit, true); // on the sample grid: the integer fit
        return out;
    }
    auto shifted_pairs = [&](double f) {
        const std::vector<cd> ramp = delay_ramp(f);
        std::vector<cd> s(n);
        for (int uu = 0; uu < d_nu; ++uu)
            for (int p = 0; p < P; ++p)
                s[uu * P + p] = pairs[uu * P + p] * ramp[uu];
        return s;
    };
    fraction = refine_fraction(pairs.data(), P, strongest, fraction);
    std::vector<cd> fit;
    std::vector<int> shifted = select_taps(shifted_pairs(fraction), P, threshold, fit);
    std::vector<int> shifted_sorted = shifted;
    std::sort(shifted_sorted.begin(), shifted_sorted.end());
    if (shifted_sorted != strongest) {
        // Refined on other taps than the shifted grid keeps: once more on these, then their fit.
        fraction = refine_fraction(pairs.data(), P, shifted, fraction);
        fit = fit_on(shifted_pairs(fraction), P, shifted);
    }
    const std::vector<cd> ramp = delay_ramp(fraction);
    for (int uu = 0; uu < d_nu; ++uu)
        for (int p = 0; p < P; ++p)
            fit[uu * P + p] *= std::conj(ramp[uu]);
    if (static_cast<int>(strongest.size()) < d_coarse_taps) {
        out.chosen = shifted;
        out.fit = std::move(fit);
        out.fraction = fraction;
        return out;
    }
    // The coarse Cp ran out of taps: compare the shifted fit with the integer grid's by their Cp.
    std::vector<cd> fitted;
    std::vector<int> chosen = select_taps(pairs, P, threshold, fitted, true);
    auto cp_cost = [&](const std::vector<cd>& estimate, std::size_t n_taps) {
        double s = 0.0;
        for (std::size_t i = 0; i < n; ++i)
            s += norm2(pairs[i] - estimate[i]);
        return s + tap_penalty * static_cast<double>(n_taps);
    };
    if (cp_cost(fit, shifted.size()) < cp_cost(fitted, chosen.size())) {
        out.chosen = shifted;
        out.fit = std::move(fit);
        out.fraction = fraction;
    } else {
        out.chosen = chosen;
        out.fit = std::move(fitted);
    }
    return out;
}

void ofat_rx_kernels::set_frame(int n_tx,
                                int n_preamble_symbols,
                                int n_train_symbols,
                                int n_header_symbols,
                                const std::vector<int>& used_bins,
                                const std::vector<int>& int_shifts,
                                const std::vector<int>& shift_bins,
                                const std::vector<int>& adjacent,
                                const std::vector<cd>& train_conj,
                                const std::vector<cd>& cover_conj,
                                const std::vector<cd>& training_sequence,
                                const std::vector<cd>& far_basis_h,
                                const std::vector<int>& far_taps,
                                const std::vector<cd>& cdd,
                                const std::vector<int>& pilot_index,
                                const std::vector<int>& data_index,
                                const std::vector<double>& pilot_table,
                                bool linear_phase,
                                int header_reps,
                                const std::vector<int>& header_scrambler)
{
    const std::size_t nu = d_nu;
    if (n_tx < 1 || n_train_symbols < 2 * n_tx || n_header_symbols < 1 || used_bins.size() != nu ||
        int_shifts.empty() || shift_bins.size() != int_shifts.size() * nu || train_conj.size() != nu ||
        cover_conj.size() != static_cast<std::size_t>(n_train_symbols) * n_tx ||
        training_sequence.size() != nu || far_basis_h.empty() || far_basis_h.size() % nu ||
        cdd.size() != static_cast<std::size_t>(n_tx) * nu || pilot_index.empty() ||
        pilot_table.size() % pilot_index.size() ||
        pilot_table.size() / pilot_index.size() < static_cast<std::size_t>(n_header_symbols))
        throw std::invalid_argument("ofat_rx_kernels::set_frame: inconsistent frame layout arrays");
    for (int a : adjacent)
        if (a < 0 || a + 1 >= d_nu)
            throw std::invalid_argument("ofat_rx_kernels::set_frame: adjacent pair outside the used bins");
    for (std::size_t s = 0; s < int_shifts.size(); ++s) // adjacent used bins stay adjacent when shifted
        for (int a : adjacent)
            if (shift_bins[s * nu + a + 1] != (shift_bins[s * nu + a] + 1) % d_fft_len)
                throw std::invalid_argument("ofat_rx_kernels::set_frame: shifted adjacent bins not adjacent");
    for (const auto* idx : { &used_bins, &shift_bins })
        for (int b : *idx)
            if (b < 0 || b >= d_fft_len)
                throw std::invalid_argument("ofat_rx_kernels::set_frame: bin outside the FFT");
    for (const auto* idx : { &pilot_index, &data_index })
        for (int i : *idx)
            if (i < 0 || i >= d_nu)
                throw std::invalid_argument("ofat_rx_kernels::set_frame: index outside the used bins");
    d_n_tx = n_tx;
    d_t0 = n_preamble_symbols;
    d_n_train = n_train_symbols;
    d_n_head = n_header_symbols;
    d_used_bins = used_bins;
    d_int_shifts = int_shifts;
    d_shift_bins = shift_bins;
    d_adjacent = adjacent;
    d_train_conj = train_conj;
    d_adjacent_code_re.clear();
    d_adjacent_code_im.clear();
    for (int a : adjacent) {
        const cd code = std::conj(train_conj[a]) * train_conj[a + 1];
        d_adjacent_code_re.push_back(code.real());
        d_adjacent_code_im.push_back(code.imag());
    }
    d_adjacent_bins.clear(); // (S, A): the first bin of each adjacent pair under each shift
    for (std::size_t sh = 0; sh < int_shifts.size(); ++sh)
        for (int a : adjacent)
            d_adjacent_bins.push_back(shift_bins[sh * nu + a]);
    d_cover_conj = cover_conj;
    d_training_sequence = training_sequence;
    // sqrt(Nt) / T / c_u, once (the numpy method's factor array, the same arithmetic)
    d_ls_scale.resize(nu);
    for (std::size_t u = 0; u < nu; ++u)
        d_ls_scale[u] = std::sqrt(static_cast<double>(n_tx)) / n_train_symbols / training_sequence[u];
    d_far_basis_h = far_basis_h;
    // Far taps read from the zoom transform at G t where far_basis_h is exp(2 pi j k t / fft), t integer.
    d_far_index.clear();
    if (d_zoom_len) {
        const int n_far = static_cast<int>(far_basis_h.size() / nu);
        if (far_taps.size() != static_cast<std::size_t>(n_far))
            throw std::invalid_argument("ofat_rx_kernels::set_frame: far_taps and far_basis_h differ in size");
        for (int f = 0; f < n_far; ++f) {
            const long tap = far_taps[f];
            bool same = true;
            for (int u = 0; u < d_nu && same; ++u) {
                const double angle = 2 * M_PI * d_signed_used[u] * static_cast<double>(tap) / d_fft_len;
                same = std::abs(far_basis_h[static_cast<std::size_t>(f) * nu + u] -
                                cd(std::cos(angle), std::sin(angle))) < 1e-9;
            }
            if (!same) {
                d_far_index.clear();
                break;
            }
            d_far_index.push_back(static_cast<int>(((d_g * tap) % d_zoom_len + d_zoom_len) % d_zoom_len));
        }
    }
    d_cdd = cdd;
    d_pilot_index = pilot_index;
    d_data_index = data_index;
    d_pilot_table = pilot_table;
    d_pilot_rows = static_cast<int>(pilot_table.size() / pilot_index.size());
    d_linear_phase = linear_phase;
    if (header_reps < 1 || header_scrambler.empty() ||
        header_scrambler.size() * header_reps > static_cast<std::size_t>(n_header_symbols) * data_index.size())
        throw std::invalid_argument("ofat_rx_kernels::set_frame: the header repetitions do not fit its symbols");
    d_header_reps = header_reps;
    d_header_scrambler = header_scrambler;
}

std::vector<double> ofat_rx_kernels::phases(const cd* y, int n_sym, const cd* g) const
{
    // FrameReceiver._phases(y, g, 0) on y (Nr, n_sym, Nu): the pilots' common phase per symbol.
    const int n_pilots = static_cast<int>(d_pilot_index.size());
    std::vector<cd> z(n_sym, cd(0.0, 0.0));
    for (int r = 0; r < d_n_rx; ++r)
        for (int m = 0; m < n_sym; ++m) {
            const cd* row = y + (static_cast<std::size_t>(r) * n_sym + m) * d_nu;
            const double* pv = d_pilot_table.data() + static_cast<std::size_t>(m) * n_pilots;
            for (int p = 0; p < n_pilots; ++p) {
                const int u = d_pilot_index[p];
                z[m] += std::conj(g[r * d_nu + u] * pv[p]) * row[u];
            }
        }
    std::vector<double> out(n_sym);
    if (!d_linear_phase || n_sym < 2) {
        for (int m = 0; m < n_sym; ++m)
            out[m] = std::arg(z[m]);
        return out;
    }
    cd step(0.0, 0.0);
    for (int m = 0; m + 1 < n_sym; ++m)
        step += std::conj(z[m]) * z[m + 1];
    const double slope = std::arg(step);
    cd start(0.0, 0.0);
    for (int m = 0; m < n_sym; ++m) {
        const double angle = -slope * m;
        start += z[m] * cd(std::cos(angle), std::sin(angle));
    }
    const double phase0 = std::arg(start);
    for (int m = 0; m < n_sym; ++m)
        out[m] = phase0 + slope * m;
    return out;
}

std::ptrdiff_t ofat_rx_kernels::first_above(const double* metric, std::size_t n, double threshold)
{
    for (std::size_t i = 0; i < n; ++i)
        if (metric[i] > threshold)
            return static_cast<std::ptrdiff_t>(i);
    return -1;
}

std::tuple<double, std::size_t, ofat_rx_kernels::cd>
ofat_rx_kernels::plateau(const double* metric, const cd* p, std::size_t n)
{
    if (n == 0)
        throw std::invalid_argument("ofat_rx_kernels::plateau: empty window");
    const double peak = *std::max_element(metric, metric + n);
    std::size_t lo = n, hi = 0;
    cd sum(0.0, 0.0);
    for (std::size_t i = 0; i < n; ++i)
        if (metric[i] >= 0.9 * peak) {
            lo = std::min(lo, i);
            hi = i;
            sum += p[i];
        }
    return { peak, (lo + hi) / 2, sum };
}

ofat_rx_kernels::front_result ofat_rx_kernels::front(
    const cf* buf, std::ptrdiff_t row_stride, std::size_t n_cols, std::size_t body, double cfo)
{
    if (!frame_configured())
        throw std::logic_error("ofat_rx_kernels::front: set_frame first");
    const int T = d_n_train, Hs = d_n_head, Nt = d_n_tx, Nr = d_n_rx, Nu = d_nu, F = d_fft_len;
    if (body + static_cast<std::size_t>(d_t0 + T + Hs) * d_symbol_len > n_cols)
        throw std::invalid_argument("ofat_rx_kernels::front: the header is not in the buffer");
    front_result out;
    // Integer CFO: the even bin shift whose descrambled training bins are smoothest (_integer_shift).
    d_full.resize(static_cast<std::size_t>(Nr) * (T + Hs) * F);
    const std::size_t t_start = body + static_cast<std::size_t>(d_t0) * d_symbol_len;
    windows_fft(buf, row_stride, t_start, d_t0, T, cfo, d_full.data());
    // conj(w_b c_a) w_b' c_a+1 = (conj(w_b) w_b') (conj(c_a) c_a+1): the bins' adjacent products once per
    // window, the sequence's (d_adjacent_code_re/_im) once per layout (adjacent_scores).
    const int n_shifts = static_cast<int>(d_int_shifts.size());
    const int A = static_cast<int>(d_adjacent.size());
    std::vector<double> scores(n_shifts, 0.0);
    adjacent_scores(d_full.data(), Nr * T, F, d_adjacent_bins.data(), d_adjacent_code_re.data(),
                    d_adjacent_code_im.data(), A, n_shifts, scores.data());
    int best_shift = 0;
    for (int s = 1; s < n_shifts; ++s)
        if (scores[s] > scores[best_shift])
            best_shift = s;
    const int shift = d_int_shifts[best_shift];
    // An integer bin shift of the ramp is a bin shift of the FFT and a phase per symbol.
    d_symbols.resize(static_cast<std::size_t>(Nr) * T * Nu); // every element written below
    std::vector<cd>& yt = d_symbols;
    for (int t = 0; t < T; ++t) {
        const double sym_start = static_cast<double>(d_t0 + t) * d_symbol_len;
        const double angle = -2 * M_PI * shift * sym_start / F;
        const cd rot = shift ? cd(std::cos(angle), std::sin(angle)) : cd(1.0, 0.0);
        for (int r = 0; r < Nr; ++r) {
            const cd* w = d_full.data() + (static_cast<std::size_t>(r) * T + t) * F;
            cd* o = yt.data() + (static_cast<std::size_t>(r) * T + t) * Nu;
            for (int u = 0; u < Nu; ++u)
                o[u] = shift ? w[((d_used_bins[u] + shift) % F + F) % F] * rot : w[d_used_bins[u]];
        }
    }
    cfo += static_cast<double>(shift) / F;
    // Repeated training symbols are identical: their phase step is the residual CFO (_refined_cfo).
    cd c(0.0, 0.0);
    for (int r = 0; r < Nr; ++r)
        for (int t = 0; t + Nt < T; ++t) {
            const cd* a = yt.data() + (static_cast<std::size_t>(r) * T + t) * Nu;
            const cd* b = a + static_cast<std::size_t>(Nt) * Nu;
            for (int u = 0; u < Nu; ++u)
                c += std::conj(a[u]) * b[u];
        }
    cfo += std::arg(c) / (2 * M_PI * Nt * d_symbol_len);
    out.cfo = cfo;
    windows_fft(buf, row_stride, t_start, d_t0, T + Hs, cfo, d_full.data());
    out.yh.resize(static_cast<std::size_t>(Nr) * Hs * Nu);
    for (int r = 0; r < Nr; ++r)
        for (int m = 0; m < T + Hs; ++m) {
            const cd* w = d_full.data() + (static_cast<std::size_t>(r) * (T + Hs) + m) * F;
            cd* o = m < T ? yt.data() + (static_cast<std::size_t>(r) * T + m) * Nu
                          : out.yh.data() + (static_cast<std::size_t>(r) * Hs + m - T) * Nu;
            for (int u = 0; u < Nu; ++u)
                o[u] = w[d_used_bins[u]];
        }
    // Channel estimate (_estimate_channel, the repetitions' noise): LS, own-training check, noise, taps.
    const int P = Nr * Nt;
    std::vector<cd> pairs(static_cast<std::size_t>(Nu) * P);
    std::vector<double> acc(2 * static_cast<std::size_t>(Nu));
    for (int r = 0; r < Nr; ++r)
        for (int a = 0; a < Nt; ++a) {
            // sum over t of yt[r, t, :] conj(cover[t, a]), in t order, over all subcarriers at once
            std::fill(acc.begin(), acc.end(), 0.0);
            for (int t = 0; t < T; ++t)
                multiply_add(yt.data() + (static_cast<std::size_t>(r) * T + t) * Nu, d_cover_conj[t * Nt + a], Nu,
                             acc.data(), acc.data() + Nu);
            for (int u = 0; u < Nu; ++u)
                pairs[static_cast<std::size_t>(u) * P + r * Nt + a] = cd(acc[u], acc[Nu + u]) * d_ls_scale[u];
        }
    // The pairs' tap correlations near (the candidate taps) and far: from their zoom transform (also
    // fit_taps'), or directly.
    const int n_far = static_cast<int>(d_far_basis_h.size() / Nu);
    std::vector<cd> proj(static_cast<std::size_t>(std::max(n_far, d_c)) * P);
    if (d_zoom_len && !d_far_index.empty()) {
        zoom_transform(pairs.data(), P);
        for (int f = 0; f < n_far; ++f)
            for (int p = 0; p < P; ++p)
                proj[f * P + p] = d_zoom[static_cast<std::size_t>(p) * d_zoom_len + d_far_index[f]];
    } else {
        product(d_far_basis_h.data(), n_far, Nu, pairs.data(), P, proj.data());
    }
    double far_total = 0.0;
    for (std::size_t i = 0; i < static_cast<std::size_t>(n_far) * P; ++i)
        far_total += norm2(proj[i]);
    const bool zoomed = d_zoom_len && !d_far_index.empty();
    if (zoomed)
        coarse_correlations(pairs.data(), P, d_grid_shift, proj);
    else
        product(d_basis_h.data(), d_c, Nu, pairs.data(), P, proj.data());
    double near_max = 0.0;
    for (int i = 0; i < d_c; ++i) {
        double s = 0.0;
        for (int p = 0; p < P; ++p)
            s += norm2(proj[i * P + p]);
        near_max = std::max(near_max, s);
    }
    out.own_training = near_max > 10.0 * std::max(far_total / n_far, 1e-30); // OWN_TRAINING_RATIO
    double diff = 0.0;
    for (int r = 0; r < Nr; ++r)
        for (int t = 0; t + Nt < T; ++t) {
            const cd* a = yt.data() + (static_cast<std::size_t>(r) * T + t) * Nu;
            const cd* b = a + static_cast<std::size_t>(Nt) * Nu;
            for (int u = 0; u < Nu; ++u)
                diff += norm2(b[u] - a[u]);
        }
    out.noise_var = std::max(diff / (static_cast<double>(Nr) * (T - Nt) * Nu) / 2, 1e-12);
    const double ls_noise = out.noise_var * Nt / T;
    fit_result fit = fit_taps(pairs.data(), P, 3.0 * ls_noise / Nu, zoomed);
    out.err_var = ls_noise * fit.chosen.size() / Nu;
    out.chosen = std::move(fit.chosen);
    out.fraction = fit.fraction;
    out.h.resize(static_cast<std::size_t>(Nr) * Nt * Nu);
    out.g.resize(static_cast<std::size_t>(Nr) * Nu);
    for (int r = 0; r < Nr; ++r) {
        // g[r] = sum over a of h[r, a] cdd[a], added in a's order
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int a = 0; a < Nt; ++a) {
            cd* hr = out.h.data() + (static_cast<std::size_t>(r) * Nt + a) * Nu;
            for (int u = 0; u < Nu; ++u)
                hr[u] = fit.fit[static_cast<std::size_t>(u) * P + r * Nt + a];
            multiply_add_rows(hr, d_cdd.data() + static_cast<std::size_t>(a) * Nu, Nu, acc.data(), acc.data() + Nu);
        }
        for (int u = 0; u < Nu; ++u)
            out.g[static_cast<std::size_t>(r) * Nu + u] = cd(acc[u], acc[Nu + u]);
    }
    // Header: common phase from the pilots, then the maximum-ratio combined LLRs (_channel_and_header).
    const std::vector<double> ph = phases(out.yh.data(), Hs, out.g.data());
    const int K = static_cast<int>(d_data_index.size());
    out.llr.resize(static_cast<std::size_t>(Hs) * K);
    for (int m = 0; m < Hs; ++m) {
        const double dr = std::cos(-ph[m]), di = std::sin(-ph[m]);
        for (int k = 0; k < K; ++k) {
            const int u = d_data_index[k];
            double sr = 0.0;
            for (int r = 0; r < Nr; ++r) {
                // real part of conj(g) (yh derot), as the numpy method's complex products
                const cd gv = out.g[static_cast<std::size_t>(r) * Nu + u];
                const cd yv = out.yh[(static_cast<std::size_t>(r) * Hs + m) * Nu + u];
                const double tr = yv.real() * dr - yv.imag() * di, ti = yv.real() * di + yv.imag() * dr;
                sr += gv.real() * tr + gv.imag() * ti;
            }
            out.llr[static_cast<std::size_t>(m) * K + k] = 4.0 * sr / out.noise_var;
        }
    }
    // frame.combine_header_llrs: the first header_reps x HEADER_BITS LLRs summed over the repetitions
    // (in their order), then the descrambled hard bits (a negative sum is bit 1).
    const int n_bits = static_cast<int>(d_header_scrambler.size());
    out.header_bits.resize(n_bits);
    for (int i = 0; i < n_bits; ++i) {
        double sum = out.llr[i];
        for (int q = 1; q < d_header_reps; ++q)
            sum += out.llr[static_cast<std::size_t>(q) * n_bits + i];
        out.header_bits[i] = static_cast<std::uint8_t>((sum < 0.0) ^ (d_header_scrambler[i] != 0));
    }
    return out;
}

double ofat_rx_kernels::data(const cf* buf,
                             std::ptrdiff_t row_stride,
                             std::size_t n_cols,
                             std::size_t body,
                             double cfo,
                             const cd* g,
                             const cd* yh,
                             const cd* h,
                             int n_data,
                             cf* y_out,
                             cf* h_out)
{
    if (!frame_configured())
        throw std::logic_error("ofat_rx_kernels::data: set_frame first");
    const int Hs = d_n_head, Nt = d_n_tx, Nr = d_n_rx, Nu = d_nu, F = d_fft_len;
    const int d0 = d_t0 + d_n_train + Hs, n_sym = Hs + n_data;
    if (n_data < 0 || n_sym > d_pilot_rows ||
        body + static_cast<std::size_t>(d0 + n_data) * d_symbol_len > n_cols)
        throw std::invalid_argument("ofat_rx_kernels::data: the data symbols are not in the buffer");
    // Header and data symbols (Nr, Hs + n_data, Nu): the front's header, then the data's FFT windows.
    d_full.resize(static_cast<std::size_t>(Nr) * std::max(n_data, 1) * F);
    windows_fft(buf, row_stride, body + static_cast<std::size_t>(d0) * d_symbol_len, d0, n_data, cfo, d_full.data());
    d_symbols.resize(static_cast<std::size_t>(Nr) * n_sym * Nu); // every element written below
    std::vector<cd>& yd = d_symbols;
    for (int r = 0; r < Nr; ++r) {
        std::copy(yh + static_cast<std::size_t>(r) * Hs * Nu, yh + static_cast<std::size_t>(r + 1) * Hs * Nu,
                  yd.begin() + static_cast<std::size_t>(r) * n_sym * Nu);
        for (int m = 0; m < n_data; ++m) {
            const cd* w = d_full.data() + (static_cast<std::size_t>(r) * n_data + m) * F;
            cd* o = yd.data() + (static_cast<std::size_t>(r) * n_sym + Hs + m) * Nu;
            for (int u = 0; u < Nu; ++u)
                o[u] = w[d_used_bins[u]];
        }
    }
    const std::vector<double> ph = phases(yd.data(), n_sym, g);
    const int K = static_cast<int>(d_data_index.size());
    for (int m = 0; m < n_data; ++m) {
        const double dr = std::cos(-ph[Hs + m]), di = std::sin(-ph[Hs + m]);
        for (int r = 0; r < Nr; ++r) {
            const cd* row = yd.data() + (static_cast<std::size_t>(r) * n_sym + Hs + m) * Nu;
            for (int k = 0; k < K; ++k) {
                const cd v = row[d_data_index[k]]; // times the derotation, as the complex product
                store_cf(y_out + (static_cast<std::size_t>(k) * Nr + r) * n_data + m,
                         v.real() * dr - v.imag() * di, v.real() * di + v.imag() * dr);
            }
        }
    }
    double power = 0.0;
    for (int r = 0; r < Nr; ++r)
        for (int a = 0; a < Nt; ++a) {
            const cd* hr = h + (static_cast<std::size_t>(r) * Nt + a) * Nu;
            for (int u = 0; u < Nu; ++u)
                power += norm2(hr[u]);
            for (int k = 0; k < K; ++k) {
                store_cf(h_out + (static_cast<std::size_t>(k) * Nr + r) * Nt + a, hr[d_data_index[k]]);
            }
        }
    return power / (static_cast<double>(Nr) * Nu) / Nt;
}

bool ofat_rx_kernels::decode_header(const std::uint8_t* bits,
                                    std::size_t n_bits,
                                    std::uint32_t& seq,
                                    std::uint8_t& flags,
                                    std::vector<int>& shape,
                                    std::uint16_t& scale_code)
{
    constexpr std::size_t n_bytes = 15, n_body = 13, max_dims = 3; // frame.HEADER_BYTES, "<IB3HH"
    if (n_bits != 8 * n_bytes)
        return false;
    std::uint8_t raw[n_bytes];
    for (std::size_t i = 0; i < n_bytes; ++i) { // np.packbits: the first bit is the most significant
        unsigned v = 0;
        for (int b = 0; b < 8; ++b)
            v = (v << 1) | (bits[8 * i + b] & 1u);
        raw[i] = static_cast<std::uint8_t>(v);
    }
    unsigned crc = 0xFFFF; // binascii.crc_hqx(body, 0xFFFF): CRC-16/CCITT, polynomial 0x1021
    for (std::size_t i = 0; i < n_body; ++i) {
        crc ^= static_cast<unsigned>(raw[i]) << 8;
        for (int b = 0; b < 8; ++b)
            crc = (crc & 0x8000u) ? ((crc << 1) ^ 0x1021u) & 0xFFFFu : (crc << 1) & 0xFFFFu;
    }
    if (crc != (raw[n_body] | (static_cast<unsigned>(raw[n_body + 1]) << 8)))
        return false;
    auto u16 = [&](std::size_t at) { return static_cast<unsigned>(raw[at] | (raw[at + 1] << 8)); };
    seq = static_cast<std::uint32_t>(raw[0]) | (static_cast<std::uint32_t>(raw[1]) << 8) |
          (static_cast<std::uint32_t>(raw[2]) << 16) | (static_cast<std::uint32_t>(raw[3]) << 24);
    flags = raw[4];
    const unsigned dims[max_dims] = { u16(5), u16(7), u16(9) };
    scale_code = static_cast<std::uint16_t>(u16(11));
    std::size_t ndim = 0;
    while (ndim < max_dims && dims[ndim] != 0)
        ++ndim;
    for (std::size_t i = ndim; i < max_dims; ++i)
        if (dims[i] != 0)
            return false;
    shape.assign(dims, dims + ndim);
    return true;
}

void ofat_rx_kernels::set_stream(
    double threshold, int plateau_window, int cp_len, int values_per_symbol, long long capacity)
{
    if (!frame_configured())
        throw std::logic_error("ofat_rx_kernels::set_stream: set_frame first");
    if (!(threshold > 0.0 && threshold < 1.0) || plateau_window < 1 || cp_len < 0 || cp_len > d_symbol_len ||
        values_per_symbol < 1 || capacity < 0 || d_header_scrambler.size() != 120)
        throw std::invalid_argument("ofat_rx_kernels::set_stream: inconsistent search parameters");
    d_threshold = threshold;
    d_plateau_window = plateau_window;
    d_cp_len = cp_len;
    d_values_per_symbol = values_per_symbol;
    d_capacity = capacity;
}

void ofat_rx_kernels::append(const cf* const* rows, std::size_t m)
{
    // FrameReceiver.process: the buffer is compacted to the front, or doubled, when m does not fit.
    if (d_store_cols == 0) {
        d_store_cols = 1 << 14;
        d_store.assign(static_cast<std::size_t>(d_n_rx) * d_store_cols, cf(0.0f, 0.0f));
    }
    if (d_hi + m > d_store_cols) {
        const std::size_t keep = d_hi - d_lo;
        if (keep + m > d_store_cols / 2) {
            const std::size_t cols = 2 * (keep + m);
            std::vector<cf> store(static_cast<std::size_t>(d_n_rx) * cols);
            for (int r = 0; r < d_n_rx; ++r)
                std::copy_n(d_store.data() + r * d_store_cols + d_lo, keep, store.data() + r * cols);
            d_store.swap(store);
            d_store_cols = cols;
        } else {
            for (int r = 0; r < d_n_rx; ++r)
                std::copy_n(d_store.data() + r * d_store_cols + d_lo, keep, d_store.data() + r * d_store_cols);
        }
        d_lo = 0;
        d_hi = keep;
    }
    for (int r = 0; r < d_n_rx; ++r)
        std::copy_n(rows[r], m, d_store.data() + r * d_store_cols + d_hi);
    d_hi += m;
}

void ofat_rx_kernels::trim(long long keep_from_abs)
{
    // FrameReceiver._trim: the samples before keep_from_abs, and the metric before the search position.
    const long long drop =
        std::min<long long>(std::max<long long>(0, keep_from_abs - d_buf_start), d_hi - d_lo);
    d_lo += drop;
    d_buf_start += drop;
    const long long size = static_cast<long long>(d_metric.size() - d_metric_lo);
    const long long cut = std::min<long long>(std::max<long long>(0, d_search_from - d_metric_start), size);
    d_metric_lo += cut;
    d_metric_start += cut;
}

ofat_rx_kernels::step ofat_rx_kernels::wait_from(long long rel)
{
    d_search_from = d_buf_start + rel;
    trim(d_search_from);
    return step::wait;
}

ofat_rx_kernels::step ofat_rx_kernels::skip_to(long long abs_index)
{
    d_search_from = abs_index;
    trim(abs_index);
    return step::more;
}

std::vector<ofat_rx_kernels::stream_frame>
ofat_rx_kernels::receive(const cf* const* rows, std::size_t m, stream_counts& counts)
{
    if (!streaming())
        throw std::logic_error("ofat_rx_kernels::receive: set_frame and set_stream first");
    counts = stream_counts();
    counts.samples = static_cast<long long>(m);
    append(rows, m);
    std::vector<stream_frame> frames; // FrameReceiver._drain
    for (;;) {
        stream_frame frame;
        const step s = try_one(frame, counts);
        if (s == step::frame)
            frames.push_back(std::move(frame));
        if (s == step::wait)
            return frames;
    }
}

long long ofat_rx_kernels::metric_end() const
{
    return d_metric_start + static_cast<long long>(d_metric.size() - d_metric_lo);
}

void ofat_rx_kernels::extend_metric(long long from, long long upto)
{
    // FrameReceiver._metric_from's computation, for positions up to upto only: from where the kept metric
    // ends, or from `from` (the search position) where it ends before that.
    const long long have = metric_end();
    if (have >= upto)
        return;
    const long long new_from = std::max(have, from);
    if (new_from > have || d_metric.size() == d_metric_lo) {
        // Nothing kept before new_from: the metric starts again there.
        d_metric.clear();
        d_p.clear();
        d_metric_lo = 0;
        d_metric_start = new_from;
    } else if (d_metric_lo > d_metric.size() / 2) { // drop what the search has passed
        d_metric.erase(d_metric.begin(), d_metric.begin() + d_metric_lo);
        d_p.erase(d_p.begin(), d_p.begin() + d_metric_lo);
        d_metric_lo = 0;
    }
    const std::size_t old = d_metric.size(), n_out = static_cast<std::size_t>(upto - new_from);
    d_metric.resize(old + n_out);
    d_p.resize(old + n_out);
    schmidl_cox(d_store.data() + d_lo + (new_from - d_buf_start), static_cast<std::ptrdiff_t>(d_store_cols),
                n_out + d_fft_len - 1, d_metric.data() + old, d_p.data() + old);
}

ofat_rx_kernels::step ofat_rx_kernels::try_one(stream_frame& frame, stream_counts& counts)
{
    // FrameReceiver._try_one, _metric_from and _search, with the metric computed in growing blocks from
    // the search position until a crossing and its plateau window are in it (FrameReceiver computes it to
    // the buffer's end at once): the positions inside a frame, which the search skips, are not computed
    // (~85 % of a frame's back to back). The values differ from one long run's in their last bits only
    // (where the running sums restart), as another chunking's do.
    const long long F = d_fft_len, n = static_cast<long long>(d_hi - d_lo);
    const long long rel0 = std::max<long long>(0, d_search_from - d_buf_start);
    const long long n_metric = n - rel0 - F + 1;
    if (n_metric <= 0)
        return step::wait;
    const long long n_valid = d_buf_start + n - F + 1; // absolute, exclusive
    const long long search = d_buf_start + rel0;
    auto metric_at = [this](long long abs_index) {
        return d_metric_lo + static_cast<std::size_t>(abs_index - d_metric_start);
    };
    long long scanned = search, block = 256, first = -1;
    while (first < 0) {
        if (metric_end() <= scanned) {
            if (scanned >= n_valid) {
                // Nothing here; the last fft_len - 1 samples stay, a window may straddle the next chunk.
                d_search_from = n_valid;
                trim(d_search_from);
                return step::wait;
            }
            extend_metric(search, std::min(n_valid, scanned + block));
            block *= 2;
        }
        const long long end = metric_end();
        const std::ptrdiff_t at =
            first_above(d_metric.data() + metric_at(scanned), static_cast<std::size_t>(end - scanned), d_threshold);
        if (at >= 0)
            first = scanned + at - search;
        scanned = end;
    }
    if (first + d_plateau_window > n_metric)
        return wait_from(rel0 + first);
    extend_metric(search, search + first + d_plateau_window);
    const std::size_t at = metric_at(search + first);
    const auto [peak, middle, p_sum] = plateau(d_metric.data() + at, d_p.data() + at, d_plateau_window);
    const long long body = rel0 + first + static_cast<long long>(middle); // preamble body start (buffer)
    const double cfo = std::atan2(p_sum.imag(), p_sum.real()) / (M_PI * F); // the angle of P
    return decode_at(rel0 + first, body, cfo, peak, frame, counts);
}

ofat_rx_kernels::step ofat_rx_kernels::decode_at(
    long long first, long long body, double cfo, double peak, stream_frame& frame, stream_counts& counts)
{
    // FrameReceiver._decode_at with _front (the pending front) and CompiledFrameReceiver's front / data.
    const long long n = static_cast<long long>(d_hi - d_lo), L = d_symbol_len;
    const long long d0 = d_t0 + d_n_train + d_n_head;
    const cf* buf = d_store.data() + d_lo;
    const auto stride = static_cast<std::ptrdiff_t>(d_store_cols);
    if (body + d0 * L > n)
        return wait_from(first);
    const long long body_abs = d_buf_start + body;
    if (!(d_has_pending && d_pending_body == body_abs)) {
        d_pending = front(buf, stride, static_cast<std::size_t>(n), static_cast<std::size_t>(body), cfo);
        d_pending_valid = decode_header(d_pending.header_bits.data(), d_pending.header_bits.size(), d_pending_seq,
                                        d_pending_flags, d_pending_shape, d_pending_scale);
        d_has_pending = true;
        d_pending_body = body_abs;
        d_last_chosen = d_pending.chosen;
        d_last_fraction = d_pending.fraction;
        ++d_fronts;
    }
    long long n_values = 1; // math.prod(shape); each dim < 2^16, so at most 2^48
    for (int d : d_pending_shape)
        n_values *= d;
    const long long frame_start_abs = d_buf_start + body - d_cp_len;
    if (!d_pending_valid || n_values > d_capacity) {
        ++counts.detections;
        if (!d_pending_valid) {
            ++counts.header_crc_fail;
            counts.sequence_mismatch += !d_pending.own_training;
        } else {
            ++counts.header_invalid;
        }
        return skip_to(d_buf_start + body + L);
    }
    const long long n_data = std::max<long long>(1, (n_values + d_values_per_symbol - 1) / d_values_per_symbol);
    const long long end = body + (d0 + n_data) * L;
    if (end > n)
        return wait_from(first);
    ++counts.detections;
    d_has_pending = false; // this frame's front is used up
    const std::size_t K = d_data_index.size();
    frame.y.resize(K * d_n_rx * static_cast<std::size_t>(n_data));
    frame.h.resize(K * d_n_rx * d_n_tx);
    const double power = data(buf, stride, static_cast<std::size_t>(n), static_cast<std::size_t>(body), d_pending.cfo,
                              d_pending.g.data(), d_pending.yh.data(), d_pending.h.data(), static_cast<int>(n_data),
                              frame.y.data(), frame.h.data());
    frame.seq = d_pending_seq;
    frame.flags = d_pending_flags;
    frame.shape = d_pending_shape;
    frame.scale_code = d_pending_scale;
    frame.n_data = static_cast<int>(n_data);
    frame.noise_var = d_pending.noise_var;
    frame.snr_db = 10 * std::log10(std::max(power, 1e-20) / d_pending.noise_var);
    frame.cfo = d_pending.cfo;
    frame.start = frame_start_abs;
    frame.metric = peak;
    frame.err_var = d_pending.err_var;
    ++counts.frames;
    skip_to(d_buf_start + end - d_cp_len);
    return step::frame;
}

void ofat_rx_kernels::append_float_repr(std::string& out, double x)
{
    // The shortest digits that read back as x (std::to_chars, as Python's repr), written as repr writes
    // them: fixed notation where the decimal exponent e of d.ddd is -5 < e < 16 (a ".0" on whole
    // numbers), else d.ddde-XX / d.ddde+XX with at least two exponent digits.
    char text[40];
    const auto written = std::to_chars(text, text + sizeof text - 1, x, std::chars_format::scientific);
    *written.ptr = '\0'; // (at most 24 characters) for atoi below
    const char* p = text;
    if (*p == '-') {
        out += '-';
        ++p;
    }
    const char* e = std::find(p, static_cast<const char*>(written.ptr), 'e');
    std::string digits(1, *p);
    if (e - p > 2)
        digits.append(p + 2, e); // after "d."
    const int exponent = std::atoi(e + 1);
    const int point = exponent + 1, n = static_cast<int>(digits.size()); // x = 0.digits * 10^point
    if (point <= -4 || point > 16) {
        out += digits[0];
        if (n > 1) {
            out += '.';
            out.append(digits, 1, std::string::npos);
        }
        out += exponent < 0 ? "e-" : "e+";
        const int magnitude = std::abs(exponent);
        if (magnitude < 10)
            out += '0';
        out += std::to_string(magnitude);
    } else if (point <= 0) {
        out += "0.";
        out.append(static_cast<std::size_t>(-point), '0');
        out += digits;
    } else if (point >= n) {
        out += digits;
        out.append(static_cast<std::size_t>(point - n), '0');
        out += ".0";
    } else {
        out.append(digits, 0, point);
        out += '.';
        out.append(digits, point, std::string::npos);
    }
}

void ofat_rx_kernels::set_message(pmt::pmt_t car, const std::string& wire_header)
{
    if (wire_header.size() != 16)
        throw std::invalid_argument("ofat_rx_kernels::set_message: the wire header is 16 bytes");
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    // the payloads are copied as they lie in memory: the wire's little-endian bytes only on such a host
    throw std::runtime_error("ofat_rx_kernels::set_message: a big-endian host (messages.wire_message instead)");
#endif
    d_message_car = car;
    d_wire_header = wire_header;
}

bool ofat_rx_kernels::frame_message(const stream_frame& f, const stream_counts& totals, pmt::pmt_t& message) const
{
    if (!messages_configured())
        throw std::logic_error("ofat_rx_kernels::frame_message: set_message first");
    const double scale = std::pow(2.0, (static_cast<double>(f.scale_code) - 32768) / 1024); // frame.decode_scale
    for (double v : { scale, f.noise_var, f.err_var, f.snr_db, f.cfo, f.metric })
        if (!std::isfinite(v))
            return false;
    const long long K = data_carriers();
    long long n_values = 1;
    for (int d : f.shape)
        n_values *= d;
    auto ints = [](std::string& out, std::initializer_list<long long> values) {
        const char* sep = "";
        for (long long v : values) {
            out += sep;
            out += std::to_string(v);
            sep = ", ";
        }
    };
    // {"tensors": [specs], "meta": meta} with json's ", " and ": " separators, meta's keys in
    // ReceivedFrame.meta()'s order, then rx_counters (ofat_rx.frame_message).
    std::string json = "{\"tensors\": [{\"name\": \"Y\", \"dtype\": \"complex64\", \"shape\": [";
    ints(json, { K, d_n_rx, f.n_data });
    json += "]}, {\"name\": \"H\", \"dtype\": \"complex64\", \"shape\": [";
    ints(json, { K, d_n_rx, d_n_tx });
    json += "]}], \"meta\": {\"seq\": " + std::to_string(f.seq) + ", \"shape\": [";
    for (std::size_t i = 0; i < f.shape.size(); ++i)
        json += (i ? ", " : "") + std::to_string(f.shape[i]);
    json += "], \"n_values\": " + std::to_string(n_values) + ", \"scale\": ";
    append_float_repr(json, scale);
    json += ", \"flags\": " + std::to_string(f.flags) + ", \"noise_var\": ";
    append_float_repr(json, f.noise_var);
    json += ", \"err_var\": ";
    append_float_repr(json, f.err_var);
    json += ", \"snr_db\": ";
    append_float_repr(json, f.snr_db);
    json += ", \"cfo\": ";
    append_float_repr(json, f.cfo);
    json += ", \"timing\": " + std::to_string(f.start) + ", \"sync_metric\": ";
    append_float_repr(json, f.metric);
    json += ", \"rx_counters\": {\"samples\": " + std::to_string(totals.samples) +
            ", \"detections\": " + std::to_string(totals.detections) + ", \"frames\": " +
            std::to_string(totals.frames) + ", \"header_crc_fail\": " + std::to_string(totals.header_crc_fail) +
            ", \"header_invalid\": " + std::to_string(totals.header_invalid) +
            ", \"sequence_mismatch\": " + std::to_string(totals.sequence_mismatch) + "}}}";
    // The wire parts, each after its u32 little-endian length: header, JSON, Y, H.
    const std::size_t y_bytes = f.y.size() * sizeof(cf), h_bytes = f.h.size() * sizeof(cf);
    const std::size_t size = 4 * 4 + d_wire_header.size() + json.size() + y_bytes + h_bytes;
    // Written into a reused buffer, then copied into the u8vector: make_u8vector(size, 0) fills its
    // bytes one at a time (~3 % of receive_messages by perf), init_u8vector copies them with memcpy.
    d_message_bytes.resize(size);
    std::uint8_t* out = d_message_bytes.data();
    auto part = [&out](const void* data, std::size_t n) {
        const std::uint32_t len = static_cast<std::uint32_t>(n);
        const std::uint8_t le[4] = { static_cast<std::uint8_t>(len), static_cast<std::uint8_t>(len >> 8),
                                     static_cast<std::uint8_t>(len >> 16), static_cast<std::uint8_t>(len >> 24) };
        std::memcpy(out, le, 4);
        if (n)
            std::memcpy(out + 4, data, n);
        out += 4 + n;
    };
    std::string header = d_wire_header;
    for (int i = 0; i < 8; ++i) // seq, u64 little-endian
        header[8 + i] = static_cast<char>((static_cast<std::uint64_t>(f.seq) >> (8 * i)) & 0xFF);
    part(header.data(), header.size());
    part(json.data(), json.size());
    // complex64 payloads as they lie in memory: the wire's little-endian bytes (set_message refuses others)
    part(f.y.data(), y_bytes);
    part(f.h.data(), h_bytes);
    message = pmt::cons(d_message_car, pmt::init_u8vector(size, d_message_bytes.data()));
    return true;
}

namespace {
class ofat_rx_fast_impl : public ofat_rx_fast
{
    const std::shared_ptr<ofat_rx_kernels> d_kernels;
    const pmt::pmt_t d_port;
    std::vector<const ofat_rx_kernels::cf*> d_rows;
    mutable std::mutex d_mutex; // the counters are read from other threads
    ofat_rx_kernels::stream_counts d_totals;
    long long d_unsendable = 0;

public:
    explicit ofat_rx_fast_impl(std::shared_ptr<ofat_rx_kernels> kernels)
        : gr::sync_block("semcom_ofat_rx_fast",
                         gr::io_signature::make(kernels ? kernels->n_rx() : 1,
                                                kernels ? kernels->n_rx() : 1,
                                                sizeof(ofat_rx_kernels::cf)),
                         gr::io_signature::make(0, 0, 0)),
          d_kernels(std::move(kernels)),
          d_port(pmt::mp("frames"))
    {
        if (!d_kernels || !d_kernels->streaming() || !d_kernels->messages_configured())
            throw std::invalid_argument("ofat_rx_fast: kernels with set_frame, set_stream and set_message done");
        d_rows.resize(d_kernels->n_rx());
        message_port_register_out(d_port);
    }

    std::vector<long long> counters() const override
    {
        std::lock_guard<std::mutex> lock(d_mutex);
        const auto& t = d_totals;
        return { t.samples,        t.detections,        t.frames,      t.header_crc_fail,
                 t.header_invalid, t.sequence_mismatch, d_unsendable };
    }

    int work(int noutput_items, gr_vector_const_void_star& input_items, gr_vector_void_star&) override
    {
        for (std::size_t r = 0; r < d_rows.size(); ++r)
            d_rows[r] = static_cast<const ofat_rx_kernels::cf*>(input_items[r]);
        ofat_rx_kernels::stream_counts counts;
        std::vector<ofat_rx_kernels::stream_frame> frames;
        try {
            frames = d_kernels->receive(d_rows.data(), static_cast<std::size_t>(noutput_items), counts);
        } catch (const std::exception& e) { // never a crash of the running flowgraph
            d_logger->error("receive failed on {:d} samples: {:s}", noutput_items, e.what());
            return noutput_items;
        }
        ofat_rx_kernels::stream_counts totals;
        {
            std::lock_guard<std::mutex> lock(d_mutex);
            d_totals.samples += counts.samples;
            d_totals.detections += counts.detections;
            d_totals.frames += counts.frames;
            d_totals.header_crc_fail += counts.header_crc_fail;
            d_totals.header_invalid += counts.header_invalid;
            d_totals.sequence_mismatch += counts.sequence_mismatch;
            totals = d_totals;
        }
        for (const auto& f : frames) {
            pmt::pmt_t message;
            if (d_kernels->frame_message(f, totals, message)) {
                message_port_pub(d_port, message);
            } else {
                std::lock_guard<std::mutex> lock(d_mutex);
                ++d_unsendable;
                d_logger->warn("frame seq {:d} not sent: its meta holds a non-finite value", f.seq);
            }
        }
        return noutput_items;
    }
};
} // namespace

ofat_rx_fast::sptr ofat_rx_fast::make(std::shared_ptr<ofat_rx_kernels> kernels)
{
    return gnuradio::make_block_sptr<ofat_rx_fast_impl>(std::move(kernels));
}

} // namespace semcom
} // namespace gr
