"""``python -m credop.cli``."""

from __future__ import annotations

import sys

from credop.cli import main

sys.exit(main())
