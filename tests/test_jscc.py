"""DeepJSCC codec, checkpoints and the JPEG baseline (small random images; fast on one core)."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from semcom.channels import AWGNChannel
from semcom.jscc import (
    CheckpointError,
    DeepJSCC,
    JSCCConfig,
    bandwidth_ratio,
    channel_uses,
    filters_for_ratio,
    jpeg,
    load_checkpoint,
    save_checkpoint,
)
from semcom.jscc.train import evaluate_psnr, train_step

torch.set_num_threads(1)


def smooth_images(n: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    """(n, 3, size, size) in [0, 1]: random low-frequency images (bilinear up-sampled 4x4 noise)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 4, 4, generator=g)
    return torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)


def test_shapes_and_output_range() -> None:
    model = DeepJSCC(JSCCConfig(c=16))
    x = smooth_images(4)
    z = model.encoder(x)
    assert z.shape == (4, 16, 8, 8)
    with torch.no_grad():
        y = model(x, AWGNChannel(5.0, seed=0))
    assert y.shape == x.shape
    assert float(y.min()) > 0.0 and float(y.max()) < 1.0  # sigmoid output


def test_power_normalisation_is_exact() -> None:
    model = DeepJSCC(JSCCConfig(c=8))
    x = smooth_images(5) * torch.linspace(0.1, 1.0, 5)[:, None, None, None]  # very different input powers
    z = model.encoder(x).reshape(5, -1)
    k = z.shape[1] // 2
    # sum of squared reals = k complex symbols x unit power, per sample
    torch.testing.assert_close(z.pow(2).sum(dim=1), torch.full((5,), float(k)), rtol=1e-5, atol=0)
    sym = torch.view_as_complex(z.reshape(5, k, 2))
    torch.testing.assert_close(sym.abs().pow(2).mean(dim=1), torch.ones(5), rtol=1e-5, atol=0)


@pytest.mark.parametrize("c,size", [(16, (32, 32)), (8, (32, 32)), (4, (16, 24)), (32, (32, 32))])
def test_bandwidth_ratio_formula_matches_encoder(c: int, size: tuple[int, int]) -> None:
    h, w = size
    z = DeepJSCC(JSCCConfig(c=c)).encoder(torch.rand(1, 3, h, w))
    k = z.numel() // 2           # complex channel uses
    n = 3 * h * w                # source dimension
    assert Fraction(k, n) == bandwidth_ratio(c) == Fraction(c, 96)
    assert channel_uses(c, h, w) == k


def test_ratio_one_sixth_is_c16_and_512_channel_uses() -> None:
    assert filters_for_ratio(Fraction(1, 6)) == 16
    assert filters_for_ratio(1 / 12) == 8
    assert channel_uses(16, 32, 32) == 512
    with pytest.raises(ValueError, match="not a positive integer"):
        filters_for_ratio(Fraction(1, 7))


def test_one_training_step_lowers_the_loss_on_a_fixed_batch() -> None:
    torch.manual_seed(0)
    model = DeepJSCC(JSCCConfig(c=8))
    x = smooth_images(8, seed=1)
    ch = AWGNChannel(10.0, seed=3)
    snr = torch.full((8,), 10.0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def loss_now() -> float:
        ch.reseed(3)  # the same noise draw every time: only the weights change
        with torch.no_grad():
            return float(torch.nn.functional.mse_loss(model(x, ch, snr_db=snr), x))

    before = loss_now()
    ch.reseed(3)
    reported = train_step(model, opt, x, ch, snr)
    assert reported == pytest.approx(before, rel=1e-5)
    after = loss_now()
    assert after < before


def test_checkpoint_round_trip(tmp_path) -> None:
    model = DeepJSCC(JSCCConfig(c=8))
    pt, js = save_checkpoint(tmp_path / "ck", model, meta={"command": "test"})
    assert pt.suffix == ".pt" and js.suffix == ".json"
    loaded, doc = load_checkpoint(tmp_path / "ck.pt")
    assert doc["meta"] == {"command": "test"} and loaded.cfg == model.cfg
    x = smooth_images(2)
    model.eval()
    torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
    assert evaluate_psnr(loaded, x, None, 0.0).shape == (2,)


def test_checkpoint_errors_are_clear(tmp_path) -> None:
    save_checkpoint(tmp_path / "ck", DeepJSCC(JSCCConfig(c=8)))
    pt, js = tmp_path / "ck.pt", tmp_path / "ck.json"
    good_pt, good_js = pt.read_bytes(), js.read_text()

    with pytest.raises(CheckpointError, match="does not match the expected"):
        load_checkpoint(pt, expect=JSCCConfig(c=16))

    # config says c=16, weights are c=8 (checksum removed so the shape check is what fires)
    doc = json.loads(good_js)
    doc["config"]["c"] = 16
    doc.pop("sha256")
    js.write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="shape mismatches"):
        load_checkpoint(pt)

    # truncated weights: caught by the checksum, and by torch.load when there is no checksum
    js.write_text(good_js)
    pt.write_bytes(good_pt[: len(good_pt) // 2])
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_checkpoint(pt)
    doc = json.loads(good_js)
    doc.pop("sha256")
    js.write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="cannot read weights"):
        load_checkpoint(pt)

    pt.write_bytes(good_pt)
    js.write_text(good_js[:40])
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(pt)
    js.write_text(json.dumps({"kind": "something.else"}))
    with pytest.raises(CheckpointError, match="not a DeepJSCC checkpoint"):
        load_checkpoint(pt)
    js.unlink()
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(pt)

    # a pickled non-tensor object is refused by weights_only loading
    torch.save({"w": torch.zeros(1)}, pt)
    save_checkpoint(tmp_path / "other", DeepJSCC(JSCCConfig(c=8)))
    doc = json.loads((tmp_path / "other.json").read_text())
    doc.pop("sha256")
    js.write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="missing="):
        load_checkpoint(pt)


