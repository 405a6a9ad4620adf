"""`shophook`: the operator CLI. Works against the local stack and against AWS
with the standard AWS environment; `--stage` loads a stage's variables from
.chalice/config.json (table names)."""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import unicodedata
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from chalicelib.service.errors import ServiceError
from shophook.stage import PROJECT_DIR, apply_stage

# Where `shophook local` serves the platform simulator unless told otherwise.
DEFAULT_SIMULATOR_PORT = 8100
console = Console()

# Terminal escape sequences: CSI (`ESC [ ... final`), OSC (`ESC ] ... BEL or ST`,
# which sets titles and makes links) and the two-character ones.
_ESCAPE_SEQUENCE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-_])")
# Bidirectional overrides and isolates reorder what the operator reads.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def plain(value: object) -> Text:
    """Text from sellers, platforms or integrators as the terminal should show it:
    never read as Rich markup, with escape sequences and control characters
    (C0, C1, bidi controls) removed; line breaks and tabs become spaces."""
    text = _ESCAPE_SEQUENCE.sub("", str(value)).replace("\n", " ").replace("\t", " ")
    return Text(
        "".join(
            char
            for char in text
            if unicodedata.category(char) != "Cc" and char not in _BIDI_CONTROLS
        )
    )


def _print_rows(rows: list[dict[str, Any]], as_json: bool, title: str) -> None:
    if as_json:
        print(json.dumps(rows, ensure_ascii=False, indent=2, default=str))
        return
    table = Table(title=title)
    for column in rows[0] if rows else ["(none)"]:
        table.add_column(column)
    for row in rows:
        table.add_row(*(plain(value) for value in row.values()))
    console.print(table)


def _local(args: argparse.Namespace) -> int:
    from shophook import local

    return local.run(args.host, args.port, args.moto_port, args.simulator_port)


def _hold_on_simulator(args: argparse.Namespace, messages: list[Any]) -> None:
    """The simulated platform keeps the scenario's records, pushed or not, as the
    platform would: what its listings show a reconciliation pull."""
    import requests

    from simulator.server import hold_records

    try:
        hold_records(args.simulator, messages)
    except requests.RequestException as error:
        if args.no_push or args.drop:
            raise SystemExit(
                f"the simulator at {args.simulator} did not take the records ({error}): "
                "without them no pull can find what is not pushed"
            ) from None
        # On stderr: stdout may be --json.
        print(
            f"warning: the simulator at {args.simulator} did not take the records: "
            "a reconciliation pull will not find them",
            file=sys.stderr,
        )


def _publish(args: argparse.Namespace, messages: list[Any], order_id: str) -> int:
    """The scenario on the platform's message channel (platforms.md 1.4), for the
    drain schedule to take."""
    import requests

    from simulator.scenarios import SCENARIOS
    from simulator.server import publish

    scenario = SCENARIOS[args.scenario]
    try:
        # Thin, as the real channel hands them out: the detail calls complete them.
        published = publish(args.simulator, messages)
    except requests.RequestException as error:
        raise SystemExit(f"the simulator at {args.simulator} did not take them ({error})") from None
    rows = [
        {"message": m.message_id, "topic": m.topic, "status": "on the channel"} for m in messages
    ]
    _print_rows(rows, args.json, f"{args.scenario}: {scenario.description}")
    if not args.json:
        console.print(
            f"{published} messages on the simulated channel: the drain schedule takes them "
            "(every minute)\n"
            f"See the order: GET {args.url}/shops/{scenario.shop_id}/orders/{order_id}",
            highlight=False,
        )
    return 0


