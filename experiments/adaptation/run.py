#!/usr/bin/env python3
"""Online DeepJSCC fine-tuning while the SNR drops 21 -> 9 dB, through a cGAN channel learned from the
loopback flowgraph (seed 000, Fig. 5). Same as `semcom adapt`; arguments: semcom.adapt.commands.
The committed results were made, from the repository root, with

    .venv/bin/semcom adapt --no-progress

(numbers and wall times: experiments/adaptation/README.md).
"""

import sys

from semcom.adapt.commands import main

if __name__ == "__main__":
    sys.exit(main())