def test_capacity_bits() -> None:
    assert jpeg.capacity_bits(0.0, 512) == pytest.approx(512.0)
    assert jpeg.capacity_bits(10.0, 100) == pytest.approx(100 * math.log2(11.0))


@pytest.mark.parametrize("mode", jpeg.SIZE_MODES)
def test_jpeg_baseline_respects_the_bit_budget(mode: str) -> None:
    images = smooth_images(6, seed=2).numpy()
    base = jpeg.JPEGBaseline(images, mode=mode)
    assert base.sizes.shape == (6, len(jpeg.QUALITIES))
    for budget in (40, 200, 330, 400, 2000):
        res = base.run(budget)
        sent = res.quality > 0
        assert np.all(res.size_bytes[sent] <= budget)
        for i in np.nonzero(sent)[0]:
            # the chosen quality is the largest that fits
            q = res.quality[i]
            assert base.sizes[i, q - 1] <= budget
            assert np.all(base.sizes[i, q:] > budget)
            # what was counted is what was encoded
            assert jpeg.encode(images[i], int(q), mode)[1] == res.size_bytes[i]
        for i in np.nonzero(~sent)[0]:
            assert np.all(base.sizes[i] > budget)
            np.testing.assert_allclose(res.recon[i], images.astype(np.float64).mean(axis=0), rtol=1e-12)
    # a larger budget never makes it worse on average
    assert base.run(2000).psnr.mean() >= base.run(330).psnr.mean()


def test_jpeg_falls_back_to_the_mean_image_when_nothing_fits() -> None:
    images = smooth_images(4, seed=3).numpy()
    mean = np.full((3, 32, 32), 0.5)
    res = jpeg.JPEGBaseline(images, mode="file", mean_image=mean).at_snr(0.0, 512)  # 64 bytes
    assert res.budget_bytes == 64
    assert res.fallback_fraction == 1.0
    expected = [10 * math.log10(1 / np.mean((im - mean) ** 2)) for im in images]
    np.testing.assert_allclose(res.psnr, expected)


def test_cosine_lr_schedule_endpoints() -> None:
    from semcom.jscc.train import TrainConfig, cosine_lr

    cfg = TrainConfig(lr=1e-3, lr_min=1e-5)
    assert cosine_lr(cfg, 0.0) == pytest.approx(1e-3)
    assert cosine_lr(cfg, 0.5) == pytest.approx((1e-3 + 1e-5) / 2)
    assert cosine_lr(cfg, 1.0) == pytest.approx(1e-5) == cosine_lr(cfg, 3.0)


