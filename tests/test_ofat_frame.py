"""The OFAT frame layout: mapping round trips, power, header coding, preamble structure."""

import numpy as np
import pytest
import torch

from semcom.ofat.frame import (
    HEADER_BITS,
    PRESETS,
    FrameError,
    FrameHeader,
    OfatLayout,
    decode_header,
    decode_scale,
    encode_header,
    encode_scale,
    frame_grid,
    frame_grid_reference,
    frame_header,
    make_layout,
    map_values,
    modulate_frame,
    modulate_frames,
    ofdm_demodulate,
    ofdm_modulate,
    signed_bins,
    unmap_values,
)


@pytest.mark.parametrize("preset", ["wifi64", "ofat128"])
@pytest.mark.parametrize("mode", ["complex", "real"])
def test_map_unmap_round_trip_numpy_and_torch(preset, mode):
    layout = make_layout(preset, mode=mode, n_tx=3, n_rx=4)
    values = np.random.default_rng(1).standard_normal(1001)  # odd: partial element and symbol
    grid, scale = map_values(layout, values)
    assert grid.shape == (layout.n_data_carriers, 3, layout.n_data_symbols(1001))
    np.testing.assert_allclose(unmap_values(layout, grid, values.size, scale), values, atol=1e-12)
    t = torch.tensor(values, dtype=torch.float32, requires_grad=True)
    tgrid, tscale = map_values(layout, t)
    back = unmap_values(layout, tgrid, values.size, tscale)
    torch.testing.assert_close(back, t)
    back.sum().backward()  # differentiable end to end
    assert torch.allclose(t.grad, torch.ones_like(t))


