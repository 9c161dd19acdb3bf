"""``python -m htr.data.synthetic``: see :func:`htr.data.synthetic.cli.main`."""

import sys

from htr.data.synthetic.cli import main

sys.exit(main())
