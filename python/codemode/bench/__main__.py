"""``python -m codemode.bench``: the same as ``codemode bench``."""

import sys

from .cli import main

sys.exit(main())
