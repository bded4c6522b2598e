"""This folder is the rlgen repository; the rlgen package is its ``rlgen/`` subfolder.

Python imports this file as ``rlgen`` only when a script runs from the folder that holds a
clone named ``rlgen``: the script's folder comes first on ``sys.path``, and this folder would
otherwise pass for the package and fail later with ``No module named 'rlgen.demos.format'``.
It stops the import at once and names the cause instead. (Imported under any other name, as
pytest imports a rootdir's ``__init__.py``, it does nothing.)
"""

import os

if __name__ == "rlgen":
    raise ImportError(
        f"'import rlgen' found the repository folder {os.path.dirname(os.path.abspath(__file__))} instead of the "
        "installed package, because the script runs from the folder that holds the clone; run it from another "
        "folder (or from inside the clone), or clone into another name: git clone URL rlgen-src"
    )
