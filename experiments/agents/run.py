#!/usr/bin/env python3
"""The small-default machine-language-token experiment: train all four stages, then evaluate.

Equivalent to `semcom train agents ...` (arguments: semcom.agents.commands). The shipped checkpoints
(host/semcom/agents/checkpoints) and experiments/agents/output were made, from the repository root, with
the command in experiments/agents/README.md.
"""

import sys

from semcom.agents.commands import main

if __name__ == "__main__":
    sys.exit(main(["train", "agents", *sys.argv[1:]]))
