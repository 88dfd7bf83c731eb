"""Tests for semcom.data.images: JSCC image sets from scikit-learn's photos/digits and generated scenes."""

import numpy as np
import pytest
import torch

from semcom.data.images import TRAIN_FRACTION, _photos, image_set


@pytest.mark.parametrize("source", ["photos", "digits", "scenes"])
def test_shape_range_and_determinism(source):
    a = image_set(source, size=24, n=16, seed=3)
    b = image_set(source, size=24, n=16, seed=3)
    c = image_set(source, size=24, n=16, seed=4)
    assert a.shape == (16, 3, 24, 24) and a.dtype == torch.float32
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    # Images are not constant: real content.
    assert float(a.std(dim=(1, 2, 3)).min()) > 0.01


@pytest.mark.parametrize("source", ["photos", "digits", "scenes"])
def test_train_and_test_differ(source):
    tr = image_set(source, size=16, n=32, seed=0, split="train")
    te = image_set(source, size=16, n=32, seed=0, split="test")
    # No test image equals any train image.
    d = (tr[:, None] - te[None, :]).abs().flatten(2).amax(-1)
    assert float(d.min()) > 0.0


def test_photo_crops_come_from_disjoint_regions():
    """Each train crop is found in the left region of a photo, each test crop only in the right one."""
    size = 8
    photos = _photos()
    for split in ("train", "test"):
        imgs = (image_set("photos", size=size, n=6, seed=1, split=split) * 255).round().byte()
        for img in imgs.permute(0, 2, 3, 1).numpy():
            found = []
            for photo in photos:
                cut = int(round(TRAIN_FRACTION * photo.shape[1]))
                for cand in (img, img[:, ::-1]):  # crops may be flipped
                    # exact-match search: candidates where the top-left pixel matches, then full check
                    h, w, _ = photo.shape
                    ys, xs = np.nonzero((photo[: h - size + 1, : w - size + 1] == cand[0, 0]).all(-1))
                    found += [x for y, x in zip(ys, xs, strict=True)
                              if np.array_equal(photo[y:y + size, x:x + size], cand)]
            assert found, "crop not found in any photograph"
            if split == "train":
                assert all(x + size <= cut for x in found)
            else:
                assert all(x >= cut for x in found)


def test_digits_look_like_digits():
    x = image_set("digits", size=32, n=8, seed=0)
    # 3 identical channels, dark background corners, bright strokes somewhere
    assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 1], x[:, 2])
    assert float(x[:, :, 0, 0].max()) < 0.2
    assert float(x.amax(dim=(1, 2, 3)).min()) > 0.5


def test_large_photo_size_is_resized_and_bad_args_raise():
    x = image_set("photos", size=256, n=2, seed=0, split="test")
    assert x.shape == (2, 3, 256, 256)
    with pytest.raises(ValueError, match="unknown image source"):
        image_set("cifar", n=1, seed=0)
    with pytest.raises(ValueError, match="split"):
        image_set("digits", n=1, seed=0, split="val")
