"""Lightweight DeepJSCC encoders: pruning, int8 quantization, distillation, compressed checkpoints, the
`semcom lightweight --quick` run and a compressed checkpoint through `semcom send jscc`."""

from __future__ import annotations

import csv
import json
import shutil

import pytest
import torch

from semcom.channels import AWGNChannel
from semcom.checkpoint import CheckpointError
from semcom.cli import main
from semcom.jscc import DeepJSCC, JSCCConfig, save_checkpoint
from semcom.jscc.model import JSCCEncoder
from semcom.lightweight import compress as C
from semcom.lightweight.checkpoint import encoder_file_bytes, load_codec, save_compressed

torch.set_num_threads(1)


def images(n: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    """(n, 3, size, size) smooth random images in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 4, 4, generator=g)
    return torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)


def encoder(seed: int = 0, **kw) -> JSCCEncoder:
    torch.manual_seed(seed)
    return JSCCEncoder(JSCCConfig(**kw)).eval()


@pytest.mark.parametrize("amount", [0.3, 0.7, 0.9])
def test_magnitude_pruning_zeroes_the_stated_fraction_of_smallest_weights(amount: float) -> None:
    enc = encoder()
    before = torch.cat([c.weight.detach().flatten().abs() for c in C.convs(enc)])
    C.magnitude_prune(enc, amount)
    after = torch.cat([c.weight.detach().flatten() for c in C.convs(enc)])
    n_zero = int((after == 0).sum())
    assert n_zero == round(amount * before.numel())
    assert C.sparsity(enc) == pytest.approx(n_zero / before.numel())
    # global L1: every removed weight is no larger than every kept one
    assert before[after == 0].max() <= before[after != 0].min()
    # the zeros survive folding the re-parametrisation into plain weights
    assert C.sparsity(C.plain_copy(enc)) == pytest.approx(n_zero / before.numel())
    with pytest.raises(ValueError, match="in \\[0, 1\\)"):
        C.magnitude_prune(encoder(), 1.0)


def test_channel_pruning_removes_filters_and_compacts_to_the_same_function() -> None:
    enc = C.channel_prune(encoder(), 0.5)
    layers = C.convs(enc)
    for conv in layers[:-1]:
        dead = (conv.weight.flatten(1) == 0).all(dim=1) & (conv.bias == 0)
        assert int(dead.sum()) == conv.out_channels // 2
    assert not (layers[-1].weight.flatten(1) == 0).all(dim=1).any()   # the c symbol filters stay
    small = C.compact(enc)
    assert C.encoder_config(small) == JSCCConfig(c=16, hidden=(8, 16))
    # parameters of the compact network against the formula sum(cout * (cin k^2 + 1) + cout PReLU slopes)
    widths = [3, 8, 16, 16, 16, 16]
    expected = sum(co * (ci * 25 + 1) + co for ci, co in zip(widths, widths[1:], strict=False))
    assert C.count_params(small) == (expected, expected)
    x = images(4)
    with torch.no_grad():
        torch.testing.assert_close(small(x), enc(x), rtol=0, atol=1e-5)


def test_mac_count_matches_the_conv_formula() -> None:
    enc = encoder()
    # outputs 16x16 after the first stride-2 layer, 8x8 after the second and the stride-1 layers
    expected = 16 * 3 * 25 * 256 + 32 * 16 * 25 * 64 + 2 * 32 * 32 * 25 * 64 + 16 * 32 * 25 * 64
    assert C.count_macs(enc, images(1)) == (expected, expected)
    C.magnitude_prune(enc, 0.5)
    dense, nonzero = C.count_macs(enc, images(1))
    assert dense == expected and nonzero < 0.6 * expected


def test_int8_checkpoint_round_trips_with_weights_only_and_sizes_follow_the_bit_width(tmp_path) -> None:
    torch.manual_seed(0)
    codec = DeepJSCC(JSCCConfig()).eval()
    q = C.quantize_ptq(codec.encoder, images(32, seed=1))
    int8 = C.with_encoder(codec, q)
    pt, _ = save_compressed(tmp_path / "int8", int8, "int8", meta={"test": True})
    state = torch.load(pt, weights_only=True)     # plain tensors only: no pickled code
    assert state["encoder.net.0.conv.weight"].dtype == torch.qint8
    back, doc = load_codec(tmp_path / "int8")
    assert doc["config"]["weights"] == "int8" and doc["meta"] == {"test": True}
    x = images(6, seed=2)
    with torch.no_grad():
        torch.testing.assert_close(back.encoder(x), q(x), rtol=0, atol=0)
        z_float = codec.encoder(x)
        assert float((q(x) - z_float).norm() / z_float.norm()) < 0.1   # int8 is close to fp32
        # the symbols keep the exact power normalisation (PowerNormalize stays fp32)
        torch.testing.assert_close(back.encoder(x).pow(2).flatten(1).sum(1), torch.full((6,), 512.0))
    fp32 = encoder_file_bytes(codec.encoder, "fp32", tmp_path)
    assert 0.45 < encoder_file_bytes(codec.encoder, "fp16", tmp_path) / fp32 < 0.55
    assert encoder_file_bytes(q, "int8", tmp_path) / fp32 < 1 / 3


def test_mismatched_compressed_checkpoints_are_refused(tmp_path) -> None:
    torch.manual_seed(0)
    codec = DeepJSCC(JSCCConfig()).eval()
    int8 = C.with_encoder(codec, C.quantize_ptq(codec.encoder, images(8)))
    save_compressed(tmp_path / "int8", int8, "int8")
    save_compressed(tmp_path / "fp32", C.with_encoder(codec, C.compact(C.channel_prune(
        copy_of(codec.encoder), 0.5))), "fp32")
    doc = json.loads((tmp_path / "int8.json").read_text())
    doc.pop("sha256")

    # an int8 config over float weights: the keys differ
    shutil.copy(tmp_path / "fp32.pt", tmp_path / "bad.pt")
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="does not match config"):
        load_codec(tmp_path / "bad")
    # int8 weights for another architecture
    shutil.copy(tmp_path / "int8.pt", tmp_path / "bad.pt")
    doc["config"]["encoder"]["hidden"] = [8, 16]
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="shape mismatches"):
        load_codec(tmp_path / "bad")
    # an encoder that sends another number of symbol maps than the decoder reads
    doc["config"]["encoder"]["c"] = 8
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="invalid model config"):
        load_codec(tmp_path / "bad")
    # an unknown bit width
    doc["config"]["encoder"]["c"], doc["config"]["weights"] = 16, "int4"
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="int4"):
        load_codec(tmp_path / "bad")
    # the checksum still guards the weights
    (tmp_path / "int8.pt").write_bytes((tmp_path / "int8.pt").read_bytes()[:-10])
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_codec(tmp_path / "int8")
    with pytest.raises(ValueError, match="cannot store"):
        save_compressed(tmp_path / "x", codec, "int8")
    # a plain DeepJSCC checkpoint loads through the same entry point
    save_checkpoint(tmp_path / "plain", codec)
    assert load_codec(tmp_path / "plain")[1]["kind"] == "semcom.deepjscc"


def copy_of(module: torch.nn.Module) -> torch.nn.Module:
    return C.plain_copy(module)


def test_fine_tuning_keeps_the_pruned_zeros_and_the_frozen_decoder() -> None:
    torch.manual_seed(0)
    codec = DeepJSCC(JSCCConfig(c=8, hidden=(8, 8))).eval()
    dec_before = {k: v.clone() for k, v in codec.decoder.state_dict().items()}
    enc = C.magnitude_prune(copy_of(codec.encoder), 0.6)
    w_before = [c.weight.detach().clone() for c in C.convs(enc)]
    C.fine_tune(codec, enc, images(32), AWGNChannel(10.0, seed=0), C.FineTuneConfig(epochs=1, batch_size=16),
                progress=False)
    assert C.sparsity(enc) == pytest.approx(0.6, abs=1e-3)
    assert any(not torch.equal(c.weight, w) for c, w in zip(C.convs(enc), w_before, strict=True))
    for k, v in codec.decoder.state_dict().items():
        assert torch.equal(v, dec_before[k])


def test_distillation_loss_terms() -> None:
    z = torch.randn(2, 4, 2, 2)
    x = torch.rand(2, 3, 8, 8)
    assert float(C.distill_loss(z, z, x, x, 1.0)) == 0.0
    # symbol term: MSE / 0.5 (mean power of one real of a unit-power complex symbol)
    assert float(C.distill_loss(z + 1.0, z, x, x, 0.5)) == pytest.approx(0.5 * 1.0 / 0.5)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("lightweight")
    assert main(["lightweight", "--quick", "--no-progress", "--out", str(out)]) == 0
    return out


def test_quick_run_writes_its_outputs(quick_run) -> None:
    for name in ("results.csv", "summary.csv", "results.png", "summary.json", "table.md"):
        assert (quick_run / name).stat().st_size > 0
    summary = json.loads((quick_run / "summary.json").read_text())
    assert set(summary["checkpoints"]) == {"int8_ptq", "int8_qat", "structured50_fp32", "structured50_int8",
                                           "student_int8"}
    assert "PReLU" in summary["float_operators"]
    rows = list(csv.DictReader((quick_run / "summary.csv").open()))
    teacher = next(r for r in rows if (r["method"], r["bits"], r["how"]) == ("teacher", "fp32", "none"))
    assert float(teacher["psnr_mean_db"]) > 25      # the shipped codec, not noise
    assert float(teacher["psnr_loss_db"]) == 0.0
    mag = {float(r["amount"]): r for r in rows if (r["method"], r["how"]) == ("magnitude", "none")}
    assert float(mag[0.5]["weight_sparsity"]) == pytest.approx(0.5, abs=0.01)


def test_compressed_checkpoint_runs_over_torch_channel_and_flowgraph(quick_run, tmp_path) -> None:
    ck = quick_run / "checkpoints" / "int8_ptq"
    assert main(["send", "jscc", "--checkpoint", str(ck), "--n", "10", "--batch", "10", "--snr", "20",
                 "--no-progress", "--out", str(tmp_path)]) == 0
    rows = list(csv.DictReader((tmp_path / "send_jscc.csv").open()))
    torch_psnr, flowgraph_psnr = (float(r["psnr_db"]) for r in rows)
    assert rows[1]["frames"] == "10" and rows[1]["lost"] == "0"
    assert torch_psnr > 25
    assert abs(torch_psnr - flowgraph_psnr) < 1.0


def test_jtcc_encoder_variants_prune_and_quantize_the_token_link() -> None:
    from semcom.agents.jtcc import JTCC
    from semcom.lightweight.tokens import token_variants

    torch.manual_seed(0)
    link = JTCC(d=32, m=8, hidden=64).eval()
    tokens = torch.randn(4, 5, 32)
    variants = {(a, b): enc for a, b, enc in token_variants(link.encoder, (0.0, 0.5, 0.9))}
    n_weights = 32 * 64 + 64 * 8
    for a in (0.5, 0.9):
        ws = torch.cat([m.weight.flatten() for m in variants[(a, "fp32")].modules()
                        if isinstance(m, torch.nn.Linear)])
        assert int((ws == 0).sum()) == round(a * n_weights)
    int8 = variants[(0.0, "int8")]
    assert any(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in int8.modules())
    with torch.no_grad():
        z, zq = link.encoder(tokens), int8(tokens)
    assert float((zq - z).norm() / z.norm()) < 0.05
    # the shipped encoder is left as it was
    assert all(int((m.weight == 0).sum()) == 0 for m in C.make_permanent(link.encoder).modules()
               if isinstance(m, torch.nn.Linear))
