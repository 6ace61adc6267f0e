"""``python -m churnlib``: see :mod:`churnlib.cli`."""
from churnlib.cli import main

raise SystemExit(main())
