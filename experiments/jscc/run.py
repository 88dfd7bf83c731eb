#!/usr/bin/env python3
"""DeepJSCC (k/n = 1/6, 32x32) vs JPEG at the AWGN-capacity bit budget: PSNR vs SNR.

Trains (or loads) the codec, evaluates it over AWGN, flat Rayleigh (LS CSI, ZF and MMSE) and the OFAT 2x4
MIMO channel (denoised LS CSI, ZF and MMSE), compares with JPEG, and writes results.csv, results.png and
summary.json to --out. The committed checkpoint and results were made, from the repository root, with

    .venv/bin/python experiments/jscc/run.py --retrain --no-progress

(numbers and wall times: experiments/jscc/README.md). Arguments: semcom.jscc.commands.
"""

import sys

from semcom.jscc.commands import main

if __name__ == "__main__":
    sys.exit(main())
