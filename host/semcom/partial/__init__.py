"""Perception-aware partial sampling with receiver feedback (seed 000, section III-B, case study IV-B).

* ``scenes``: one real MNIST digit on a cluttered S x S canvas (and its clutter-free digit layer).
* ``model``: the sampling grid, the edge ``PatchEncoder``, the base-station ``Receiver``, the
  ``WholeImageJSCC`` baseline, ``PartialSampler`` (the checkpointed pair).
* ``episode``: ``run_episode`` — R rounds of feedback -> patches over the channel -> fusion.
* ``feedback``: the versioned, CRC-checked feedback message and its ZeroMQ ``FeedbackLink``.
* ``train`` / ``experiment`` / ``commands``: training on ``semcom.training.fit``, Fig. 6 and the OFAT
  runs, ``semcom partial``. Results: ``experiments/partial_sampling/README.md``.
"""
