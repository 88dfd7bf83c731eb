"""Partial sampling: MNIST loader, cluttered scenes, sampling geometry, episodes, checkpoints, --quick run."""

import json

import pytest
import torch

from semcom.channels import AWGNChannel
from semcom.checkpoint import CheckpointError
from semcom.data.mnist import mnist_digits
from semcom.partial.episode import run_episode
from semcom.partial.feedback import FeedbackLink, message_bytes
from semcom.partial.model import (
    PartialConfig,
    PartialSampler,
    coarse_side,
    coarse_view,
    cover,
    extract_patches,
    grid_side,
    nearest_place,
    place_centres,
    relevance_target,
)
from semcom.partial.scenes import DIGIT, INK_MARGIN, make_scenes, n_fragments
from semcom.partial.train import load_partial, save_partial

torch.set_num_threads(1)  # as the CLIs do: two threads on this shared 2-core machine are far slower


@pytest.fixture(scope="module")
def digits():
    return mnist_digits("test")


def test_mnist_splits_are_real_digits_and_disjoint():
    xtr, ytr = mnist_digits("train")
    xte, yte = mnist_digits("test")
    assert xtr.shape == (4000, 28, 28) and xte.shape == (1000, 28, 28)
    assert float(xtr.min()) == 0.0 and float(xtr.max()) == 1.0
    assert set(ytr.tolist()) == set(range(10)) and set(yte.tolist()) == set(range(10))
    # No test digit is also a train digit (compare the raw pixels).
    train_keys = {bytes(x.numpy().tobytes()) for x in xtr}
    assert not any(bytes(x.numpy().tobytes()) in train_keys for x in xte)
    # MNIST puts almost all the ink inside the central 20 x 20 box (measured: 96.7 %; the scenes keep
    # clutter out of that box).
    border = xtr.clone()
    border[:, INK_MARGIN:DIGIT - INK_MARGIN, INK_MARGIN:DIGIT - INK_MARGIN] = 0
    assert float(border.sum()) < 0.05 * float(xtr.sum())
    with pytest.raises(ValueError, match="split"):
        mnist_digits("val")


def test_scenes_clutter_is_outside_the_ink_box_and_deterministic(digits):
    x, y = digits
    assert n_fragments(28, 1.0) == 0 and n_fragments(56, 1.0) == 3 and n_fragments(112, 1.0) == 15
    s28 = make_scenes(x, y, 28, 20, torch.Generator().manual_seed(0))
    assert torch.equal(s28.image, s28.digit)  # the digit alone
    sc = make_scenes(x, y, 84, 50, torch.Generator().manual_seed(1))
    again = make_scenes(x, y, 84, 50, torch.Generator().manual_seed(1))
    assert torch.equal(sc.image, again.image) and torch.equal(sc.label, again.label)
    assert sc.image.shape == sc.digit.shape == (50, 84, 84)
    clutter = sc.image - sc.digit
    assert float(clutter.min()) >= 0 and float(clutter.sum()) > 0
    for i in range(50):
        t, left = (int(v) for v in sc.top_left[i])
        box = clutter[i, t + INK_MARGIN:t + DIGIT - INK_MARGIN, left + INK_MARGIN:left + DIGIT - INK_MARGIN]
        assert float(box.abs().max()) == 0.0  # no fragment over the digit's ink
        # The digit layer is exactly the labelled digit, pasted at top_left.
        inside = sc.digit[i, t:t + DIGIT, left:left + DIGIT]
        assert float(sc.digit[i].sum()) == pytest.approx(float(inside.sum()))
    with pytest.raises(ValueError, match="smaller"):
        make_scenes(x, y, 20, 2, torch.Generator())


def test_sampling_geometry():
    assert [grid_side(s, 4) for s in (28, 56, 84, 112)] == [7, 14, 21, 28]
    assert [grid_side(s, 8) for s in (28, 56, 84, 112)] == [6, 13, 20, 27]
    with pytest.raises(ValueError):
        grid_side(30, 4)
    assert [coarse_side(s) for s in (28, 56, 84, 112)] == [2, 4, 6, 8]
    img = torch.rand(3, 56, 56)
    places = torch.tensor([[0, 15, 195], [14, 1, 100], [3, 4, 5]])
    patches = extract_patches(img, places, 4)
    for b in range(3):
        for a in range(3):
            r, c = divmod(int(places[b, a]), 14)
            assert torch.equal(patches[b, a], img[b, 4 * r:4 * r + 4, 4 * c:4 * c + 4])
    cov = cover(torch.zeros(3, 56, 56, dtype=torch.bool), places, 4)
    assert int(cov.sum()) == 3 * 3 * 16
    digit = torch.rand(3, 56, 56)
    rel = relevance_target(digit, cov, 4)
    r, c = divmod(15, 14)
    assert float(rel[0, 15]) == 0.0  # already received
    expected = digit[1, 4 * r:4 * r + 4, 4 * c:4 * c + 4].sum()
    assert float(rel[1, 15]) == pytest.approx(float(expected), rel=1e-5)
    assert torch.allclose(coarse_view(img)[0, 5], img[0, 14:28, 14:28].mean())
    # Centres are symmetric about the canvas centre; the nearest place to the centre pixel is central.
    cen = place_centres(56, 4)
    assert torch.allclose(cen.mean(0), torch.zeros(2), atol=1e-6)
    central = (6 * 14 + 6, 6 * 14 + 7, 7 * 14 + 6, 7 * 14 + 7)
    assert int(nearest_place(torch.tensor([[28, 28]]), 56, 4)) in central


