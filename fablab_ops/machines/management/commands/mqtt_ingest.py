import logging
import os

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from fablab_ops.machines.consumer import BATCH_SIZE, SESSION_EXPIRY_S, Ingest, IngestFailed, drop_session


class Command(BaseCommand):
    # The ingest needs none of the system checks (URLs, admin, templates): skipping them starts it sooner.
    requires_system_checks = []
    help = ("Consume machine telemetry from MQTT into the database (runs until SIGTERM; exits non-zero if a thread "
            "of it dies, for the supervisor to restart it).")

    def add_arguments(self, parser):
        parser.add_argument("--url", default=settings.MQTT_URL, help="mqtt://user:password@host:port")
        parser.add_argument("--client-id", default=settings.MQTT_CLIENT_ID or None,
                            help="stable per replica (default fablab-ingest-K): the broker keeps this session's "
                                 "messages across restarts")
        parser.add_argument("--protocol", choices=["5", "3.1.1"], default=settings.MQTT_PROTOCOL)
        parser.add_argument("--batch-size", type=int, default=BATCH_SIZE,
                            help="most messages stored per transaction")
        parser.add_argument("--replicas", type=int, default=1,
                            help="how many ingest processes share the machines (each its own --replica)")
        parser.add_argument("--replica", type=int, default=0, help="this process's share, from 0 to --replicas - 1")
        parser.add_argument("--session-expiry", type=int,
                            default=int(os.environ.get("MQTT_SESSION_EXPIRY_S", SESSION_EXPIRY_S)),
                            help="seconds the broker keeps the session (and queues for it) while the ingest is "
                                 "away; MQTT 5 only (MQTT_SESSION_EXPIRY_S, default 86400)")
        parser.add_argument("--drop-session", action="store_true",
                            help="delete the session of --client-id at the broker and exit (a retired replica)")

    def handle(self, *args, **options):
        logging.getLogger("fablab_ops").setLevel(logging.INFO)
        if options["drop_session"]:
            if not options["client_id"]:
                raise CommandError("--drop-session needs --client-id (or MQTT_CLIENT_ID)")
            if not drop_session(url=options["url"], client_id=options["client_id"], protocol=options["protocol"]):
                raise CommandError(f"the broker did not accept {options['client_id']}")
            self.stdout.write(f"session {options['client_id']} deleted")
            return
        if not 0 <= options["replica"] < options["replicas"]:
            raise CommandError("--replica must be from 0 to --replicas - 1")
        ingest = Ingest(url=options["url"], client_id=options["client_id"], protocol=options["protocol"],
                        batch_size=options["batch_size"], replicas=options["replicas"], replica=options["replica"],
                        session_expiry=options["session_expiry"])
        try:
            ingest.run()
        except IngestFailed as failure:
            raise CommandError(f"ingest {ingest.client_id} stopped: {failure}") from failure
