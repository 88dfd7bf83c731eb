#!/usr/bin/env python3
"""Scene parsing and slot-proposal recall of a vision checkpoint on the held-out scenes.

For each scene size: the share of scenes whose objects (up to K) are all among the K most object-like
label cells, i.e. all reach the sensor's slots. From the repository root:

    .venv/bin/python experiments/agents/proposal_recall.py [--checkpoints DIR] [--split val|test]
"""

from __future__ import annotations

import argparse
import sys

from semcom.agents.checkpoint import load_receiver, load_vision
from semcom.agents.experiment import AgentsExperiment, checkpoint_path
from semcom.agents.small import grid_labels
from semcom.agents.train import parse_accuracy
from semcom.data.datasets import make_vqa_dataset

SHIPPED = "host/semcom/agents/checkpoints"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoints", default=SHIPPED)
    ap.add_argument("--split", choices=("val", "test"), default="val")
    args = ap.parse_args(argv)
    parser, _ = load_vision(checkpoint_path(args.checkpoints, "vision"))
    _, doc = load_receiver(checkpoint_path(args.checkpoints, "receiver"))
    exp = AgentsExperiment.from_dict(doc["meta"]["experiment"])  # the scenes the checkpoints know
    _, val, test = make_vqa_dataset(exp.n_scenes, exp.questions_per_scene, seed=exp.seed,
                                    image_size=exp.image_size, progress=False)
    split = val if args.split == "val" else test
    labels = grid_labels(split.scenes, exp.image_size, exp.patch)
    k = exp.k_tokens
    parsing = parse_accuracy(parser, split.images, labels, k=k)
    recall = {int(name.split("_")[1]): v for name, v in parsing.items() if name.startswith("recall_")}
    print(f"{args.split}: {len(split.scenes)} scenes; "
          + ", ".join(f"{name} {v:.4f}" for name, v in parsing.items() if not name.startswith("recall_")))
    for n, share in recall.items():
        print(f"  {n} objects: every object (up to K = {k}) proposed in {100 * share:.1f} % of scenes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
