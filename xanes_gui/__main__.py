"""``python -m xanes_gui`` runs the desktop app."""

import sys

from xanes_gui.app import main

sys.exit(main())
