import json
import os
from pathlib import Path

from django.core.management.base import BaseCommand

from fablab_ops.machines import credentials
from fablab_ops.machines.models import Machine

SERVICE_USERS = {"service": "MQTT_SERVICE_PASSWORD", "ingest": "MQTT_INGEST_PASSWORD",
                 "healthcheck": "MQTT_HEALTHCHECK_PASSWORD"}


class Command(BaseCommand):
    help = ("Write Mosquitto's password file and ACL from the machine registry. Machines without credentials "
            "are provisioned; their new passwords go to --registry (a JSON file for flashing the devices).")

    def add_arguments(self, parser):
        parser.add_argument("--output-dir", type=Path, required=True)
        parser.add_argument("--registry", type=Path, help="write new device credentials here (keep it secret)")
        parser.add_argument("--rotate", nargs="*", metavar="LAB.MACHINE", default=[],
                            help="issue new passwords for these machines")

    def handle(self, *args, **options):
        service_users = {user: os.environ[var] for user, var in SERVICE_USERS.items() if os.environ.get(var)}
        issued = []
        for machine in Machine.objects.select_related("lab", "machine_type").exclude(status="retired"):
            name = credentials.username_for(machine)
            if not hasattr(machine, "credential") or name in options["rotate"]:
                issued.append({"lab": machine.lab.slug, "machine": machine.slug, "type": machine.machine_type.slug,
                               "username": name, "password": credentials.provision(machine),
                               "interlock": machine.has_interlock})
        passwd, acl = credentials.write_files(options["output_dir"], service_users)
        if issued and options["registry"]:
            options["registry"].write_text(json.dumps(issued, ensure_ascii=False, indent=2))
            options["registry"].chmod(0o600)
        self.stdout.write(f"wrote {passwd} and {acl}: {len(service_users)} service users, "
                          f"{len(issued)} machines newly provisioned")
        if issued and not options["registry"]:
            self.stdout.write(self.style.WARNING("new device passwords were not saved: pass --registry FILE"))
