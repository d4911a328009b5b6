"""``python -m fastgru``: the same command line as ``fastgru``."""

import sys

from fastgru.cli import main

sys.exit(main())
