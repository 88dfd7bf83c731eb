"""DeepJSCC (Bourtsoulatze, Kurka, Gündüz 2019) over the project's torch channels, with a JPEG baseline.

* ``model``: the codec, ``bandwidth_ratio(c) = c/96`` (k/n), ``filters_for_ratio``.
* ``train``: training with random SNR, per-image PSNR evaluation.
* ``checkpoint``: state_dict + JSON config, ``weights_only=True`` loading, ``CheckpointError``.
* ``jpeg``: JPEG at the AWGN-capacity bit budget (mean image when nothing fits).
"""

from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .model import DeepJSCC, JSCCConfig, PowerNormalize, bandwidth_ratio, channel_uses, filters_for_ratio
from .train import TrainConfig, evaluate_psnr, psnr_per_image, train

__all__ = [
    "CheckpointError", "DeepJSCC", "JSCCConfig", "PowerNormalize", "TrainConfig", "bandwidth_ratio",
    "channel_uses", "evaluate_psnr", "filters_for_ratio", "load_checkpoint", "psnr_per_image",
    "save_checkpoint", "train",
]
