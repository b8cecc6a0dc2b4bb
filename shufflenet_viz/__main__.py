"""`python -m shufflenet_viz ...`: see `shufflenet_viz.cli`."""

import sys

from .cli import main

sys.exit(main())
