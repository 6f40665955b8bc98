from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from fablab_ops.errors import DomainError
from fablab_ops.machines.models import Lab
from fablab_ops.reports import services
from fablab_ops.reports.exporters import EXPORTERS


class Command(BaseCommand):
    help = "Export a monthly class report, e.g. --month 2026-10 --lab all --format xlsx"

    def add_arguments(self, parser):
        parser.add_argument("--month", required=True, help="YYYY-MM")
        parser.add_argument("--lab", default="all", help="a lab slug, or all for the network")
        parser.add_argument("--format", choices=sorted(EXPORTERS), default="xlsx")
        parser.add_argument("--language", choices=["vi", "en"], default="vi")
        parser.add_argument("--output", type=Path, help="file to write (default: the report's own name)")

    def handle(self, *args, **options):
        try:
            month = services.parse_month(options["month"])
        except DomainError as error:
            raise CommandError(error.message) from error
        lab = None
        if options["lab"] != "all":
            lab = Lab.objects.filter(slug=options["lab"]).first()
            if lab is None:
                known = ", ".join(Lab.objects.values_list("slug", flat=True))
                raise CommandError(f"no lab {options['lab']!r}; labs: {known}")
        name, _media_type, content = EXPORTERS[options["format"]].render(
            services.monthly_report(month, lab=lab), options["language"], options["lab"])
        output = options["output"] or Path(name)
        output.write_bytes(content)
        self.stdout.write(f"{output} ({len(content):,} bytes)")
