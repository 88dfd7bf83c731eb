"""AI agents that talk in machine-language tokens.

* ``jtcc``: Joint Token and Channel Coding (per-token FC autoencoder, channel in the loop, two gradient
  modes through the channel) and the "tokens without JTCC" link.
* ``small``: the small default models (sensor agent, task agent, raw-image VQA, text path) that train on
  a CPU in minutes.
* ``hf``: the published-scale path (LLaVA-1.5 transmitter with LoRA on K/V, frozen LLaMA receiver) with
  Hugging Face ``transformers`` + ``peft`` (imported only when used).
* ``train`` / ``cli``: training, evaluation, checkpoints and the ``semcom train`` / ``semcom eval``
  sub-commands.
"""

from semcom.agents.jtcc import GRAD_MODES, JTCC, RawTokenLink, normalize_power, through_channel

__all__ = ["GRAD_MODES", "JTCC", "RawTokenLink", "normalize_power", "through_channel"]
