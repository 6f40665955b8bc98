"""Settings for the test suite: development mode, unless the environment says otherwise.

DEBUG is off unless set (settings.py); the tests, and the processes they start
(which inherit this environment), run like the laptop demo.
"""

import os

os.environ.setdefault("DEBUG", "1")

# Scanned documents the tests store go to a directory of their own, not the checkout's.
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

from fablab_ops.settings import *  # noqa: E402, F403

PRIVATE_MEDIA_ROOT = Path(tempfile.gettempdir()) / f"fablab-private-{os.getpid()}"
