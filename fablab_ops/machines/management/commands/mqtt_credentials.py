import os
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from fablab_ops.machines import credentials
from fablab_ops.machines.models import Machine

SERVICE_USERS = {"service": "MQTT_SERVICE_PASSWORD", "ingest": "MQTT_INGEST_PASSWORD",
                 "healthcheck": "MQTT_HEALTHCHECK_PASSWORD"}
REGISTRY_NAME = "devices.json"


class Command(BaseCommand):
    help = ("Write Mosquitto's password file and ACL from the machine registry. Machines without credentials "
            "are provisioned; every device's password is kept in the registry file (default "
            "OUTPUT_DIR/devices.json, mode 0600), so running this again provisions nothing new and loses nothing. "
            "Passwords change only with --rotate.")

    def add_arguments(self, parser):
        parser.add_argument("--output-dir", type=Path, required=True)
        parser.add_argument("--registry", type=Path,
                            help=f"the devices' registry with their passwords (default: OUTPUT_DIR/{REGISTRY_NAME}; "
                                 "keep it secret)")
        parser.add_argument("--rotate", nargs="*", metavar="LAB/MACHINE", default=[],
                            help="issue new passwords for these machines (lab/machine, or the user name lab.machine)")

    def handle(self, *args, **options):
        service_users = {user: os.environ[var] for user, var in SERVICE_USERS.items() if os.environ.get(var)}
        registry_path = options["registry"] or options["output_dir"] / REGISTRY_NAME
        try:
            known = {entry["username"]: entry for entry in credentials.read_registry(registry_path)}
        except ValueError as error:
            raise CommandError(str(error)) from error
        rotate = {name.replace("/", ".", 1) for name in options["rotate"]}
        machines = list(Machine.objects.select_related("lab", "machine_type", "credential")
                        .exclude(status="retired").order_by("lab__slug", "slug"))
        unknown = rotate - {credentials.username_for(m) for m in machines}
        if unknown:
            raise CommandError(f"no such machine to rotate: {', '.join(sorted(unknown))}")
        issued, entries, unrecorded = [], [], []
        for machine in machines:
            name = credentials.username_for(machine)
            entry = {"lab": machine.lab.slug, "machine": machine.slug, "type": machine.machine_type.slug,
                     "username": name, "password": known.get(name, {}).get("password"),
                     "interlock": machine.has_interlock}
            if not hasattr(machine, "credential") or name in rotate:
                entry["password"] = credentials.provision(machine)
                issued.append(name)
            elif not entry["password"]:
                unrecorded.append(name)  # provisioned before the registry kept passwords: the device still has it
            entries.append(entry)
        credentials.write_registry(registry_path, entries)
        passwd, acl = credentials.write_files(options["output_dir"], service_users)
        self.stdout.write(f"wrote {passwd}, {acl} and {registry_path}: {len(service_users)} service users, "
                          f"{len(entries)} devices, {len(issued)} newly provisioned"
                          + (f" ({', '.join(issued)})" if issued else ""))
        if unrecorded:
            self.stdout.write(self.style.WARNING(
                f"passwords not in the registry (kept, but unknown here): {', '.join(unrecorded)}; "
                "--rotate them to record new ones"))
