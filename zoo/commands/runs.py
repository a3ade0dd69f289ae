"""`zoo runs`: the store's RUNNING runs and whether each still beats; `--repair` ends the lost ones.

    zoo runs                 # each RUNNING run: alive (its last beat) or lost (why)
    zoo runs --repair        # end the lost ones KILLED, with `zoo.failure=lost heartbeat`

A run is lost when its heartbeat stopped and its process is gone (see `zoo.tracking.heartbeat`);
every command that opens the store repairs lost runs on the way, this one on demand.
"""

import time


def add_parser(commands):
    parser = commands.add_parser(
        "runs",
        help="RUNNING runs and their heartbeat; --repair ends the lost ones KILLED",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("--repair", action="store_true", help="end lost runs KILLED (zoo.failure=lost heartbeat)")
    parser.add_argument(
        "--stale-after",
        type=float,
        default=None,
        metavar="SECONDS",
        help="a run on another host is lost after this long without a beat (default: 600)",
    )
    parser.add_argument("--tracking-uri", help="the store (default: MLFLOW_TRACKING_URI or sqlite:///mlflow.db)")
    parser.set_defaults(handler=_runs, loads_tensorflow=False)


def _runs(args):
    from zoo import tracking
    from zoo.errors import ZooError
    from zoo.tracking import heartbeat

    if args.stale_after is not None and not args.stale_after > 0:
        raise ZooError(f"--stale-after must be more than 0 seconds. Received: {args.stale_after}")
    uri = tracking.configure(args.tracking_uri, repair=False)
    if args.repair:
        repaired = heartbeat.repair(uri, stale_after=args.stale_after, quiet=True)
        for _, line in repaired:
            print(line.removeprefix("zoo: "))
        print(f"{len(repaired)} lost run(s) marked KILLED in {uri}")
        return 0
    client = tracking.mlflow.MlflowClient(uri)
    runs = heartbeat.running_runs(client)
    now = time.time()
    for run in runs:
        tags = run.data.tags
        why = heartbeat.state(run, now=now, stale_after=args.stale_after)
        if why is not None:
            shown = f"lost: {why} (zoo runs --repair ends it)"
        elif heartbeat.BEAT_TAG in tags:
            beat = float(tags[heartbeat.BEAT_TAG])
            shown = f"alive: process {tags.get(heartbeat.PID_TAG)} on {tags.get(heartbeat.HOST_TAG)}, last beat "
            shown += heartbeat.ago(now - beat)
        else:
            shown = "no heartbeat (not started by zoo train)"
        print(f"{run.info.run_id}  {run.info.run_name or '':<24}  {shown}")
    print(f"{len(runs)} RUNNING run(s) in {uri}")
    return 0
