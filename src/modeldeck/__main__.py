"""``python -m modeldeck`` is the ``modeldeck`` command."""

import sys

from .cli.main import main

sys.exit(main())