def test_short_training_run_improves_psnr_and_saves(tmp_path) -> None:
    from semcom.jscc.train import TrainConfig, train

    x = smooth_images(64, seed=5)
    torch.manual_seed(0)  # the initial weights, so the result does not depend on which tests ran first
    model = DeepJSCC(JSCCConfig(c=8))
    ch = AWGNChannel(10.0, seed=0)
    before = evaluate_psnr(model, x, ch, 10.0).mean()
    hist = train(model, x, ch, TrainConfig(epochs=10, batch_size=8, lr=1e-3, seed=0), val_images=x[:16],
                 progress=False)
    assert [h["epoch"] for h in hist] == list(range(1, 11)) and hist[-1]["loss"] < 0.8 * hist[0]["loss"]
    assert evaluate_psnr(model, x, ch, 10.0).mean() > before + 0.5
    save_checkpoint(tmp_path / "m", model)
    again, _ = load_checkpoint(tmp_path / "m", expect=JSCCConfig(c=8))
    np.testing.assert_allclose(evaluate_psnr(again, x, ch, 10.0), evaluate_psnr(model, x, ch, 10.0))


def test_shipped_checkpoint_loads_and_decodes_photos() -> None:
    """The committed k/n = 1/6 checkpoint (experiments/jscc/run.py) loads and is much better than the
    mean image on held-out photo crops (it measured ~32.8 dB at 20 dB when trained; mean image ~9.7 dB)."""
    from pathlib import Path

    import semcom.jscc
    from semcom.data.images import image_set

    ck = Path(semcom.jscc.__file__).parent / "checkpoints" / "deepjscc_kn1-6_32px.pt"
    model, doc = load_checkpoint(ck, expect=JSCCConfig(c=16))
    assert model.ratio == Fraction(1, 6) and "command" in doc["meta"]
    x = image_set("photos", size=32, n=32, seed=123, split="test")
    assert evaluate_psnr(model, x, AWGNChannel(20.0), 20.0).mean() > 25.0


def _scene_images(n: int, seed: int) -> torch.Tensor:
    from semcom.data.datasets import make_vqa_dataset

    train, _, _ = make_vqa_dataset(n, 1, seed=seed, image_size=64, split=(1.0, 0.0, 0.0), progress=False)
    return train.images.float() / 255.0


def test_scene_codec_warm_start_trains_and_round_trips(tmp_path) -> None:
    from semcom.jscc.scenes import PHOTO_CHECKPOINT, SceneJSCCConfig, train_scene_codec
    from semcom.jscc.train import TrainConfig

    images = _scene_images(8, seed=77)
    tiny_steps = TrainConfig(epochs=1, batch_size=4, lr=1e-7, lr_min=1e-7, seed=0)
    cfg = SceneJSCCConfig(init=str(PHOTO_CHECKPOINT), train=tiny_steps)
    photo, _ = load_checkpoint(PHOTO_CHECKPOINT)
    before = float(np.mean(evaluate_psnr(photo, images, AWGNChannel(20.0, seed=0), 20.0)))
    model, meta = train_scene_codec(cfg, images, images[:2], tmp_path / "codec", progress=False)
    assert meta["n_train_images"] == 8 and meta["image_size"] == 64 and len(meta["history"]) == 1
    loaded, doc = load_checkpoint(tmp_path / "codec")
    assert doc["meta"]["config"]["init"] == str(PHOTO_CHECKPOINT)
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values(),
                                                  strict=True))
    after = float(np.mean(evaluate_psnr(model, images, AWGNChannel(20.0, seed=0), 20.0)))
    assert abs(after - before) < 0.3  # it starts from the photo codec (tiny steps keep it there) ...
    scratch, _ = train_scene_codec(SceneJSCCConfig(init=None, train=tiny_steps), images, images[:2],
                                   tmp_path / "scratch", progress=False)
    assert float(np.mean(evaluate_psnr(scratch, images, AWGNChannel(20.0, seed=0), 20.0))) < before - 5
    # ... which a random initialisation is far from


def test_shipped_scene_codec_beats_the_photo_codec_on_fresh_scenes() -> None:
    from semcom.jscc.scenes import PHOTO_CHECKPOINT, SCENE_CHECKPOINT

    scene, doc = load_checkpoint(SCENE_CHECKPOINT)
    photo, _ = load_checkpoint(PHOTO_CHECKPOINT)
    assert scene.ratio == Fraction(1, 6) and channel_uses(scene.cfg.c, 64, 64) == 2048
    images = _scene_images(24, seed=4242)  # scenes of a seed the codec never saw
    psnr = {snr: [float(np.mean(evaluate_psnr(m, images, AWGNChannel(snr, seed=1), snr)))
                  for m in (scene, photo)] for snr in (0.0, 20.0)}
    assert psnr[20.0][0] > psnr[20.0][1] + 3.0   # trained on the scenes: several dB better
    assert psnr[0.0][0] < psnr[20.0][0] - 0.5    # and it degrades at low SNR
