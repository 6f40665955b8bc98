"""For `bench/floor.py` only: the production settings, with the floor's URL added (bench/floor_app.py)."""

from fablab_ops.settings import *  # noqa: F403

ROOT_URLCONF = "bench.floor_app"
