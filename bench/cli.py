"""``python -m bench`` / ``collab bench``: run scenarios against servers the
harness starts (the default) or a running deployment (``--target``)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.conns import conns_ratios, conns_table, run_conns, run_storm
from bench.report import combine, ratios, table, write_html, write_json
from bench.scenarios import Target, run_chat, run_fanout, run_join, run_rooms
from bench.servers import (
    ManagedProcess,
    node_available,
    start_collab,
    start_node_peer,
    start_redis,
    start_relay,
)
from bench.stalls import (
    HEAVY_ITEMS,
    STRUCT_LIMIT,
    heavy_updates,
    run_stalls,
    shared_board,
    stalls_ratios,
    stalls_table,
)

__all__ = ["main"]

SCENARIOS = ("quick", "fanout", "rooms", "cluster", "join", "chat", "stalls", "conns", "storm")
#: Scenarios of many idle connections (bench.conns), one size each.
CONNS_LIKE = ("conns", "storm")
FANOUT_LIKE = ("quick", "fanout", "cluster")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument(
        "scenario",
        choices=SCENARIOS,
        nargs="?",
        default="quick",
        help="quick: fanout at N=50,100 against collab and both baselines (make bench)",
    )
    p.add_argument(
        "--receivers",
        type=int,
        nargs="+",
        default=[50, 100],
        help="receiver counts for fanout/cluster (several: one run each)",
    )
    p.add_argument("--rate", type=float, default=100.0, help="updates per second")
    p.add_argument("--count", type=int, default=500, help="measured updates")
    p.add_argument("--warmup", type=int, default=50, help="updates sent before measuring")
    p.add_argument("--workers", type=int, default=2, help="load generator processes")
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure every configuration this many times, interleaved (each round "
        "starts with the next server), and report medians",
    )
    p.add_argument(
        "--baselines", default="relay,node", help="comma list of relay,node ('' for none)"
    )
    p.add_argument("--rooms", type=int, default=200, help="rooms (rooms scenario)")
    p.add_argument("--members", type=int, default=5, help="members per room (rooms)")
    p.add_argument("--rate-per-room", type=float, default=1.0, help="updates/s per room (rooms)")
    p.add_argument(
        "--connections",
        type=int,
        nargs="+",
        default=[1000],
        help="idle clients (conns, storm; several: one run each)",
    )
    p.add_argument("--room-size", type=int, default=10, help="clients per room (conns, storm)")
    p.add_argument(
        "--idle-window-s",
        type=float,
        default=30.0,
        help="seconds over which idle CPU is measured (conns; longer than the ping interval)",
    )
    p.add_argument("--nodes", type=int, default=2, help="collab nodes (cluster)")
    p.add_argument("--clients", type=int, default=20, help="joining clients (join)")
    p.add_argument("--shapes", type=int, default=10_000, help="board shapes (join)")
    p.add_argument("--messages", type=int, default=100, help="chat messages per sender (chat)")
    p.add_argument("--idle-s", type=float, default=3.0, help="seconds of the probe alone (stalls)")
    p.add_argument(
        "--board-shapes",
        type=int,
        default=24_000,
        help="shapes of the board sent as a sync answer (stalls; 24,000: about 4 MB)",
    )
    p.add_argument(
        "--senders",
        type=int,
        default=None,
        help="clients drawing at once in the room (fanout/cluster, default 1; "
        "they share --rate) or chat senders (chat, default 5)",
    )
    p.add_argument("--store", default="sqlite", help="collab's store (sqlite or memory)")
    p.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="LABEL=ARGS",
        help="also run collab started with these extra serve flags, e.g. "
        "'stock path=--no-fast-broadcast' (repeat for several)",
    )
    p.add_argument(
        "--checkout",
        action="append",
        default=[],
        type=_checkout,
        metavar="LABEL=PATH",
        help="also run collab from another checkout of its source (e.g. a git worktree "
        "of the commit before a change), same flags: a before/after in one run",
    )
    p.add_argument(
        "--target", default=None, help="benchmark a running collab deployment at this URL instead"
    )
    p.add_argument("--jwt-secret", default=None, help="mint tokens for --target with this key")
    p.add_argument(
        "--out",
        type=Path,
        default=Path("bench-results"),
        help="directory for the JSON result and the HTML plot",
    )
    return p


def _checkout(text: str) -> tuple[str, Path]:
    """``LABEL=PATH`` of ``--checkout``: the label and a collab source tree."""
    label, _, path = text.partition("=")
    source = Path(path.strip()).resolve()
    if not label.strip() or not (source / "collab" / "__main__.py").exists():
        raise argparse.ArgumentTypeError(f"{text!r}: expected LABEL=PATH of a collab checkout")
    return label.strip(), source


async def _collab(
    workdir: Path, store: str, variants: list[str], checkouts: list[tuple[str, Path]]
) -> list[Target]:
    proc = await start_collab(workdir, store=store)
    targets = [Target("collab", "sio", [proc.url], [proc])]
    for i, variant in enumerate(variants):
        label, _, flags = variant.partition("=")
        extra = await start_collab(workdir, *flags.split(), name=f"variant{i}", store=store)
        targets.append(Target(f"collab {label.strip()}", "sio", [extra.url], [extra]))
    for i, (label, source) in enumerate(checkouts):
        extra = await start_collab(workdir, name=f"checkout{i}", store=store, source=source)
        targets.append(Target(f"collab {label}", "sio", [extra.url], [extra]))
    return targets


async def _baselines(workdir: Path, names: list[str]) -> list[Target]:
    targets = []
    if "relay" in names:
        relay = await start_relay(workdir)
        targets.append(Target("relay", "sio", [relay.url], [relay]))
    if "node" in names:
        why = node_available()
        if why is not None:
            print(f"skipping the Node baseline: {why}", file=sys.stderr)
        else:
            peer = await start_node_peer(workdir)
            targets.append(Target("y-websocket", "yws", [peer.url], [peer]))
    return targets


async def _stop(targets: list[Target], extra: list[ManagedProcess]) -> None:
    for t in targets:
        for p in t.processes:
            await p.stop()
    for p in extra:
        await p.stop()


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    baselines = [b for b in args.baselines.split(",") if b]
    with tempfile.TemporaryDirectory(prefix="collab-bench-") as tmp:
        workdir = Path(tmp)
        extra: list[ManagedProcess] = []
        targets: list[Target] = []
        try:
            if args.target:
                subject = Target("remote", "sio", [args.target], jwt_secret=args.jwt_secret)
                targets = [subject]
                baselines = []
            elif args.scenario == "cluster":
                redis = await start_redis(workdir)
                extra.append(redis)
                nodes = [
                    await start_collab(
                        workdir, "--redis-url", redis.url, name=f"node{i}", store="redis"
                    )
                    for i in range(args.nodes)
                ]
                single = await start_collab(workdir, name="single", store=args.store)
                targets = [
                    Target(
                        f"collab x{args.nodes} nodes",
                        "sio",
                        [n.url for n in nodes],
                        nodes,
                        redis_url=redis.url,
                    ),
                    Target("collab 1 node", "sio", [single.url], [single]),
                ]
            else:
                targets = await _collab(workdir, args.store, args.variant, args.checkout)
                if args.scenario in ("quick", "fanout", "rooms"):
                    targets += await _baselines(workdir, baselines)
                elif args.scenario in CONNS_LIKE:  # the relay does no sync handshake
                    targets += await _baselines(workdir, [b for b in baselines if b != "relay"])
            if args.scenario == "stalls":
                args.payloads = _stalls_payloads(args)
            results = await _rounds(args, targets)
        finally:
            await _stop(targets, extra)
    sys.stderr.write("\n")
    return results


async def _rounds(args: argparse.Namespace, targets: list[Target]) -> list[dict[str, Any]]:
    """Every configuration ``args.rounds`` times. Servers take turns size by
    size, and each round starts with the next one, so a slow stretch of a
    shared machine falls on all of them rather than on one."""
    results: list[dict[str, Any]] = []
    sizes: list[int | None] = [None]
    if args.scenario in FANOUT_LIKE:
        sizes = list(args.receivers)
    elif args.scenario in CONNS_LIKE:
        sizes = list(args.connections)
    for round_ in range(args.rounds):
        for n in sizes:
            shift = round_ % len(targets)
            for target in targets[shift:] + targets[:shift]:
                for result in await _scenario(args, target, n):
                    result["round"] = round_
                    results.append(result)
    return results


async def _scenario(
    args: argparse.Namespace, target: Target, receivers: int | None
) -> list[dict[str, Any]]:
    out = []
    if args.scenario in FANOUT_LIKE:
        assert receivers is not None
        out.append(
            await run_fanout(
                target,
                receivers=receivers,
                rate=args.rate,
                count=args.count,
                warmup=args.warmup,
                workers=args.workers,
                senders=args.senders or 1,
                scenario="fanout" if args.scenario == "quick" else args.scenario,
            )
        )
    elif args.scenario == "rooms":
        out.append(
            await run_rooms(
                target,
                rooms=args.rooms,
                members=args.members,
                rate_per_room=args.rate_per_room,
                count=args.count,
                warmup=args.warmup,
                workers=args.workers,
            )
        )
    elif args.scenario == "conns":
        assert receivers is not None
        out.append(
            await run_conns(
                target,
                connections=receivers,
                room_size=args.room_size,
                idle_s=args.idle_window_s,
                workers=args.workers,
            )
        )
    elif args.scenario == "storm":
        assert receivers is not None
        out.append(
            await run_storm(
                target, connections=receivers, room_size=args.room_size, workers=args.workers
            )
        )
    elif args.scenario == "join" and target.protocol == "sio":
        out.append(await run_join(target, clients=args.clients, shapes=args.shapes))
    elif args.scenario == "stalls" and target.protocol == "sio":
        heavy, at_limit, board = args.payloads
        out.extend(
            await run_stalls(
                target,
                rate=args.rate,
                idle_s=args.idle_s,
                board_shapes=args.board_shapes,
                heavy=heavy,
                at_limit=at_limit,
                board=board,
            )
        )
    elif args.scenario == "chat" and target.protocol == "sio":
        out.append(
            await run_chat(
                target,
                senders=args.senders or 5,
                receivers=args.receivers[0],
                messages=args.messages,
                rate=args.rate,
            )
        )
    return out


def _stalls_payloads(args: argparse.Namespace) -> tuple[list[bytes], list[bytes], bytes]:
    """What the stalls scenario sends, made once for every server of the run."""
    sys.stderr.write("making the stalls payloads...\n")
    return (
        heavy_updates(6, items=HEAVY_ITEMS),
        heavy_updates(6, items=STRUCT_LIMIT, seed=2),
        shared_board(args.board_shapes),
    )


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.senders is not None and args.senders < 1:
        parser.error("--senders must be at least 1")
    if args.scenario == "quick" and "--count" not in argv:
        args.count = 400
    results = asyncio.run(run(args))
    combined = combine(results)
    if args.rounds > 1:
        print(f"medians of {args.rounds} rounds; every round is in the JSON file")
    if args.scenario == "stalls":
        print(stalls_table(combined))
        for line in stalls_ratios(results):
            print(line)
    elif args.scenario in CONNS_LIKE:
        print(conns_table(results))
        print()
        for base in ("y-websocket", "relay"):
            for line in conns_ratios(results, base):
                print(line)
        combined = []
    else:
        print(table(combined))
    print()
    for base in ("relay", "y-websocket"):
        for line in [] if args.scenario in CONNS_LIKE else ratios(results, base):
            print(line)
    if args.scenario == "cluster":
        for line in ratios(results, "collab 1 node", f"collab x{args.nodes} nodes"):
            print(line)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    json_path = args.out / f"{args.scenario}-{stamp}.json"
    html_path = args.out / f"{args.scenario}-{stamp}.html"
    write_json(json_path, results, ["python -m bench", *argv], combined=combined)
    write_html(html_path, combined, ["python -m bench", *argv])
    print(f"\nresults: {json_path}\nplot:    {html_path}")
    missing = sum(r.get("missing_deliveries") or 0 for r in results)
    if missing:
        print(f"WARNING: {missing} deliveries missing", file=sys.stderr)
    return 0 if not missing else 1
