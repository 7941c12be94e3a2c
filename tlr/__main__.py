"""``python -m tlr``: see :mod:`tlr.cli`."""

import sys

from tlr.cli import main

sys.exit(main())
