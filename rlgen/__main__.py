"""``python -m rlgen``: the ``rlgen`` command, for an environment whose scripts are not on the PATH."""

import sys

from rlgen.cli import main

if __name__ == "__main__":
    sys.exit(main())
