import logging

from django.conf import settings
from django.core.management.base import BaseCommand

from fablab_ops.machines.consumer import BATCH_SIZE, Ingest


class Command(BaseCommand):
    help = "Consume machine telemetry from MQTT into the database (runs until SIGTERM)."

    def add_arguments(self, parser):
        parser.add_argument("--url", default=settings.MQTT_URL, help="mqtt://user:password@host:port")
        parser.add_argument("--client-id", default=settings.MQTT_CLIENT_ID or None,
                            help="stable per process: the broker keeps this session's messages across restarts")
        parser.add_argument("--protocol", choices=["5", "3.1.1"], default=settings.MQTT_PROTOCOL)
        parser.add_argument("--batch-size", type=int, default=BATCH_SIZE,
                            help="most messages stored per transaction")
        parser.add_argument("--share-group", default="ingest", help="MQTT 5 shared-subscription group")

    def handle(self, *args, **options):
        logging.getLogger("fablab_ops").setLevel(logging.INFO)
        Ingest(url=options["url"], client_id=options["client_id"], protocol=options["protocol"],
               batch_size=options["batch_size"], share_group=options["share_group"]).run()
