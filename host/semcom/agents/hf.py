"""Published-scale token pipeline with Hugging Face ``transformers`` + ``peft``.

The paper's setting: a LLaVA-1.5 sensor agent (``LlavaForConditionalGeneration``) reads an image and a
vague task description; the last-layer hidden states at the final K positions of its input are the K
machine-language tokens. JTCC (``semcom.agents.jtcc``) compresses every token to m real channel values and
decodes it after the channel. A LLaMA task agent (``LlamaForCausalLM``), **frozen**, takes the decoded
tokens as a prefix (``inputs_embeds``) before the detailed question and answers. Only LoRA adapters on the
transmitter's language-model ``k_proj`` and ``v_proj`` (and JTCC) are trained. The vision tower, the
projector, all base weights of both LLMs and the receiver stay bit-identical.

Gradient through the channel: ``grad_mode="straight_through"`` (the paper: the gradient at the received
embeddings stands in for the gradient at the transmitted ones, so the channel may be hardware) or
``"exact"`` (back-propagation through a differentiable ``semcom.channels`` channel).

Weights: ``HFTokenPipeline.from_pretrained(tx_dir, rx_dir)`` loads both models from local directories in
the Hugging Face layout (``from_pretrained(path, local_files_only=True)``; nothing is downloaded), e.g.
``llava-hf/llava-1.5-7b-hf`` and ``meta-llama/Llama-2-7b-hf`` saved with ``save_pretrained``. LLaVA-1.5-7B
and LLaMA-2-7B both have hidden size 4096, so the tokens fit the receiver's embedding space directly.
The tests build tiny randomly initialised configurations instead (``tests/test_agents_hf.py``).

Cost of a 7B run (computed, not measured; one training sample = one image + question):

* Weights, fp16/bf16: LLaVA-1.5-7B = 6.74 B (Vicuna-7B) + 0.30 B (CLIP ViT-L/14-336) + 0.02 B
  (projector) = 7.06 B params -> 14.1 GB (13.2 GiB); LLaMA-2-7B 6.74 B -> 13.5 GB (12.6 GiB).
  Together 27.6 GB (25.7 GiB). Neither fits a 24 GB card in 16 bit.
* Trainable state: LoRA r=8 on k/v of 32 layers = 32 * 2 * 8 * (4096 + 4096) = 4.19 M params; JTCC
  4096 -> 1024 -> 256 -> 1024 -> 4096 = 8.9 M params; in fp32 with Adam (weight + grad + 2 moments =
  16 B/param) ~ 0.21 GB.
* Activations for back-propagation: the gradient has to reach LoRA in layer 0, so every transmitter layer
  keeps its activations. LLaVA-1.5 has 576 image tokens + ~40 text tokens -> s ~ 620. With a fused
  (SDPA/flash) attention, ~34 * s * h bytes per layer in 16 bit (Korthikanti et al. 2022), i.e.
  34 * 620 * 4096 * 32 layers ~ 2.8 GB per sample; the receiver (s ~ 45: K + question + answer) adds
  ~0.2 GB per sample; the frozen vision tower needs none. Batch 4: ~12 GB. With gradient checkpointing
  on the transmitter (``gradient_checkpointing=True``) ~ 2 * s * h * 32 = 0.16 GB per sample plus one
  layer's recomputation.
* Total, batch 4: ~27.6 + 0.2 + 12 + ~2 (workspace, receiver logits) ~ 42 GB -> an 80 GB A100/H100, or a
  48 GB card (A6000, L40S); with gradient checkpointing ~31 GB -> a 40 GB A100. A 24 GB card needs the
  frozen models quantised (8/4 bit), which this module does not do.
* Several GPUs (``shard_with_fsdp``, FSDP2 ``fully_shard``): every decoder layer of both LLMs and every
  vision-encoder layer is a unit of its own, the rest is sharded at the root, so each of N processes
  keeps 1/N of the 27.6 GB of 16-bit weights (and of the trainable state) and gathers one layer at a
  time (computed, not measured): on 8 GPUs ~3.5 GB of weights per GPU + one layer's gathered copy
  (~0.4 GB), which leaves room for batch 4 per GPU with the activations above on 24 GB cards. Run,
  with a training script of your own around ``HFTokenPipeline`` (no dataset loader for LLaVA ships):

      torchrun --nproc-per-node 8 train_hf.py   # calls semcom.distributed.setup() and shard_with_fsdp

  Tested on CPU with gloo, 2 processes, tiny random configurations (``tests/test_agents_hf.py``): the
  loss and the updated LoRA/JTCC weights after a step match one process with the same global batch.
* Time: forward ~ 2 * P * s FLOPs; the backward pass only needs gradients w.r.t. activations (base weights
  are frozen; LoRA weight gradients are negligible), ~ 1x forward. Transmitter 2 * 2 * 6.74e9 * 620 =
  16.7 TFLOP, vision tower 0.35 TFLOP (forward only), receiver 2 * 2 * 6.74e9 * 45 = 1.2 TFLOP:
  ~18 TFLOP per sample (+33 % with gradient checkpointing). At ~40 % of the dense 16-bit peak
  (A100: 312 -> ~125 TFLOP/s; H100 SXM: 989 -> ~400 TFLOP/s): ~0.15 s per sample on an A100, ~0.05 s
  on an H100; one epoch over CLEVR's 700 k training questions ~ 29 h (A100) / ~ 9 h (H100).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from semcom.agents.jtcc import GRAD_MODES, JTCC, ChannelFn, GradMode

Tensor = torch.Tensor

IGNORE_INDEX = -100
# LoRA only on the transmitter's *language model* K and V projections: CLIP's vision tower also has
# modules named k_proj / v_proj, which must stay frozen.
LORA_TARGET_REGEX = r".*language_model.*\.(k_proj|v_proj)$"


@dataclass
class HFPipelineConfig:
    """Hyper-parameters of the HF pipeline (JSON-able; saved next to the trainable weights)."""

    k_tokens: int = 5
    m: int = 256  # real channel values per token (paper: 4096 -> 256 / 512)
    jtcc_hidden: int = 1024
    grad_mode: str = "straight_through"
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_target: str = LORA_TARGET_REGEX
    extra: dict[str, Any] = field(default_factory=dict)


def last_k_positions(attention_mask: Tensor, k: int) -> Tensor:
    """Indices of the last ``k`` attended positions of every row, in order.

    attention_mask: (B, L) of 0/1 (left or right padding) -> (B, k) long. Raises if a row has < k tokens.
    """
    if (attention_mask.sum(dim=1) < k).any():
        raise ValueError(f"every sequence needs at least K={k} tokens")
    pos = torch.arange(attention_mask.shape[1], device=attention_mask.device).expand_as(attention_mask)
    key = torch.where(attention_mask.bool(), pos, torch.full_like(pos, -1))
    return key.topk(k, dim=1).values.flip(1)  # topk is descending; flip -> ascending positions


def build_receiver_batch(questions: list[list[int]], answers: list[list[int]], pad_id: int,
                         device: torch.device | str = "cpu") -> tuple[Tensor, Tensor, Tensor]:
    """Concatenate question + answer token ids per sample and right-pad.

    Returns ``(ids, mask, labels)``, each (B, L): labels are ``IGNORE_INDEX`` except on answer tokens, so
    the causal-LM loss scores only the answer. Right padding keeps the positions of prefix + question +
    answer contiguous.
    """
    if len(questions) != len(answers):
        raise ValueError("questions and answers differ in length")
    length = max(len(q) + len(a) for q, a in zip(questions, answers, strict=True))
    b = len(questions)
    ids = torch.full((b, length), pad_id, dtype=torch.long)
    mask = torch.zeros((b, length), dtype=torch.long)
    labels = torch.full((b, length), IGNORE_INDEX, dtype=torch.long)
    for i, (q, a) in enumerate(zip(questions, answers, strict=True)):
        n = len(q) + len(a)
        ids[i, :n] = torch.tensor(q + a, dtype=torch.long)
        mask[i, :n] = 1
        labels[i, len(q):n] = torch.tensor(a, dtype=torch.long)
    return ids.to(device), mask.to(device), labels.to(device)


def add_kv_lora(transmitter: nn.Module, cfg: HFPipelineConfig) -> nn.Module:
    """Wrap the transmitter with peft LoRA on its language model's k_proj / v_proj (all else frozen)."""
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=cfg.lora_target, bias="none")
    return get_peft_model(transmitter, lora)


