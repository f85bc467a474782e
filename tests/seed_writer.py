"""Writes the rows of a trading history: strategies, bots, positions, orders, fills (the
histories of tests/seed_data.py are written with it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from tradepipe import db

# The seeded bots' configuration: 100 USDT a trade, +1 % / -0.5 %, an hour at most.
BOT_CONFIG: dict[str, object] = {
    "capital_per_trade": 100.0,
    "take_profit_pct": 1.0,
    "stop_loss_pct": 0.5,
    "max_holding_seconds": 3600,
    "maker_order_timeout_seconds": 30,
}


def bot_config(**overrides: object) -> dict[str, object]:
    return {**BOT_CONFIG, **overrides}


def day_start(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class HistoryWriter:
    """Adds strategies, bots, positions, orders and fills to `session` with one history's
    defaults: a position's size and strategy hash, the prefix of client order ids and, when
    given, the `now` a position without an opening time was created at."""

    session: Session
    quantity: float
    strategy_hash: str
    order_prefix: str
    now: datetime | None = None

    def strategy(
        self, name: str, content_hash: str, status: db.StrategyStatus, **fields: object
    ) -> None:
        class_name = "".join(part.title() for part in name.split("_"))
        self.session.add(
            db.Strategy(
                name=name,
                file_path=f"strategies/{name}.py",
                class_name=class_name,
                content_hash=content_hash,
                status=status,
                **fields,
            )
        )

    def bot(
        self, name: str, strategy: str, symbol: str, timeframe: str, **fields: object
    ) -> db.Bot:
        values: dict[str, object] = {"config": bot_config(), "enabled": True, **fields}
        row = db.Bot(
            name=name, strategy_name=strategy, symbol=symbol, timeframe=timeframe, **values
        )
        self.session.add(row)
        return row

    def position(self, bot: db.Bot, status: db.PositionStatus, **fields: object) -> db.Position:
        values: dict[str, object] = {
            "side": db.Side.BUY,
            "quantity": self.quantity,
            "strategy_hash": self.strategy_hash,
            "model_version": "3",
        }
        if self.now is not None:
            values["created_at"] = fields.get("opened_at") or self.now
        values.update(fields)
        row = db.Position(bot_id=bot.id, symbol=bot.symbol, status=status, **values)
        self.session.add(row)
        return row

    def order(
        self,
        position: db.Position,
        role: db.OrderRole,
        side: db.Side,
        at: datetime,
        price: float,
        status: db.OrderStatus,
        **fields: object,
    ) -> db.Order:
        """A limit order of `position` placed `at`; filled in full when `status` says so."""
        quantity = float(fields.pop("quantity", None) or position.quantity or 1.0)
        row = db.Order(
            client_order_id=f"{self.order_prefix}-{position.id}-{role.value}",
            role=role,
            side=side,
            price=price,
            quantity=quantity,
            order_type=db.OrderType.LIMIT,
            filled_quantity=quantity if status is db.OrderStatus.FILLED else 0.0,
            status=status,
            created_at=at,
            updated_at=at,
            **_position_fields(position),
            **fields,
        )
        self.session.add(row)
        return row

    def fill(self, order: db.Order, at: datetime, fee: float, **fields: object) -> None:
        """A fill of `order` (by default: all of it at its price)."""
        values: dict[str, object] = {
            "exchange_fill_id": f"t-{order.client_order_id}",
            "price": order.price,
            "quantity": order.quantity,
            **fields,
        }
        self.session.add(
            db.Fill(order_id=order.id, fee=fee, fee_asset="USDT", filled_at=at, **values)
        )


def _position_fields(position: db.Position) -> dict[str, object]:
    """What an order takes over from its position."""
    return {
        "bot_id": position.bot_id,
        "position_id": position.id,
        "symbol": position.symbol,
        "strategy_hash": position.strategy_hash,
        "model_version": position.model_version,
    }
