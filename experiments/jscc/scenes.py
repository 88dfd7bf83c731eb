"""DeepJSCC trained on the 64x64 generated scenes + raw-image VQA on its reconstructions vs SNR.

See experiments/jscc/README.md (section "Scene-trained codec") and ``semcom.jscc.scenes``.
"""

import sys

from semcom.jscc.scenes import main

if __name__ == "__main__":
    sys.exit(main())
