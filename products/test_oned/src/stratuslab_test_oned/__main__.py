"""python3 -m stratuslab_test_oned: run the test oned (see cli.py)."""

import sys

from .cli import main

sys.exit(main())
