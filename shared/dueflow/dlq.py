"""`make dlq-list` and `make dlq-replay`: the dead letters the deadletter function kept.

    python -m dueflow.dlq list [--all]          # what died, and why
    python -m dueflow.dlq replay [ID ...]        # send them (or the given ids) to the Broker again

It reads DATABASE_URL like the functions; replay sends to DUEFLOW_BROKER_URL or K_SINK, else to
the broker of a running `make run`. In a cluster, run it where the Broker's ingress is reachable
(for example `kubectl run` with the chart's image and secrets).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dueflow import config
from dueflow.adapters.db.engine import make_engine
from dueflow.adapters.db.unit_of_work import UnitOfWorkFactory
from dueflow.adapters.outbox_relay import DeliveryError, HttpSink
from dueflow.service.dead_letters import DeadLetterService

LOCAL_BROKER_URL_FILE = Path(".dueflow") / "broker-url"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dueflow.dlq", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="show stored dead letters")
    listing.add_argument("--all", action="store_true", help="include replayed ones")
    replay = commands.add_parser("replay", help="send dead letters to the Broker again")
    replay.add_argument("ids", nargs="*", type=int, help="only these (default: every one)")
    args = parser.parse_args(argv)

    engine = make_engine(config.database_url())
    service = DeadLetterService(UnitOfWorkFactory(engine))
    if args.command == "list":
        letters = service.list(include_replayed=args.all, limit=10_000)
        for letter in letters:
            replayed = (
                f" replayed {letter['replayed_at']:%Y-%m-%d %H:%M}" if letter["replayed_at"] else ""
            )
            print(
                f"{letter['id']:>6}  {letter['received_at']:%Y-%m-%d %H:%M:%S}  "
                f"{letter['event_type']}  {letter['event_source']} {letter['event_id']}  "
                f"-> {letter['error_dest']} answered {letter['error_code']}: "
                f"{(letter['error_data'] or '').strip()[:200]}{replayed}"
            )
        print(f"{len(letters)} dead letter(s)", file=sys.stderr)
        return 0
    url = config.broker_url()
    if url is None and LOCAL_BROKER_URL_FILE.exists():
        url = LOCAL_BROKER_URL_FILE.read_text().strip()
    if url is None:
        print("no broker: set DUEFLOW_BROKER_URL (or run `make run`)", file=sys.stderr)
        return 2
    try:
        done = service.replay(HttpSink(url, config.sink_timeout()), set(args.ids) or None)
    except DeliveryError as exc:  # those before it were replayed and marked; the rest wait
        print(f"replay stopped: {exc}", file=sys.stderr)
        return 1
    print(f"replayed {len(done)} dead letter(s) to {url}: {done}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