def _simulate(args: argparse.Namespace) -> int:
    import requests

    from chalicelib.settings import settings
    from simulator.scenarios import DEMO_CREDENTIALS, SCENARIOS

    if not 0 <= args.drop <= 100:
        raise SystemExit("--drop is a percentage, from 0 to 100")
    scenario = SCENARIOS[args.scenario]
    now = datetime.now(UTC)
    order_id = args.order or scenario.default_order_id
    messages = scenario.build(order_id, now)
    _hold_on_simulator(args, messages)
    shuffler = random.Random(args.seed)  # noqa: S311 - test traffic, not security
    pushes = (
        []
        if args.no_push
        else messages + [shuffler.choice(messages) for _ in range(args.duplicates)]
    )
    if args.thin:
        pushes = [replace(message, thin=True) for message in pushes]
    if args.shuffle:
        shuffler.shuffle(pushes)
    dropped = set(shuffler.sample(range(len(pushes)), round(len(pushes) * args.drop / 100)))
    if args.via == "tmc":
        return _publish(args, [m for n, m in enumerate(pushes) if n not in dropped], order_id)
    rows = []
    with requests.Session() as session:
        for position, message in enumerate(pushes):
            row = {"message": message.message_id, "topic": message.topic}
            if position in dropped:
                rows.append({**row, "status": "dropped", "answer": ""})
                continue
            credentials = (
                settings().platform(message.platform).credentials
                or DEMO_CREDENTIALS[message.platform]
            )
            webhook = message.signed(credentials, now)
            answer = session.post(
                args.url + webhook.path, data=webhook.body, headers=webhook.headers, timeout=10
            )
            rows.append({**row, "status": answer.status_code, "answer": answer.text.strip()})
    _print_rows(rows, args.json, f"{args.scenario}: {scenario.description}")
    if not args.json:
        console.print(
            f"{len(messages)} messages held on the simulated platform, "
            f"{len(pushes) - len(dropped)} pushed, {len(dropped)} dropped\n"
            f"See the order: GET {args.url}/shops/{scenario.shop_id}/orders/{order_id}",
            highlight=False,
        )
    return 0 if all(row["status"] in (200, "dropped") for row in rows) else 1


def _shops_list(args: argparse.Namespace) -> int:
    from chalicelib.service import shops

    rows = [
        {
            "shop_id": shop.shop_id,
            "name": shop.name,
            "status": shop.status,
            "connected_at": shop.connected_at.isoformat(),
        }
        for shop in shops.all_shops()
    ]
    _print_rows(rows, args.json, "shops")
    return 0


def _shops_add(args: argparse.Namespace) -> int:
    from chalicelib.service import shops

    shop = shops.connect(args.shop_id, args.name, datetime.now(UTC))
    console.print(plain(f"connected {shop.shop_id}"), highlight=False)
    return 0


def _shops_show(args: argparse.Namespace) -> int:
    from chalicelib.service import policy, shops

    shop = shops.get(args.shop_id)
    described = policy.describe(shop, "en")
    shown = shops.view(shop)
    backfill = shown["backfill"]
    row = {
        "shop_id": shop.shop_id,
        "name": shop.name,
        "status": shop.status,
        "connected_at": shop.connected_at.isoformat(),
        "reconcile_cursor": shown["reconcile"]["cursor"] or "(not pulled yet)",
        "backfill": (
            f"{backfill['progress']:.0%} of {backfill['since']} to {backfill['until']}"
            if backfill
            else "(none)"
        ),
        "policy_overrides": described["overrides"] or "(none)",
    }
    if args.json:
        row["backfill"] = backfill
    _print_rows([row], args.json, f"shop {shop.shop_id}")
    return 0


