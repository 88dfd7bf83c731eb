"""Packet error rate vs SNR of the digital baseline (gr-fec CC + gr-digital OFDM over the SISO
mimo_channel), measured once and cached as host/semcom/digital/per_table.csv (+ .json, .png).
See experiments/token_paper/README.md (Fig. 6) and ``semcom.digital.per``."""

import sys

from semcom.digital.per import main

if __name__ == "__main__":
    sys.exit(main())
