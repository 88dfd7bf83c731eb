"""Published-scale HF path on tiny randomly initialised LLaVA / LLaMA configs (no download, no tokenizer)."""

from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers")
pytest.importorskip("peft")

from semcom.agents.hf import (  # noqa: E402
    IGNORE_INDEX,
    HFPipelineConfig,
    HFTokenPipeline,
    build_receiver_batch,
    last_k_positions,
)
from semcom.channels import AWGNChannel  # noqa: E402

VOCAB = 64
IMAGE_TOKEN = 63
PAD = 0
N_PATCHES = 16  # 16x16 image, 4x4 patches, CLS dropped ("default" feature strategy)
HIDDEN = 32
K = 3


def tiny_models(seed: int = 0) -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(seed)
    vc = transformers.CLIPVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                       num_attention_heads=2, image_size=16, patch_size=4, projection_dim=16)
    tc = transformers.LlamaConfig(vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=64,
                                  num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
                                  max_position_embeddings=128, pad_token_id=PAD)
    tx = transformers.LlavaForConditionalGeneration(
        transformers.LlavaConfig(vision_config=vc, text_config=tc, image_token_index=IMAGE_TOKEN,
                                 image_seq_length=N_PATCHES))
    rx = transformers.LlamaForCausalLM(tc)
    return tx, rx