def _moment(text: str, flag: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise SystemExit(f"{flag} takes an ISO 8601 time with its offset, not {text!r}")
    return moment


def _reconcile(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from chalicelib.domain.model import SHANGHAI
    from chalicelib.service import reconcile

    since = _moment(args.since, "--since") if args.since else None
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=console, transient=True, disable=args.json) as progress:
        task = progress.add_task(f"pulling {args.shop_id}, windows", total=None)

        def advanced(report: reconcile.PullReport) -> None:
            progress.update(task, total=report.planned, completed=report.windows)

        report = reconcile.pull_shop(
            args.shop_id, datetime.now(UTC), since=since, budget_seconds=None, on_window=advanced
        )
    healed = [{"entity": item.entity, "listing": item.listing} for item in report.healed]
    refused = report.refused
    summary = {
        "shop_id": report.shop_id,
        "since": report.start.astimezone(SHANGHAI).isoformat(),
        "cursor": report.cursor.astimezone(SHANGHAI).isoformat() if report.cursor else None,
        "windows": report.windows,
        "pages": report.pages,
        "records": report.records,
        "reread": report.reread,
        "healed": healed,
        "refused": f"{refused.code}: {refused.message}" if refused else None,
    }
    if args.json:
        print(json.dumps(summary, ensure_ascii=False, indent=2))
    else:
        _print_rows(healed, False, f"healed in {report.shop_id} (stored by this pull)")
        console.print(
            f"{report.windows} of {report.planned} windows from {summary['since']}, "
            f"{report.pages} pages, {report.records} records, {report.reread} re-read, "
            f"{len(healed)} healed" + (f"; stopped: {summary['refused']}" if refused else ""),
            highlight=False,
        )
    return 0 if refused is None else 1


def _keys_list(args: argparse.Namespace) -> int:
    from chalicelib.service import keys

    rows = [
        {
            "key_id": record.key_id,
            "name": record.name,
            "shops": ", ".join(sorted(record.shops)),
            "created_at": record.created_at.isoformat(),
            "revoked_at": record.revoked_at.isoformat() if record.revoked_at else "",
        }
        for record in keys.all_keys()
    ]
    _print_rows(rows, args.json, "api keys (the keys themselves are never stored)")
    return 0


def _keys_revoke(args: argparse.Namespace) -> int:
    from chalicelib.service import keys

    revoked = keys.revoke(args.key_id, datetime.now(UTC))
    console.print(
        plain(
            f"revoked {revoked.key.key_id} ({revoked.key.name}); "
            f"subscriptions disabled: {revoked.subscriptions_disabled}"
        ),
        highlight=False,
    )
    return 0


def _subscription_row(shown: dict[str, Any]) -> dict[str, Any]:
    health = shown["health"]
    return {
        "id": shown["id"],
        "key_id": shown["key_id"],
        "url": shown["url"],
        "event_types": ", ".join(shown["event_types"]),
        "shops": ", ".join(shown["shops"]),
        "enabled": shown["enabled"],
        "disabled_reason": shown["disabled_reason"] or "",
        "last_outcome": health["last_outcome"] or "",
        "last_status_code": health["last_status_code"] or "",
        "failing_since": health["failing_since"] or "",
        "circuit_open": health["circuit_open"],
        "dead_lettered": health["dead_lettered"],
    }


def _subscriptions_list(args: argparse.Namespace) -> int:
    from chalicelib.service import subscriptions

    rows = [
        _subscription_row(shown)
        for shown in subscriptions.every()
        if (args.shop is None or args.shop in shown["shops"])
        and (args.key is None or shown["key_id"] == args.key)
    ]
    _print_rows(rows, args.json, "subscriptions (secrets are never shown)")
    return 0


def _subscriptions_show(args: argparse.Namespace) -> int:
    from chalicelib.service import subscriptions

    shown = subscriptions.shown(args.subscription_id)
    if args.json:
        print(json.dumps(shown, ensure_ascii=False, indent=2))
    else:
        _print_rows([_subscription_row(shown)], False, f"subscription {shown['id']}")
    return 0


def _subscriptions_disable(args: argparse.Namespace) -> int:
    from chalicelib.domain.endpoints import DisabledReason
    from chalicelib.service import subscriptions

    subscription = subscriptions.get(args.subscription_id)
    changed = subscriptions.disable(subscription, DisabledReason.OPERATOR, datetime.now(UTC))
    state = "disabled" if changed else "was disabled already"
    console.print(f"{subscription.subscription_id} {state}", highlight=False)
    return 0


def _subscriptions_enable(args: argparse.Namespace) -> int:
    from chalicelib.service import subscriptions

    subscription = subscriptions.get(args.subscription_id)
    state = "enabled" if subscriptions.enable(subscription) else "was enabled already"
    console.print(
        f"{subscription.subscription_id} {state}; `subscriptions replay` sends what it missed",
        highlight=False,
    )
    return 0


def _subscriptions_replay(args: argparse.Namespace) -> int:
    from chalicelib.service import subscriptions
    from chalicelib.service.commands import ReplayRequest, from_json

    asked = {"delivery_id": args.delivery, "since": args.since, "until": args.until}
    command = from_json(
        ReplayRequest,
        json.dumps({name: value for name, value in asked.items() if value is not None}).encode(),
    )
    subscription = subscriptions.get(args.subscription_id)
    replayed = subscriptions.replay_any(subscription, command, datetime.now(UTC))
    if args.json:
        print(json.dumps(replayed))
    else:
        console.print(f"replayed {replayed['replayed']} deliveries", highlight=False)
    return 0


def _deadlines(args: argparse.Namespace) -> int:
    from chalicelib.service import queries, shops
    from chalicelib.service.commands import DeadlineQuery, from_query

    query = from_query(DeadlineQuery, {"before": args.before} if args.before else {})
    shop_ids = [args.shop] if args.shop else [shop.shop_id for shop in shops.all_shops()]
    rows = [
        {"shop_id": shop_id, **item}
        for shop_id in shop_ids
        for item in queries.deadlines(shop_id, query)["items"]
    ]
    rows.sort(key=lambda row: row["due_at"])
    _print_rows(rows, args.json, "pending deadlines, soonest first")
    return 0


def _quarantine_list(args: argparse.Namespace) -> int:
    from chalicelib.service import quarantine

    _print_rows([quarantine.summary(r) for r in quarantine.held()], args.json, "quarantine")
    return 0


def _quarantine_show(args: argparse.Namespace) -> int:
    from chalicelib.service import quarantine

    detail = quarantine.detail(quarantine.get(args.key))
    if args.json:
        print(json.dumps(detail, ensure_ascii=False, indent=2))
    else:
        for name, value in detail.items():
            console.print(Text(f"{name}: ", style="bold"), plain(value), sep="", highlight=False)
    return 0


def _quarantine_reprocess(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from chalicelib.service import quarantine

    records = quarantine.held() if args.all else [quarantine.get(key) for key in args.key]
    results = []
    with Progress(console=console, transient=True, disable=args.json) as progress:
        task = progress.add_task("reprocessing", total=len(records))
        for record in records:
            status = quarantine.reprocess(record, datetime.now(UTC))
            results.append({"key": record.message_key, "status": status, "stored": status == 200})
            progress.advance(task)
    _print_rows(results, args.json, "reprocessed (200: stored and released)")
    return 0 if all(result["stored"] for result in results) else 1


def _dead_letter_queues(name: str) -> list[Any]:
    from chalicelib.store.queues import ALL_QUEUES

    return [queue for queue in ALL_QUEUES if name in ("all", queue.name)]


def _dlq_list(args: argparse.Namespace) -> int:
    from chalicelib.service import outbox

    rows = []
    for queue in _dead_letter_queues(args.queue):
        for held in outbox.dead_lettered(queue, args.limit):
            row = held.row
            rows.append(
                {
                    "queue": queue.name,
                    "outbox_id": held.letter.body["outbox_id"],
                    "kind": row.kind if row else "(gone)",
                    "type": row.type if row else "",
                    "shop_id": row.shop_id if row else "",
                    "state": row.state if row else "",
                    "attempts": len(row.attempts) if row else 0,
                    "error": (row.error or "") if row else "",
                    "dead_lettered_at": (
                        row.finished_at.isoformat() if row and row.finished_at else ""
                    ),
                }
            )
    _print_rows(
        rows, args.json, "dead-lettered outbound work (held back for a minute while listed)"
    )
    return 0


def _dlq_replay(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from chalicelib.service import outbox

    results = []
    with Progress(console=console, transient=True, disable=args.json) as progress:
        for queue in _dead_letter_queues(args.queue):
            held = outbox.dead_lettered(queue, args.limit)
            task = progress.add_task(f"replaying {queue.name}", total=len(held))
            for item in held:
                replayed = outbox.replay_dead_letter(queue, item, datetime.now(UTC))
                results.append(
                    {
                        "queue": queue.name,
                        "outbox_id": item.letter.body["outbox_id"],
                        "replayed": replayed,
                    }
                )
                progress.advance(task)
    _print_rows(
        results, args.json, "replayed (False: it had moved on; the stale message is dropped)"
    )
    return 0


def _keys_create(args: argparse.Namespace) -> int:
    from chalicelib.service import keys, shops

    for shop_id in args.shop:
        shops.parse_shop_id(shop_id)
    key_id, key = keys.create_key(args.name, args.shop, datetime.now(UTC))
    if args.json:
        print(json.dumps({"key_id": key_id, "key": key, "shops": args.shop}))
    else:
        console.print(
            f"key id  {key_id}\nkey     {key}\n(shown once: store it now)", highlight=False
        )
    return 0


def _explain(args: argparse.Namespace) -> int:
    from chalicelib.service import queries

    case = queries.case(args.shop_id, args.case_id, args.lang, datetime.now(UTC))
    timeline = queries.case_timeline(args.shop_id, args.case_id)
    if args.json:
        print(
            json.dumps(
                {"case": case, "timeline": timeline}, ensure_ascii=False, indent=2, default=str
            )
        )
        return 0
    console.print(
        plain(
            f"{case['case_id']}  order {case['order_id']}  {case['kind']}  "
            f"{case['status']}  amount {case['amount_fen']} fen  "
            f"quality issue: {'yes' if case['quality_issue'] else 'no'}"
        ),
        style="bold",
    )
    _print_rows(timeline, False, "timeline")
    _print_rows(
        [
            {
                "rule": d["rule"],
                "outcome": d["outcome"],
                "why": d["explanation"],
                "source": d["source"],
            }
            for d in case["decisions"]
        ],
        False,
        "decisions",
    )
    _print_rows(case["deadlines"], False, "deadlines")
    return 0


def _tables_create(args: argparse.Namespace) -> int:
    from chalicelib.store.records import ALL_RECORDS, create_tables

    create_tables()
    for record in ALL_RECORDS:
        console.print(f"ready  {record.Meta.table_name}", highlight=False)
    return 0


def _infra(args: argparse.Namespace) -> int:
    from shophook.infra import render

    rendered = render()
    current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
    if args.check:
        if current != rendered:
            raise SystemExit(f"{args.output} is out of date: run `shophook infra`")
        return 0
    args.output.write_text(rendered, encoding="utf-8")
    console.print(f"wrote {args.output}", highlight=False)
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="shophook", description=__doc__)
    root.add_argument("--stage", help="load this stage's variables from .chalice/config.json")
    commands = root.add_subparsers(dest="command", required=True)

    local = commands.add_parser("local", help="run the whole stack on this machine")
    local.add_argument("--host", default="127.0.0.1")
    local.add_argument("--port", type=int, default=8000, help="HTTP API port")
    local.add_argument("--moto-port", type=int, default=5000, help="embedded moto server port")
    local.add_argument(
        "--simulator-port",
        type=int,
        default=DEFAULT_SIMULATOR_PORT,
        help="platform simulator port",
    )
    local.set_defaults(handler=_local)

    from simulator.scenarios import SCENARIOS

    simulate = commands.add_parser("simulate", help="send a scenario's signed webhooks")
    simulate.add_argument("scenario", choices=sorted(SCENARIOS))
    simulate.add_argument("--url", default="http://127.0.0.1:8000", help="ShopHook's API")
    simulate.add_argument("--order", help="order id to use (default: the scenario's)")
    simulate.add_argument("--shuffle", action="store_true", help="send in random order")
    simulate.add_argument("--duplicates", type=int, default=0, help="extra copies to send")
    simulate.add_argument(
        "--seed", type=int, help="random seed for --shuffle, --duplicates and --drop"
    )
    simulate.add_argument(
        "--simulator",
        default=f"http://127.0.0.1:{DEFAULT_SIMULATOR_PORT}",
        help="the platform simulator, which holds the scenario's records for pulls",
    )
    simulate.add_argument(
        "--no-push",
        action="store_true",
        help="hold the scenario on the simulated platform only: only a pull finds it",
    )
    simulate.add_argument(
        "--thin",
        action="store_true",
        help="push Taobao-style trade and refund contents thin (no items, no refund_fee): "
        "ShopHook completes them with the platform's detail calls",
    )
    simulate.add_argument(
        "--drop", type=float, default=0, metavar="PERCENT", help="drop this share of the pushes"
    )
    simulate.add_argument(
        "--via",
        choices=("push", "tmc"),
        default="push",
        help="push the webhooks, or put them on the Taobao-style message channel (TMC)",
    )
    simulate.add_argument("--json", action="store_true")
    simulate.set_defaults(handler=_simulate)

    pull = commands.add_parser(
        "reconcile", help="pull a shop's changes from its platform now, storing what was missed"
    )
    pull.add_argument("shop_id")
    pull.add_argument("--since", help="ISO 8601 time with offset (default: the shop's cursor)")
    pull.add_argument("--json", action="store_true")
    pull.set_defaults(handler=_reconcile)

    shops = commands.add_parser("shops", help="connected shops").add_subparsers(
        dest="action", required=True
    )
    shops_list = shops.add_parser("list")
    shops_list.add_argument("--json", action="store_true")
    shops_list.set_defaults(handler=_shops_list)
    shops_add = shops.add_parser("add", help="connect a shop by id (taobao:<id>, jd:<id>)")
    shops_add.add_argument("shop_id")
    shops_add.add_argument("--name", default="")
    shops_add.set_defaults(handler=_shops_add)
    shops_show = shops.add_parser("show", help="one shop, with its policy overrides")
    shops_show.add_argument("shop_id")
    shops_show.add_argument("--json", action="store_true")
    shops_show.set_defaults(handler=_shops_show)

    deadlines = commands.add_parser("deadlines", help="pending deadlines, soonest first")
    deadlines.add_argument("--shop", help="one shop (default: every shop)")
    deadlines.add_argument("--before", help="ISO 8601 time with offset")
    deadlines.add_argument("--json", action="store_true")
    deadlines.set_defaults(handler=_deadlines)

    held = commands.add_parser("quarantine", help="well-signed messages that could not be applied")
    held_actions = held.add_subparsers(dest="action", required=True)
    held_list = held_actions.add_parser("list")
    held_list.add_argument("--json", action="store_true")
    held_list.set_defaults(handler=_quarantine_list)
    held_show = held_actions.add_parser("show")
    held_show.add_argument("key", help="platform#message id, as `list` shows it")
    held_show.add_argument("--json", action="store_true")
    held_show.set_defaults(handler=_quarantine_show)
    held_again = held_actions.add_parser("reprocess", help="parse and store again (after a fix)")
    held_again.add_argument("key", nargs="*")
    held_again.add_argument("--all", action="store_true")
    held_again.add_argument("--json", action="store_true")
    held_again.set_defaults(handler=_quarantine_reprocess)

    explain = commands.add_parser("explain", help="a case's timeline, decisions and deadlines")
    explain.add_argument("shop_id")
    explain.add_argument("case_id")
    explain.add_argument("--lang", choices=["en", "zh"], default="en")
    explain.add_argument("--json", action="store_true")
    explain.set_defaults(handler=_explain)

    tables = commands.add_parser("tables", help="DynamoDB tables").add_subparsers(
        dest="action", required=True
    )
    tables.add_parser("create", help="create any missing table (on-demand billing)").set_defaults(
        handler=_tables_create
    )

    infra = commands.add_parser("infra", help="write infra/template.json from the models")
    infra.add_argument("--output", type=Path, default=PROJECT_DIR / "infra" / "template.json")
    infra.add_argument("--check", action="store_true", help="fail if the file is out of date")
    infra.set_defaults(handler=_infra)

    dlq = commands.add_parser("dlq", help="outbound work that ran out of retries").add_subparsers(
        dest="action", required=True
    )
    for name, handler, limit, about in (
        ("list", _dlq_list, 100, "what the dead-letter queues hold"),
        ("replay", _dlq_replay, 10_000, "send it all again, as a new attempt budget"),
    ):
        command = dlq.add_parser(name, help=about)
        command.add_argument("--queue", choices=["all", "outbox", "deliveries"], default="all")
        command.add_argument("--limit", type=int, default=limit, help="per queue")
        command.add_argument("--json", action="store_true")
        command.set_defaults(handler=handler)

    keys = commands.add_parser("keys", help="integrator API keys").add_subparsers(
        dest="action", required=True
    )
    keys_create = keys.add_parser("create", help="create a key scoped to shops; shown once")
    keys_create.add_argument("--name", required=True)
    keys_create.add_argument("--shop", action="append", required=True, help="repeat per shop")
    keys_create.add_argument("--json", action="store_true")
    keys_create.set_defaults(handler=_keys_create)
    keys_list = keys.add_parser("list", help="key ids, names and scopes")
    keys_list.add_argument("--json", action="store_true")
    keys_list.set_defaults(handler=_keys_list)
    keys_revoke = keys.add_parser(
        "revoke", help="refuse a key from now on, and disable its subscriptions"
    )
    keys_revoke.add_argument("key_id")
    keys_revoke.set_defaults(handler=_keys_revoke)

    hooks = commands.add_parser(
        "subscriptions", help="integrators' subscriptions and their delivery health"
    ).add_subparsers(dest="action", required=True)
    hooks_list = hooks.add_parser("list", help="every subscription, oldest first")
    hooks_list.add_argument("--shop", help="only those on this shop")
    hooks_list.add_argument("--key", help="only those of this key id")
    hooks_list.add_argument("--json", action="store_true")
    hooks_list.set_defaults(handler=_subscriptions_list)
    for name, handler, about in (
        ("show", _subscriptions_show, "one subscription with its delivery health"),
        ("disable", _subscriptions_disable, "stop delivering to it; cancel what is queued"),
        ("enable", _subscriptions_enable, "deliver to it again (not a revoked key's)"),
    ):
        command = hooks.add_parser(name, help=about)
        command.add_argument("subscription_id")
        if name == "show":
            command.add_argument("--json", action="store_true")
        command.set_defaults(handler=handler)
    hooks_replay = hooks.add_parser(
        "replay", help="send deliveries again: one by id, or a time range"
    )
    hooks_replay.add_argument("subscription_id")
    hooks_replay.add_argument("--delivery", help="a delivery id (dlv_...)")
    hooks_replay.add_argument("--since", help="ISO 8601 time with offset")
    hooks_replay.add_argument("--until", help="ISO 8601 time with offset (default: now)")
    hooks_replay.add_argument("--json", action="store_true")
    hooks_replay.set_defaults(handler=_subscriptions_replay)
    return root


def _keep_stdout_for_output() -> None:
    """Tables and --json go to stdout; the app's log lines go to stderr, and its
    metric lines, which only CloudWatch reading a Lambda's log would use, are off."""
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    from chalicelib.observability import logger

    logger.logger_handler.setStream(sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.stage:
        apply_stage(args.stage)
    if args.stage == "local" and args.command != "local":
        from shophook.local import attach_operator_cli

        attach_operator_cli()
    if args.command != "local":
        _keep_stdout_for_output()
    try:
        return args.handler(args)
    except ServiceError as error:
        raise SystemExit(f"{error.message}") from None


if __name__ == "__main__":
    sys.exit(main())
