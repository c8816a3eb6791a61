"""`python -m ditto.cli` (the same as `ditto`)."""

import sys

from ditto.cli import main

sys.exit(main())