def batch(b: int = 2, seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    # Transmitter input: [bos][image tokens][vague description], left padded (row 1 is shorter).
    desc_len = [6, 4]
    length = 1 + N_PATCHES + max(desc_len)
    ids = torch.full((b, length), PAD, dtype=torch.long)
    mask = torch.zeros((b, length), dtype=torch.long)
    for i in range(b):
        n = 1 + N_PATCHES + desc_len[i]
        row = [1] + [IMAGE_TOKEN] * N_PATCHES + torch.randint(2, 60, (desc_len[i],), generator=g).tolist()
        ids[i, length - n:] = torch.tensor(row)
        mask[i, length - n:] = 1
    questions = [torch.randint(2, 60, (n,), generator=g).tolist() for n in (5, 3)]
    answers = [[7], [9, 11]]
    rx_ids, rx_mask, rx_labels = build_receiver_batch(questions, answers, PAD)
    return {"input_ids": ids, "attention_mask": mask, "pixel_values": torch.randn(b, 3, 16, 16, generator=g),
            "rx_ids": rx_ids, "rx_mask": rx_mask, "rx_labels": rx_labels}


def make_pipe(grad_mode: str = "straight_through", seed: int = 0) -> HFTokenPipeline:
    tx, rx = tiny_models(seed)
    cfg = HFPipelineConfig(k_tokens=K, m=8, jtcc_hidden=16, grad_mode=grad_mode, lora_r=4, lora_dropout=0.0)
    return HFTokenPipeline(tx, rx, cfg, channel=AWGNChannel(snr_db=10.0, seed=3))


def test_last_k_positions_left_and_right_padding() -> None:
    mask = torch.tensor([[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]])
    assert last_k_positions(mask, 3).tolist() == [[3, 4, 5], [1, 2, 3]]
    with pytest.raises(ValueError):
        last_k_positions(mask, 5)


def test_receiver_batch_labels_only_on_answers() -> None:
    ids, mask, labels = build_receiver_batch([[5, 6], [7]], [[8], [9, 10]], PAD)
    assert ids.tolist() == [[5, 6, 8], [7, 9, 10]]
    assert labels.tolist() == [[IGNORE_INDEX, IGNORE_INDEX, 8], [IGNORE_INDEX, 9, 10]]


def test_lora_only_on_language_model_kv() -> None:
    pipe = make_pipe()
    trainable = {n for n, p in pipe.named_parameters() if p.requires_grad}
    lora = {n for n in trainable if "lora_" in n}
    assert lora and all(("k_proj" in n or "v_proj" in n) and "language_model" in n for n in lora)
    assert not any("vision_tower" in n for n in lora)
    assert trainable - lora == {n for n, _ in pipe.jtcc.named_parameters(prefix="jtcc")}
    assert not pipe.receiver.training


def test_forward_shapes_and_loss() -> None:
    pipe = make_pipe()
    x = batch()
    tokens = pipe.machine_tokens(x["input_ids"], x["attention_mask"], x["pixel_values"])
    assert tokens.shape == (2, K, HIDDEN)
    z = pipe.jtcc.encode(tokens)
    assert z.shape == (2, K, 8)
    torch.testing.assert_close(z.pow(2).sum(-1), torch.full((2, K), 4.0))  # m/2 complex symbols, unit power
    out = pipe(**x)
    assert out.logits.shape == (2, K + x["rx_ids"].shape[1], VOCAB)
    assert torch.isfinite(out.loss)
    acc = pipe.answer_accuracy(out.logits, x["rx_labels"])
    assert acc.shape == (2,)


@pytest.mark.parametrize("grad_mode", ["straight_through", "exact"])
def test_one_step_changes_only_lora_kv_and_jtcc(grad_mode: str) -> None:
    pipe = make_pipe(grad_mode)
    before = {n: p.detach().clone() for n, p in pipe.state_dict().items()}
    opt = torch.optim.Adam(pipe.trainable_parameters(), lr=1e-2)
    out = pipe(**batch())
    out.loss.backward()
    # Gradients reached the transmitter through the channel and the frozen receiver.
    lora_b = [p for n, p in pipe.named_parameters() if "lora_B" in n]
    assert lora_b and all(p.grad is not None and p.grad.abs().sum() > 0 for p in lora_b)
    assert all(p.grad is None for p in pipe.receiver.parameters())
    opt.step()
    after = pipe.state_dict()
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    assert changed, "the optimiser step changed nothing"
    for n in changed:
        assert n.startswith("jtcc.") or ("lora_" in n and ("k_proj" in n or "v_proj" in n)), n
    # LoRA B (zero-initialised) must move in every adapted k/v projection; JTCC must move too.
    assert all(n in changed for n in before if "lora_B" in n)
    assert any(n.startswith("jtcc.") for n in changed)
    # Everything else, the receiver and the vision tower included, is bit-identical.
    for n in before:
        if n.startswith("receiver.") or "vision_tower" in n or "multi_modal_projector" in n:
            assert torch.equal(before[n], after[n]), n


def test_gradient_modes_agree_on_awgn_and_differ_on_fading() -> None:
    """AWGN: dy/dz = I, so the paper's approximation is exact. A gain channel: the two modes differ."""
    x = batch()

    def grads(grad_mode: str, channel: torch.nn.Module | None) -> torch.Tensor:
        pipe = make_pipe(grad_mode)
        if channel is not None:
            pipe.jtcc.channel = channel
        pipe(**x).loss.backward()
        return torch.cat([p.grad.flatten() for n, p in pipe.named_parameters() if "lora_B" in n])

    g_st = grads("straight_through", AWGNChannel(10.0, seed=5))
    g_ex = grads("exact", AWGNChannel(10.0, seed=5))
    torch.testing.assert_close(g_st, g_ex)

    class Gain(torch.nn.Module):
        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return 0.3 * z

    g_st = grads("straight_through", Gain())
    g_ex = grads("exact", Gain())
    assert not torch.allclose(g_st, g_ex)


def test_straight_through_runs_a_non_differentiable_channel() -> None:
    pipe = make_pipe("straight_through")

    def numpy_channel(z: torch.Tensor) -> torch.Tensor:  # e.g. a flowgraph: leaves autograd
        y = z.detach().numpy() + 0.1
        return torch.from_numpy(y)

    pipe.jtcc.channel = numpy_channel
    pipe(**batch()).loss.backward()
    assert pipe.jtcc.encoder[1].weight.grad is not None


def test_save_load_trainable_round_trip(tmp_path) -> None:
    pipe = make_pipe()
    opt = torch.optim.Adam(pipe.trainable_parameters(), lr=1e-2)
    pipe(**batch()).loss.backward()
    opt.step()
    pipe.save_trainable(tmp_path / "ckpt")
    fresh = make_pipe()
    fresh.load_trainable(tmp_path / "ckpt")
    for (n, a), (_, b) in zip(pipe.state_dict().items(), fresh.state_dict().items(), strict=True):
        assert torch.equal(a, b), n
    other = HFTokenPipeline(*tiny_models(), HFPipelineConfig(k_tokens=K, m=6, jtcc_hidden=16, lora_r=4))
    with pytest.raises(ValueError, match="m=8"):
        other.load_trainable(tmp_path / "ckpt")


def test_from_pretrained_local_only(tmp_path) -> None:
    tx, rx = tiny_models()
    tx.save_pretrained(tmp_path / "tx")
    rx.save_pretrained(tmp_path / "rx")
    cfg = HFPipelineConfig(k_tokens=K, m=8, jtcc_hidden=16, lora_r=4)
    pipe = HFTokenPipeline.from_pretrained(tmp_path / "tx", tmp_path / "rx", cfg, dtype=torch.float32)
    assert torch.isfinite(pipe(**batch()).loss)
    with pytest.raises(FileNotFoundError):
        HFTokenPipeline.from_pretrained(tmp_path / "missing", tmp_path / "rx", cfg)


def _fsdp_step(pipe: HFTokenPipeline, x: dict[str, torch.Tensor]) -> tuple[float, float]:
    """Loss before and after one Adam step on ``x``."""
    opt = torch.optim.Adam(pipe.trainable_parameters(), lr=1e-2)
    loss = pipe(**x).loss
    loss.backward()
    opt.step()
    with torch.no_grad():
        return float(loss.detach()), float(pipe(**x).loss)


def _fsdp_pipe() -> HFTokenPipeline:
    tx, rx = tiny_models(0)
    cfg = HFPipelineConfig(k_tokens=K, m=8, jtcc_hidden=16, grad_mode="exact", lora_r=4, lora_dropout=0.0)
    return HFTokenPipeline(tx, rx, cfg, channel=None)  # no noise: the processes would draw it alike


def _fsdp_worker(rank: int, out: str) -> None:
    from semcom.agents.hf import shard_with_fsdp

    torch.set_num_threads(1)
    pipe = shard_with_fsdp(_fsdp_pipe())
    lora_b = next(p for n, p in pipe.named_parameters() if "lora_B" in n)
    local_rows = lora_b.to_local().shape[0]
    before, after = _fsdp_step(pipe, batch(seed=1 + rank))  # this rank's half of the global batch
    pipe.reshard()  # the root stays gathered after a forward; sharded again, every weight is a DTensor
    trained = {n: p.full_tensor().detach() for n, p in pipe.named_parameters() if p.requires_grad}
    torch.save({"before": before, "after": after, "local_rows": local_rows, "rows": lora_b.shape[0],
                "trained": trained}, f"{out}/rank{rank}.pt")


@pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                    reason="torch without gloo")
def test_fsdp_two_processes_match_one_with_the_same_global_batch(tmp_path) -> None:
    """The 7B path's sharded setup (FSDP2 on CPU / gloo, 2 processes, tiny models): every process holds
    half of each weight, and one step on two half-batches gives the losses and LoRA/JTCC weights of one
    process on the whole batch (each half has 3 answer tokens, so the token-mean losses average)."""
    from semcom import distributed

    distributed.run_local(_fsdp_worker, 2, str(tmp_path))
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    assert all(r["local_rows"] * 2 == r["rows"] for r in ranks)

    halves = [batch(seed=1), batch(seed=2)]
    whole = {k: torch.cat([h[k] for h in halves]) for k in halves[0]}
    pipe = _fsdp_pipe()
    before, after = _fsdp_step(pipe, whole)
    assert before == pytest.approx(sum(r["before"] for r in ranks) / 2, rel=1e-5)
    assert after == pytest.approx(sum(r["after"] for r in ranks) / 2, rel=1e-5)
    assert after < before
    mine = {n: p.detach() for n, p in pipe.named_parameters() if p.requires_grad}
    assert set(mine) == set(ranks[0]["trained"])
    for name, value in mine.items():
        torch.testing.assert_close(ranks[0]["trained"][name], value, rtol=0, atol=1e-5, msg=name)
