"""``python -m gateway_fxo``: run one phone line (see gateway_fxo.app)."""

import sys

from gateway_fxo.app import main

sys.exit(main())