class HFTokenPipeline(nn.Module):
    """LLaVA transmitter (+ LoRA k/v) -> K tokens -> JTCC over a channel -> frozen LLaMA receiver.

    Args:
        transmitter: a ``LlavaForConditionalGeneration`` (not yet wrapped; LoRA is added here).
        receiver: a ``LlamaForCausalLM`` (any causal LM taking ``inputs_embeds``); frozen here.
        cfg: K, m, JTCC width, gradient mode, LoRA settings.
        channel: callable (B, K, m) real -> (B, K, m) real, e.g. ``semcom.channels.AWGNChannel``.
    """

    def __init__(self, transmitter: nn.Module, receiver: nn.Module, cfg: HFPipelineConfig,
                 channel: ChannelFn | None = None) -> None:
        super().__init__()
        if cfg.grad_mode not in GRAD_MODES:
            raise ValueError(f"grad_mode must be one of {GRAD_MODES}, got {cfg.grad_mode!r}")
        self.cfg = cfg
        d_tx = transmitter.config.text_config.hidden_size
        d_rx = receiver.config.hidden_size
        if d_tx != d_rx:
            raise ValueError(f"transmitter hidden size {d_tx} != receiver hidden size {d_rx}: the decoded "
                             "tokens go straight into the receiver's embedding space")
        self.d = d_tx
        self.transmitter = add_kv_lora(transmitter, cfg)
        self.receiver = receiver
        self.receiver.requires_grad_(False)
        self.receiver.eval()  # frozen: no dropout either
        self.jtcc = JTCC(self.d, cfg.m, cfg.jtcc_hidden, channel=channel, grad_mode=cfg.grad_mode)  # type: ignore[arg-type]

    # -- construction from disk ---------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, transmitter_dir: str | Path, receiver_dir: str | Path,
                        cfg: HFPipelineConfig | None = None, channel: ChannelFn | None = None,
                        dtype: torch.dtype = torch.float16, device: str | torch.device = "cpu",
                        gradient_checkpointing: bool = False) -> HFTokenPipeline:
        """Load both models from local directories (``local_files_only=True``: nothing is downloaded)."""
        from transformers import LlamaForCausalLM, LlavaForConditionalGeneration

        for p in (transmitter_dir, receiver_dir):
            if not Path(p).is_dir():
                raise FileNotFoundError(f"model directory not found: {p} (weights are never downloaded)")
        tx = LlavaForConditionalGeneration.from_pretrained(transmitter_dir, local_files_only=True,
                                                           dtype=dtype).to(device)
        rx = LlamaForCausalLM.from_pretrained(receiver_dir, local_files_only=True, dtype=dtype).to(device)
        if gradient_checkpointing:
            tx.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            tx.enable_input_require_grads()
        pipe = cls(tx, rx, cfg or HFPipelineConfig(), channel=channel)
        pipe.jtcc.to(device)  # JTCC stays fp32
        return pipe

    # -- the pipeline -------------------------------------------------------------------------------
    def machine_tokens(self, input_ids: Tensor, attention_mask: Tensor, pixel_values: Tensor) -> Tensor:
        """Transmitter: (B, L) ids with the image placeholder tokens + (B, 3, H, W) -> (B, K, d) fp32.

        The tokens are the last-layer hidden states (after the final norm) at the final K attended
        positions, i.e. over the end of the vague task description.
        """
        llava = self.transmitter.get_base_model().model  # LlavaModel: no LM head logits needed
        out = llava(input_ids=input_ids, attention_mask=attention_mask, pixel_values=pixel_values,
                    use_cache=False)
        hidden = out.last_hidden_state  # (B, L, d)
        idx = last_k_positions(attention_mask, self.cfg.k_tokens)  # (B, K)
        tokens = hidden.gather(1, idx.unsqueeze(-1).expand(-1, -1, hidden.shape[-1]))
        return tokens.float()

    def receiver_forward(self, prefix: Tensor, rx_ids: Tensor, rx_mask: Tensor,
                         rx_labels: Tensor | None = None) -> Any:
        """Frozen receiver on ``[prefix tokens][question + answer]``.

        prefix: (B, K, d) decoded tokens; rx_ids / rx_mask / rx_labels: (B, L) from
        ``build_receiver_batch``. Returns the HF ``CausalLMOutputWithPast`` (logits (B, K+L, V), loss if
        labels were given: cross-entropy on the answer tokens only).
        """
        emb = self.receiver.get_input_embeddings()
        text = emb(rx_ids)  # (B, L, d)
        inputs = torch.cat([prefix.to(text.dtype), text], dim=1)
        b, k = prefix.shape[:2]
        mask = torch.cat([torch.ones(b, k, dtype=rx_mask.dtype, device=rx_mask.device), rx_mask], dim=1)
        labels = None
        if rx_labels is not None:
            labels = torch.cat([torch.full((b, k), IGNORE_INDEX, dtype=rx_labels.dtype,
                                           device=rx_labels.device), rx_labels], dim=1)
        return self.receiver(inputs_embeds=inputs, attention_mask=mask, labels=labels, use_cache=False)

    def forward(self, input_ids: Tensor, attention_mask: Tensor, pixel_values: Tensor, rx_ids: Tensor,
                rx_mask: Tensor, rx_labels: Tensor | None = None, channel: ChannelFn | None = None,
                grad_mode: GradMode | None = None) -> Any:
        """Full pipeline; returns the receiver's output (``.loss`` when ``rx_labels`` is given)."""
        tokens = self.machine_tokens(input_ids, attention_mask, pixel_values)  # (B, K, d)
        decoded = self.jtcc(tokens, channel=channel, grad_mode=grad_mode)  # (B, K, d)
        return self.receiver_forward(decoded, rx_ids, rx_mask, rx_labels)

    @torch.no_grad()
    def answer_accuracy(self, logits: Tensor, rx_labels: Tensor) -> Tensor:
        """Teacher-forced exact match per sample: every answer token is the argmax. logits (B, K+L, V)."""
        k = logits.shape[1] - rx_labels.shape[1]
        pred = logits[:, k - 1:-1].argmax(-1)  # position t predicts token t+1
        scored = rx_labels != IGNORE_INDEX
        return ((pred == rx_labels) | ~scored).all(dim=1).float()

    # -- trainable state ----------------------------------------------------------------------------
    def trainable_parameters(self) -> list[nn.Parameter]:
        """LoRA k/v adapters + JTCC (everything else has ``requires_grad=False``)."""
        return [p for p in self.parameters() if p.requires_grad]

    def save_trainable(self, directory: str | Path) -> None:
        """Save LoRA adapters (peft format) + JTCC state_dict + JSON config; base weights are not copied."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        self.transmitter.save_pretrained(str(d / "lora"))
        torch.save(self.jtcc.state_dict(), d / "jtcc.pt")
        cfg = {"kind": "hf_token_pipeline", **asdict(self.cfg)}
        (d / "config.json").write_text(json.dumps(cfg, indent=2))

    def load_trainable(self, directory: str | Path) -> None:
        """Inverse of ``save_trainable`` (weights_only loading; clear errors on mismatch)."""
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        d = Path(directory)
        cfg = json.loads((d / "config.json").read_text())
        for key in ("k_tokens", "m", "jtcc_hidden", "lora_r"):
            if cfg.get(key) != getattr(self.cfg, key):
                raise ValueError(f"checkpoint {d}: {key}={cfg.get(key)} but this pipeline has "
                                 f"{getattr(self.cfg, key)}")
        set_peft_model_state_dict(self.transmitter, load_file(str(d / "lora" / "adapter_model.safetensors")))
        self.jtcc.load_state_dict(torch.load(d / "jtcc.pt", map_location="cpu", weights_only=True))


def fsdp_units(pipe: HFTokenPipeline) -> list[nn.Module]:
    """The modules ``shard_with_fsdp`` shards one by one: every decoder layer of the transmitter's and the
    receiver's language models and every layer of the vision encoder (the blocks of a 7B model that are
    worth gathering one at a time)."""
    from transformers.models.clip.modeling_clip import CLIPEncoderLayer
    from transformers.models.llama.modeling_llama import LlamaDecoderLayer

    return [m for m in pipe.modules() if isinstance(m, (LlamaDecoderLayer, CLIPEncoderLayer))]


def shard_with_fsdp(pipe: HFTokenPipeline, mesh: Any = None, mp_policy: Any = None) -> HFTokenPipeline:
    """Shard the pipeline over the processes of the current group with FSDP2 (``fully_shard``): each unit
    of ``fsdp_units``, then the root (embeddings, norms, heads, projector, JTCC). Frozen weights are
    sharded as well (they are most of the memory); LoRA and JTCC gradients are reduce-scattered, so an
    optimiser over ``pipe.trainable_parameters()`` steps each process's shard. Call it after
    ``semcom.distributed.setup()`` and before building the optimiser; ``mesh`` defaults to a 1-D mesh
    over all processes on the device type of the weights, ``mp_policy`` is FSDP's
    ``MixedPrecisionPolicy`` (e.g. bf16 parameters, fp32 reduction on GPUs). Returns ``pipe``."""
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    if not dist.is_initialized():
        raise RuntimeError("shard_with_fsdp needs a process group: run under torchrun and call "
                           "semcom.distributed.setup() first")
    if mesh is None:
        device = next(pipe.parameters()).device.type
        mesh = init_device_mesh(device, (dist.get_world_size(),))
    policy = mp_policy or MixedPrecisionPolicy()
    for unit in fsdp_units(pipe):
        fully_shard(unit, mesh=mesh, mp_policy=policy)
    fully_shard(pipe, mesh=mesh, mp_policy=policy)
    return pipe
