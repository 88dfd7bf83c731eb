"""reconstruct_payload / unmap_values over a leading frame axis: F frames decoded in one call give what F
calls give, each frame with its own scale, noise_var and err_var; reconstruct_payloads (several methods in
one call, ZF and MMSE through one solve) gives what one reconstruct_payload per method gives."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from semcom.ofat.equalize import reconstruct_payload, reconstruct_payloads
from semcom.ofat.frame import FrameError, make_layout, map_values, unmap_values

torch.set_num_threads(1)
N_FRAMES = 4


def received(layout, rng, n_sym):
    """F random grids: h (F, K, Nr, Nt), y (F, K, Nr, S) complex128, and per-frame meta arrays (F,)."""
    k, n_rx, n_tx = layout.n_data_carriers, layout.n_rx, layout.n_tx
    h, y = ((rng.standard_normal(dims) + 1j * rng.standard_normal(dims)) / np.sqrt(2)
            for dims in ((N_FRAMES, k, n_rx, n_tx), (N_FRAMES, k, n_rx, n_sym)))
    bounds = ((0.5, 2), (0.01, 0.1), (0, 0.01))
    scale, noise_var, err_var = (rng.uniform(lo, hi, N_FRAMES) for lo, hi in bounds)
    return h, y, scale, noise_var, err_var


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("n_tx,n_rx,mode,clip_db,methods", [
    (2, 4, "complex", 0.0, ("zf", "mmse", "lmmse")),
    (2, 4, "real", 0.0, ("zf", "mmse", "lmmse")),
    (2, 4, "complex", 6.0, ("zf", "mmse")),
    (4, 2, "complex", 0.0, ("mmse", "sparse")),
    (3, 2, "real", 3.0, ("zf", "lmmse", "sparse")),
], ids=["2x4", "2x4-real", "2x4-clipped", "4x2-sparse", "3x2-real-clipped"])
def test_batched_payloads_equal_each_frame_alone(backend, n_tx, n_rx, mode, clip_db, methods):
    layout = make_layout("wifi64", n_tx=n_tx, n_rx=n_rx, mode=mode, clip_ratio_db=clip_db)
    h, y, scale, noise_var, err_var = received(layout, np.random.default_rng(n_tx * 10 + n_rx), n_sym=5)
    if backend == "torch":
        h, y = torch.from_numpy(h), torch.from_numpy(y)
    shape = (3, 50)
    for method in methods:
        batched = reconstruct_payload(layout, h, y, shape=shape, scale=scale, noise_var=noise_var,
                                      err_var=err_var, method=method)
        assert tuple(batched.shape) == (N_FRAMES, *shape)
        alone = [reconstruct_payload(layout, h[f], y[f], shape=shape, scale=float(scale[f]),
                                     noise_var=float(noise_var[f]), err_var=float(err_var[f]), method=method)
                 for f in range(N_FRAMES)]
        np.testing.assert_allclose(np.asarray(batched), np.stack([np.asarray(a) for a in alone]),
                                   rtol=1e-10, atol=1e-12, err_msg=method)


@pytest.mark.parametrize("frame_axis", [True, False], ids=["frames", "one-frame"])
@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("n_tx,n_rx,mode,clip_db,methods", [
    (2, 4, "complex", 0.0, ("zf", "mmse")),
    (2, 4, "real", 0.0, ("mmse", "zf", "lmmse")),
    (2, 4, "complex", 6.0, ("zf", "lmmse", "mmse")),
    (4, 2, "complex", 0.0, ("mmse", "sparse")),
    (3, 2, "real", 3.0, ("zf",)),
], ids=["2x4", "2x4-real", "2x4-clipped", "4x2-sparse", "3x2-real-clipped"])
def test_methods_together_equal_one_call_per_method(frame_axis, backend, n_tx, n_rx, mode, clip_db, methods):
    """reconstruct_payloads: method m's payloads at [m], bit for bit what reconstruct_payload gives (the
    same operations per element: the host's loopback results do not change), in the order asked."""
    layout = make_layout("wifi64", n_tx=n_tx, n_rx=n_rx, mode=mode, clip_ratio_db=clip_db)
    h, y, scale, noise_var, err_var = received(layout, np.random.default_rng(n_tx * 7 + n_rx), n_sym=5)
    if not frame_axis:
        h, y, scale, noise_var, err_var = h[1], y[1], float(scale[1]), float(noise_var[1]), float(err_var[1])
    if backend == "torch":
        h, y = torch.from_numpy(h), torch.from_numpy(y)
    kwargs = dict(shape=(3, 50), scale=scale, noise_var=noise_var, err_var=err_var)
    together = reconstruct_payloads(layout, h, y, methods=methods, **kwargs)
    assert tuple(together.shape) == (len(methods), *((N_FRAMES,) if frame_axis else ()), 3, 50)
    for m, method in enumerate(methods):
        alone = reconstruct_payload(layout, h, y, method=method, **kwargs)
        np.testing.assert_array_equal(np.asarray(together[m]), np.asarray(alone), err_msg=method)
    if len(methods) > 1:  # the methods' payloads differ, so a swapped order would fail above
        assert not np.allclose(np.asarray(together[0]), np.asarray(together[1]), rtol=1e-6)


def test_methods_together_refuse_zf_where_it_does_not_separate_the_streams():
    layout = make_layout("wifi64", n_tx=4, n_rx=2)
    h, y, scale, noise_var, err_var = received(layout, np.random.default_rng(1), n_sym=3)
    with pytest.raises(ValueError, match="ZF needs Nr >= Nt"):
        reconstruct_payloads(layout, h, y, shape=(60,), scale=scale, noise_var=noise_var,
                             methods=("mmse", "zf"))


def test_each_frame_uses_its_own_noise_and_scale():
    """The batched call is not one frame's parameters for all: frame 1's payload with frame 0's noise_var
    and scale differs from its own (so the equality above can fail)."""
    layout = make_layout("wifi64", n_tx=2, n_rx=4)
    h, y, scale, noise_var, err_var = received(layout, np.random.default_rng(3), n_sym=4)
    batched = reconstruct_payload(layout, h, y, shape=(200,), scale=scale, noise_var=noise_var, method="mmse")
    wrong = reconstruct_payload(layout, h[1], y[1], shape=(200,), scale=scale[0], noise_var=noise_var[0],
                                method="mmse")
    assert not np.allclose(batched[1], wrong, rtol=1e-6)
    common = reconstruct_payload(layout, h, y, shape=(200,), scale=2.0, noise_var=0.05, method="mmse")
    np.testing.assert_allclose(common[2], reconstruct_payload(layout, h[2], y[2], shape=(200,), scale=2.0,
                                                              noise_var=0.05, method="mmse"), rtol=1e-10)


@pytest.mark.parametrize("mode", ["complex", "real"])
def test_unmap_values_frame_axis_round_trip(mode):
    layout = make_layout("wifi64", n_tx=2, n_rx=4, mode=mode)
    values = np.random.default_rng(5).standard_normal((N_FRAMES, 301))
    mapped = [map_values(layout, v) for v in values]
    grids = np.stack([g for g, _ in mapped])
    scales = np.array([s for _, s in mapped])
    np.testing.assert_allclose(unmap_values(layout, grids, 301, scales), values, atol=1e-12)
    back = unmap_values(layout, torch.from_numpy(grids), 301, torch.from_numpy(scales))
    np.testing.assert_allclose(back.numpy(), values, atol=1e-12)
    with pytest.raises(FrameError, match="header says"):
        unmap_values(layout, grids, 10**6, scales)
