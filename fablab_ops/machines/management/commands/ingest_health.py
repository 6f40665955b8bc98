import json
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from fablab_ops.machines.models import IngestHealth
from fablab_ops.machines.services import INGEST_STALE_AFTER, ingest_health


class Command(BaseCommand):
    help = ("Print each MQTT ingest replica's health: messages stored, duplicates, quarantined by reason, last "
            "commit, lag. Exits 1 if a replica is unhealthy: not alive for --stale-after seconds (stopped, or it "
            "cannot reach the database), or reports waiting in its queue with no commit for --stale-after seconds; "
            "2 if no replica ever reported.")

    def add_arguments(self, parser):
        parser.add_argument("--stale-after", type=int, default=int(INGEST_STALE_AFTER.total_seconds()),
                            help="seconds (default 120)")
        parser.add_argument("--json", action="store_true", help="one JSON object per replica")
        parser.add_argument("--client-id", help="only this replica (e.g. a container's own health check)")
        parser.add_argument("--forget", metavar="CLIENT_ID",
                            help="delete a retired replica's row (after scaling down) and exit")

    def handle(self, *args, **options):
        if options["forget"]:
            deleted, _ = IngestHealth.objects.filter(client_id=options["forget"]).delete()
            self.stdout.write(f"{options['forget']}: {'forgotten' if deleted else 'no such replica'}")
            return
        now = timezone.now()
        replicas = ingest_health(now, timedelta(seconds=options["stale_after"]))
        if options["client_id"]:
            replicas = [replica for replica in replicas if replica["client_id"] == options["client_id"]]
        if not replicas:
            self.stderr.write("no ingest replica has reported yet")
            raise SystemExit(2)
        for replica in replicas:
            if options["json"]:
                self.stdout.write(json.dumps(replica, default=str))
                continue
            lag = f"{replica['lag_s']:.0f} s" if replica["lag_s"] is not None else "-"
            quarantined = ", ".join(f"{reason} {count}" for reason, count in sorted(replica["quarantined"].items()))
            self.stdout.write(
                f"{replica['client_id']}: {'OK' if not replica['problems'] else '; '.join(replica['problems'])}\n"
                f"  stored {replica['stored']}, duplicates {replica['duplicates']}, "
                f"quarantined {sum(replica['quarantined'].values())}"
                f"{f' ({quarantined})' if quarantined else ''}\n"
                f"  last commit {_ago(replica['last_commit_at'], now)}, alive {_ago(replica['alive_at'], now)}, "
                f"queued {replica['queued']}, lag {lag}")
        if any(replica["problems"] for replica in replicas):
            raise CommandError("an ingest replica is unhealthy")


def _ago(at, now) -> str:
    if at is None:
        return "never"
    return f"{(now - at).total_seconds():.0f} s ago ({at:%Y-%m-%d %H:%M:%S} UTC)"