@pytest.mark.parametrize("mode", ["complex", "real"])
def test_map_values_batch_is_map_values_per_frame(mode):
    """The torch channel's batch mapping: each frame bit for bit what map_values gives it, with a scale
    per frame (and a scalar), differentiable; too many values is the same FrameError."""
    from semcom.ofat.frame import map_values_batch

    layout = make_layout("wifi64", mode=mode, n_tx=2, n_rx=4)
    values = torch.randn(4, 301, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    scales = torch.tensor([0.5, 1.0, 2.0, 3.0], dtype=torch.float64, requires_grad=True)
    grids = map_values_batch(layout, values, scales)
    assert grids.shape == (4, layout.n_data_carriers, 2, layout.n_data_symbols(301))
    for v, s, g in zip(values, scales, grids, strict=True):
        assert torch.equal(g, map_values(layout, v, scale=s)[0])
    assert torch.equal(map_values_batch(layout, values, 2.0)[1], map_values(layout, values[1], scale=2.0)[0])
    grids.abs().pow(2).sum().backward()
    assert scales.grad is not None and torch.all(scales.grad > 0)
    with pytest.raises(FrameError, match="exceed the frame capacity"):
        map_values_batch(layout, torch.zeros(2, layout.capacity + 1), 1.0)


def test_value_order_is_antenna_then_subcarrier_then_symbol():
    layout = make_layout("wifi64", mode="real", n_tx=2)
    values = np.arange(1, layout.values_per_symbol * 2 + 1, dtype=float)
    grid, scale = map_values(layout, values, scale=1.0)
    assert grid[0, 0, 0] == 1 and grid[0, 1, 0] == 2 and grid[1, 0, 0] == 3
    assert grid[0, 0, 1] == layout.values_per_symbol + 1


def test_power_normalisation_unit_energy_per_element_and_known_scale():
    layout = make_layout("wifi64", n_tx=2)
    values = 37.0 * np.random.default_rng(2).standard_normal(layout.values_per_symbol * 3)
    grid, scale = map_values(layout, values)
    # Full symbols: mean total energy per resource element (summed over antennas) is 1.
    assert np.mean(np.sum(np.abs(grid) ** 2, axis=1)) == pytest.approx(1.0, rel=2e-3)
    # The scale actually used is exactly what the 16-bit header code decodes to.
    assert decode_scale(encode_scale(scale)) == scale


def test_time_domain_power_matches_occupied_fraction():
    layout = make_layout("ofat128", n_tx=2)
    values = np.random.default_rng(3).standard_normal(layout.values_per_symbol * 8)
    samples, _ = modulate_frame(layout, values, seq=1)
    assert samples.shape == (2, layout.frame_len(values.size))
    assert np.mean(np.sum(np.abs(samples) ** 2, axis=0)) == pytest.approx(layout.occupied_fraction, rel=0.05)


@pytest.mark.parametrize("sequence_id", [0, 5])
def test_preamble_halves_repeat_for_schmidl_cox(sequence_id):
    layout = make_layout("wifi64", n_tx=2, sequence_id=sequence_id)
    samples, _ = modulate_frame(layout, np.ones(10), seq=0)
    body = samples[:, layout.cp_len: layout.symbol_len]
    half = layout.fft_len // 2
    np.testing.assert_allclose(body[:, :half], body[:, half:], atol=1e-6)


def test_training_is_orthogonal_across_antennas():
    layout = make_layout("wifi64", n_tx=3, n_rx=3, train_reps=2, cp_len=16, cdd_shift=2)
    w = layout.training_cover
    np.testing.assert_allclose(w.conj().T @ w, layout.n_train_symbols * np.eye(3), atol=1e-9)
    # Every used element carries unit total energy in every training symbol.
    energy = np.sum(np.abs(layout.training_freq[:, :, layout.used_bins]) ** 2, axis=0)
    np.testing.assert_allclose(energy, 1.0)


def test_frame_grid_demodulates_back():
    layout = make_layout("wifi64")
    values = np.random.default_rng(4).standard_normal(500)
    grid, header = frame_grid(layout, values, seq=9)
    samples, _ = modulate_frame(layout, values, seq=9)
    np.testing.assert_allclose(ofdm_demodulate(layout, samples, grid.shape[1]), grid, atol=1e-5)
    assert header.seq == 9 and header.shape == (500,)


def test_header_round_trip_and_crc():
    header = FrameHeader(seq=0xDEADBEEF, shape=(5, 256), scale_code=12345, flags=3)
    bits = encode_header(header)
    assert bits.size == HEADER_BITS
    assert decode_header(bits) == header
    rng = np.random.default_rng(5)
    for position in rng.choice(HEADER_BITS, 30, replace=False):
        corrupted = bits.copy()
        corrupted[position] ^= 1
        assert decode_header(corrupted) is None


@pytest.mark.parametrize("shape", [(4, 70000), (1, 2, 3, 4), (0, 3)])
def test_header_rejects_unrepresentable_shapes(shape):
    with pytest.raises(FrameError, match="shape"):
        encode_header(FrameHeader(seq=1, shape=shape, scale_code=0))


def test_scalar_payload_round_trips():
    layout = make_layout("wifi64")
    grid, header = frame_grid(layout, np.array(2.5), seq=3)
    assert header.shape == () and header.n_values == 1
    assert decode_header(encode_header(header)) == header


def test_capacity_and_bad_payloads_are_clear_errors():
    layout = make_layout("wifi64", max_data_symbols=2)
    with pytest.raises(FrameError, match="capacity"):
        map_values(layout, np.zeros(layout.capacity + 1))
    with pytest.raises(FrameError, match="NaN"):
        map_values(layout, np.array([1.0, np.nan]), scale=1.0)


@pytest.mark.parametrize("bad", [dict(fft_len=48), dict(used_carriers=(0, 1, 2)), dict(cp_len=64),
                                 dict(pilot_carriers=(30,)), dict(mode="qam"), dict(n_tx=0),
                                 dict(n_tx=9, cdd_shift=2), dict(sequence_id=-1),
                                 dict(sequence_id=1 << 16)])
def test_invalid_layouts_are_rejected(bad):
    with pytest.raises(FrameError):
        OfatLayout(**bad)


def test_layout_dict_round_trip():
    layout = make_layout("ofat128", n_tx=4, n_rx=2, mode="real")
    assert OfatLayout.from_dict(layout.to_dict()) == layout
    with pytest.raises(FrameError, match="unknown"):
        OfatLayout.from_dict({**layout.to_dict(), "bogus": 1})
    with pytest.raises(FrameError, match="preset"):
        make_layout("nope")


@pytest.mark.parametrize("preset", ["wifi64", "ofat128"])
@pytest.mark.parametrize("mode", ["complex", "real"])
@pytest.mark.parametrize("n_tx", [1, 2, 3, 4])
@pytest.mark.parametrize("clip_db", [0.0, 4.0])
def test_cached_construction_is_bit_identical_to_the_reference(preset, mode, n_tx, clip_db):
    from semcom.ofat.papr import clip_frame

    layout = make_layout(preset, mode=mode, n_tx=n_tx, clip_ratio_db=clip_db)
    rng = np.random.default_rng(n_tx)
    sizes = [1, layout.values_per_symbol - 1, layout.values_per_symbol + 1, layout.capacity]
    for n in sizes:  # partial element, partial symbol, a symbol and one value, full frame
        values = 3.0 * rng.standard_normal(n)
        ref_grid, ref_header = frame_grid_reference(layout, values, seq=n + 7, flags=n % 5)
        grid, header = frame_grid(layout, values, seq=n + 7, flags=n % 5)
        assert header == ref_header
        assert np.array_equal(grid, ref_grid)
        # The old modulate_frame, step by step: IFFT of the whole grid, clip the data, round once.
        ref = ofdm_modulate(layout, ref_grid)
        if clip_db:
            ref = clip_frame(ref, layout, clip_db, symbols="data")
        ref = ref.astype(np.complex64)
        samples, _ = modulate_frame(layout, values, seq=n + 7, flags=n % 5, pad=9)
        assert samples.dtype == np.complex64 and samples.shape == (n_tx, ref.shape[1] + 9)
        assert np.array_equal(samples[:, : ref.shape[1]], ref)  # bit for bit, not approximately
        assert not np.any(samples[:, ref.shape[1]:])
        samples[:] = 1.0  # a caller writing into its frame must not reach the cached template
    again, _ = modulate_frame(layout, values, seq=n + 7, flags=n % 5)
    assert np.array_equal(again, ref)


@pytest.mark.parametrize("preset,mode,n_tx,clip_db", [
    ("wifi64", "complex", 2, 0.0), ("wifi64", "real", 1, 4.0), ("ofat128", "complex", 4, 0.0)])
def test_batched_frames_are_bit_identical_to_one_at_a_time(preset, mode, n_tx, clip_db):
    """modulate_frames over frames of mixed sizes (groups built together, written back in order) equals
    modulate_frame of each frame alone, bit for bit, gaps included; and one group alone (the in-place
    path) too."""
    layout = make_layout(preset, mode=mode, n_tx=n_tx, clip_ratio_db=clip_db)
    rng = np.random.default_rng(11)
    vps = layout.values_per_symbol
    sizes = [3 * vps, 5, 3 * vps - 1, layout.capacity, 5, 3 * vps]  # sizes 0, 2 and 5 share a symbol count
    payloads = [(rng.standard_normal(n) * 10.0 ** rng.uniform(-3, 3)).astype(np.float32) for n in sizes]
    shapes = [(n,) if i % 2 else None for i, n in enumerate(sizes)]
    headers = [frame_header(layout, v, seq=100 + i, shape=shape, flags=i)
               for i, (v, shape) in enumerate(zip(payloads, shapes, strict=True))]
    pad = 13
    alone = [modulate_frame(layout, v, seq=100 + i, shape=shape, flags=i, pad=pad)
             for i, (v, shape) in enumerate(zip(payloads, shapes, strict=True))]
    assert [h for _, h in alone] == headers
    batch = modulate_frames(layout, payloads, headers, pad=pad)
    assert batch.dtype == np.complex64
    assert np.array_equal(batch, np.concatenate([f for f, _ in alone], axis=1))
    same = [0, 2, 5]  # one symbol count: the single-group path
    together = modulate_frames(layout, [payloads[i] for i in same], [headers[i] for i in same], pad)
    assert np.array_equal(together, np.concatenate([alone[i][0] for i in same], axis=1))


def test_frame_header_refuses_what_no_frame_carries():
    layout = make_layout("wifi64", max_data_symbols=2)
    with pytest.raises(FrameError, match="capacity"):
        frame_header(layout, np.zeros(layout.capacity + 1), seq=0)
    with pytest.raises(FrameError, match="finite"):
        frame_header(layout, np.array([1.0, np.nan]), seq=0)
    with pytest.raises(FrameError, match="shape"):
        frame_header(layout, np.ones(4), seq=0, shape=(1, 1, 1, 4))
    with pytest.raises(FrameError, match="32 bits"):
        frame_header(layout, np.ones(4), seq=2**32)
    with pytest.raises(FrameError, match="headers"):
        modulate_frames(layout, [np.ones(4)], [])


def test_modulate_frame_rejects_negative_pad():
    with pytest.raises(FrameError, match="pad"):
        modulate_frame(make_layout("wifi64"), np.ones(4), seq=0, pad=-1)


# The sha256 of every known sequence (sorted by name, as stored) of sequence_id 0, taken from the frame
# module before sequence ids existed: id 0 must keep them bit for bit (every recording and result so far).
ORIGINAL_SEQUENCES_SHA256 = {
    "wifi64": "c25e263161db9abe209b076012cefbb56fc7a3cdfc1249f0f9c4dc67dd6c0e28",
    "ofat128": "6bfe5d17d84fa24fb414aa760863c66ab540ec62fd763e87dbfa88b7929247f0",
}


@pytest.mark.parametrize("preset", sorted(ORIGINAL_SEQUENCES_SHA256))
def test_sequence_id_zero_keeps_the_original_sequences(preset):
    import hashlib

    layout = make_layout(preset, n_tx=2, n_rx=2)
    digest = hashlib.sha256()
    for _, seq in sorted(layout._rng_sequences.items()):
        digest.update(np.ascontiguousarray(seq).tobytes())
    assert digest.hexdigest() == ORIGINAL_SEQUENCES_SHA256[preset]
    # the layout dict of id 0 is the one recorded before ids existed; another id round-trips
    assert "sequence_id" not in layout.to_dict()
    other = make_layout(preset, n_tx=2, n_rx=2, sequence_id=3)
    assert OfatLayout.from_dict(other.to_dict()) == other and other != layout


def test_sequences_of_different_ids_are_nearly_orthogonal():
    """Training sequences c of ids 0..7, wifi64: the cross-correlation r_ij(tau) = |sum_k c_i[k] c_j[k]*
    exp(j 2 pi k tau / N)| / Nu over every delay tau (what a receiver's tap search sees of a foreign
    training) stays below 0.45 (random QPSK: rms 1/sqrt(Nu) = 0.14, 0.45 is about 3.2 rms), against 1 for
    the own sequence at tau = 0; the header scramblers differ in at least a quarter of their bits and the
    pilot patterns differ too."""
    layouts = [make_layout("wifi64", n_tx=1, n_rx=1, sequence_id=i) for i in range(8)]
    k = np.array(sorted(layouts[0].used_carriers))
    delays = np.exp(2j * np.pi * np.outer(np.arange(layouts[0].fft_len), k) / layouts[0].fft_len)
    n_used = layouts[0].n_used
    for i, a in enumerate(layouts):
        auto = np.abs(delays @ (a.training_sequence * np.conj(a.training_sequence))) / n_used
        assert auto[0] == pytest.approx(1.0)
        for b in layouts[i + 1:]:
            cross = np.abs(delays @ (a.training_sequence * np.conj(b.training_sequence))) / n_used
            assert cross.max() < 0.45, (a.sequence_id, b.sequence_id, cross.max())
            assert np.sum(a.header_scrambler != b.header_scrambler) >= HEADER_BITS // 4
            assert not np.array_equal(a.pilot_values(8), b.pilot_values(8))


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_signed_bins_invert_the_bin_numbering(preset: str) -> None:
    """signed_bins is numpy's FFT frequency order, and the layout's signed used subcarriers are its own."""
    layout = make_layout(preset, n_tx=2)
    n = layout.fft_len
    np.testing.assert_array_equal(signed_bins(np.arange(n), n), np.round(np.fft.fftfreq(n) * n).astype(int))
    np.testing.assert_array_equal(layout.used_signed, sorted(layout.used_carriers))
    np.testing.assert_array_equal(np.mod(layout.used_signed, n), layout.used_bins)
