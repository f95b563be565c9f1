"""``python -m rig.guardian``: started by ``rig run``, ``rig press`` and ``rig power`` only."""

import sys

from rig.guardian.watch import main

sys.exit(main())
