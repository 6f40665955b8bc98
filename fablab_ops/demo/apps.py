from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo's data and its `seed_demo` command: above every other app, which it fills through their services."""

    name = "fablab_ops.demo"
    verbose_name = "Demo"