@pytest.mark.parametrize("patch", [4, 8])
def test_episode_places_distinct_and_accounting_exact(digits, patch):
    x, y = digits
    torch.manual_seed(0)
    model = PartialSampler(PartialConfig(patch=patch)).eval()
    sc = make_scenes(x, y, 56, 6, torch.Generator().manual_seed(3))
    g = grid_side(56, patch)
    with torch.no_grad():
        for mode in ("guided", "random"):
            ep = run_episode(model.edge, model.receiver, sc, rounds=3, agents=4, mode=mode,
                             channel=AWGNChannel(10.0, seed=0), generator=torch.Generator().manual_seed(0))
            places = torch.cat(ep.places, dim=1)
            assert places.shape == (6, 12)
            assert all(len(set(row.tolist())) == 12 for row in places)  # never the same place twice
            patch_uses = 3 * 4 * patch * patch // 4
            coarse_uses = coarse_side(56) ** 2 // 2 if mode == "guided" else 0
            assert ep.channel_uses == 6 * (patch_uses + coarse_uses)
            assert ep.position_bits == 6 * 12 * (g * g - 1).bit_length()
            assert ep.feedback_bits == (6 * 3 * 8 * message_bytes(g, 4) if mode == "guided" else 0)
            assert len(ep.logits) == 3 and ep.logits[0].shape == (6, 10)
    with pytest.raises(ValueError, match="mode"):
        run_episode(model.edge, model.receiver, sc, rounds=1, agents=1, mode="oracle", channel=None,
                    generator=torch.Generator())


def test_feedback_over_zeromq_gives_the_same_episode(digits):
    x, y = digits
    torch.manual_seed(1)
    model = PartialSampler(PartialConfig(patch=4)).eval()
    sc = make_scenes(x, y, 84, 5, torch.Generator().manual_seed(4))
    with torch.no_grad(), FeedbackLink() as link:
        direct = run_episode(model.edge, model.receiver, sc, rounds=3, agents=2, mode="guided", channel=None,
                             generator=torch.Generator().manual_seed(0))
        via = run_episode(model.edge, model.receiver, sc, rounds=3, agents=2, mode="guided", channel=None,
                          generator=torch.Generator().manual_seed(0), link=link)
        assert link.messages == 5 * 3 and link.bits == direct.feedback_bits == via.feedback_bits
    for a, b in zip(direct.places, via.places, strict=True):
        assert torch.equal(a, b)
    assert torch.allclose(direct.logits[-1], via.logits[-1])


def test_training_learns_and_checkpoint_round_trips(tmp_path, digits):
    from semcom.partial.train import TrainConfig, train_partial

    cfg = TrainConfig(epochs=2, steps_per_epoch=12, batch_size=32, sizes=(28,), rounds=2, agents=4, seed=0,
                      random_share=0.0)
    model, history = train_partial(PartialConfig(patch=8), cfg, AWGNChannel(10.0, seed=0), progress=False)
    assert history[-1]["loss"] < history[0]["loss"]
    path = tmp_path / "p8"
    save_partial(path, model, {"train": cfg.to_dict()})
    loaded, doc = load_partial(path, expect=PartialConfig(patch=8))
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k])
    assert doc["kind"] == "semcom.partial"
    with pytest.raises(CheckpointError, match="does not match"):
        load_partial(path, expect=PartialConfig(patch=4))
    # Weights of a 4x4 model under an 8x8 config: refused with the shapes named.
    other = tmp_path / "p4"
    save_partial(other, PartialSampler(PartialConfig(patch=4)), {})
    js = json.loads((tmp_path / "p4.json").read_text())
    js["config"]["patch"] = 8
    (tmp_path / "p4.json").write_text(json.dumps(js))
    with pytest.raises(CheckpointError, match="shape mismatches"):
        load_partial(other)


def test_quick_cli_run_writes_outputs(tmp_path):
    from semcom.cli import main

    out = tmp_path / "out"
    assert main(["partial", "--quick", "--out", str(out), "--no-progress"]) == 0
    for name in ("results.csv", "summary.csv", "summary.json", "fig6_accuracy_vs_source_size.png",
                 "ofat_loopback.png", "checkpoints/partial_p4_seed0.pt", "checkpoints/whole_jscc_seed0.pt"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ofat"]["frames_sent"] > 0
    assert summary["ofat"]["frames_sent"] >= summary["ofat"]["frames_lost"] >= 0
    assert summary["ofat"]["feedback_messages"] > 0
    assert set(summary["checks"]) >= {"rises_with_rounds", "falls_with_source_size",
                                      "guided_beats_random_4x4"}


@pytest.mark.parametrize(("argv", "message"), [
    (["--patches", "6"], "multiple of 4"),
    (["--sizes", "60"], "multiple of 14"),
    (["--agents", "17"], "agents"),
    (["--sizes", "28", "--agents", "16", "--rounds", "4"], "places"),
])
def test_cli_refuses_impossible_settings(tmp_path, capsys, argv, message):
    from semcom.cli import main

    assert main(["partial", "--out", str(tmp_path), *argv]) == 2
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
