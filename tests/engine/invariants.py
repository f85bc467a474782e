"""What must hold in the trading database after any crash, outage or restart, read with SQL
only (no engine code): no order twice, every position consistent with its orders and fills
and with its bot's saved book, no bot over its position limit."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from tests.engine.helpers import query
from tradepipe.orders import parse_client_order_id

OPEN = ("pending", "active")


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


def problems(url: str) -> list[str]:
    """Every broken invariant, one line each (empty: all hold)."""
    found: list[str] = []
    by_position = _order_problems(url, found)
    open_rows, limits = _position_problems(url, by_position, found)
    for bot, seqs in open_rows.items():
        if len(seqs) > limits[bot]:
            found.append(f"bot {bot}: {len(seqs)} open positions, limit {limits[bot]}")
    _book_problems(url, open_rows, found)
    return found


def _order_problems(url: str, found: list[str]) -> dict[int, list[Any]]:
    """No client order id twice, every order's fills add up to its filled quantity; returns
    the orders by position."""
    orders = query(
        url,
        "SELECT o.id, o.client_order_id, o.position_id, o.role, o.status, o.filled_quantity, "
        "b.name AS bot FROM orders o JOIN bots b ON b.id = o.bot_id",
    )
    ids = [row.client_order_id for row in orders]
    if len(ids) != len(set(ids)):
        found.append(f"duplicate client order ids: {sorted({i for i in ids if ids.count(i) > 1})}")
    fills: dict[int, float] = defaultdict(float)
    for row in query(url, "SELECT order_id, quantity FROM fills"):
        fills[row.order_id] += row.quantity
    by_position: dict[int, list[Any]] = defaultdict(list)
    for order in orders:
        by_position[order.position_id].append(order)
        if not _close(fills[order.id], order.filled_quantity or 0.0):
            found.append(
                f"order {order.client_order_id}: fills {fills[order.id]} != filled "
                f"{order.filled_quantity}"
            )
    return by_position


def _position_problems(
    url: str, by_position: dict[int, list[Any]], found: list[str]
) -> tuple[dict[str, set[int]], dict[str, int]]:
    """Every position consistent with its orders; returns the open positions' seqs by bot
    and each bot's position limit."""
    positions = query(
        url,
        "SELECT p.id, p.status, p.quantity, b.name AS bot, b.config FROM positions p "
        "JOIN bots b ON b.id = p.bot_id",
    )
    open_rows: dict[str, set[int]] = defaultdict(set)
    limits: dict[str, int] = {}
    for position in positions:
        config = position.config
        config = json.loads(config) if isinstance(config, str) else config
        limits[position.bot] = int(config["max_open_positions"])
        seq = _one_position_problems(position, by_position.get(position.id, []), found)
        if seq is not None and position.status in OPEN:
            open_rows[position.bot].add(seq)
    return open_rows, limits


def _one_position_problems(position: Any, mine: list[Any], found: list[str]) -> int | None:
    """The position's seq, or None when its orders do not name it (reported)."""
    entries = [o for o in mine if o.role == "entry"]
    if len(entries) != 1:
        found.append(f"position {position.id} of {position.bot}: {len(entries)} entry orders")
        return None
    entry = entries[0]
    parsed = parse_client_order_id(entry.client_order_id)
    if parsed is None or parsed[0] != position.bot:
        found.append(f"position {position.id}: entry id {entry.client_order_id} not its bot's")
        return None
    seq = parsed[1]
    owners = {(parse_client_order_id(o.client_order_id) or ("", -1))[:2] for o in mine}
    if owners != {parsed[:2]}:
        found.append(f"position {position.bot}/{seq}: orders of another position attached")
    bought = entry.filled_quantity or 0.0
    sold = sum(o.filled_quantity or 0.0 for o in mine if o.role != "entry")
    where = f"position {position.bot}/{seq} ({position.status})"
    if position.status == "pending" and (bought > 0 or sold > 0):
        found.append(f"{where}: pending with fills (entry {bought}, exits {sold})")
    elif position.status == "active" and not (bought > 0 and not _close(sold, bought)):
        found.append(f"{where}: active but entry {bought}, exits {sold}")
    elif position.status == "closed" and not _close(sold, bought):
        found.append(f"{where}: closed but entry {bought} != exits {sold}")
    return seq


def _book_problems(url: str, open_rows: dict[str, set[int]], found: list[str]) -> None:
    """Every bot's saved book holds exactly its open positions."""
    for row in query(url, "SELECT b.name, s.book FROM bot_states s JOIN bots b ON b.id = s.bot_id"):
        book = json.loads(row.book) if isinstance(row.book, str) else row.book
        if book is None:
            continue
        in_book = {p["seq"] for p in book["positions"]}
        if in_book != open_rows.get(row.name, set()):
            found.append(
                f"bot {row.name}: book holds {sorted(in_book)}, open rows "
                f"{sorted(open_rows.get(row.name, set()))}"
            )


def closed_positions(url: str, *, until_ms: int | None = None) -> set[tuple[str, int]]:
    """(bot, seq) of every closed position (closed at market time `until_ms` or before)."""
    rows = query(
        url,
        "SELECT o.client_order_id, p.closed_at FROM positions p "
        "JOIN orders o ON o.position_id = p.id WHERE p.status = 'closed' AND o.role = 'entry'",
    )
    closed = set()
    for row in rows:
        parsed = parse_client_order_id(row.client_order_id)
        if parsed is None or (until_ms is not None and _ms(row.closed_at) > until_ms):
            continue
        closed.add((parsed[0], parsed[1]))
    return closed


def _ms(value: datetime | str) -> float:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp() * 1000
