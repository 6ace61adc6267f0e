"""``python -m churnlib``: see :mod:`churnlib.cli`."""
from churnlib.cli import main

__all__: list[str] = []

raise SystemExit(main())
