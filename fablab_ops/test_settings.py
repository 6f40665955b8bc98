"""Settings for the test suite: development mode, unless the environment says otherwise.

DEBUG is off unless set (settings.py); the tests, and the processes they start
(which inherit this environment), run like the laptop demo.
"""

import os

os.environ.setdefault("DEBUG", "1")

from fablab_ops.settings import *  # noqa: E402, F403
