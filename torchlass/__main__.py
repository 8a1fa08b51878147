"""``python -m torchlass``: the same as the ``torchlass`` command."""

import sys

from torchlass.cli import main

if __name__ == "__main__":
    sys.exit(main())
