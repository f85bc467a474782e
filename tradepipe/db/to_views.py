"""Copies of ORM rows into the frozen views the query layer returns."""

from __future__ import annotations

from tradepipe.botconfig import BotConfigError, parse_bot_config
from tradepipe.db.models import Bot, Fill, Order, Position, Strategy
from tradepipe.db.views import BotView, FillView, OrderView, PositionView, StrategyView

__all__ = ["bot_view", "fill_view", "order_view", "position_view", "strategy_view"]


def strategy_view(row: Strategy) -> StrategyView:
    return StrategyView(
        id=row.id,
        name=row.name,
        file_path=row.file_path,
        class_name=row.class_name,
        content_hash=row.content_hash,
        status=row.status,
        error=row.error,
        error_line=row.error_line,
        version_count=row.version_count,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def bot_view(row: Bot) -> BotView:
    try:
        config, config_error = parse_bot_config(row.config, bot=row.name), None
    except BotConfigError as error:
        config, config_error = None, str(error)
    return BotView(
        id=row.id,
        name=row.name,
        strategy_name=row.strategy_name,
        symbol=row.symbol,
        exchange=row.exchange,
        timeframe=row.timeframe,
        mode=row.mode,
        enabled=row.enabled,
        status=row.status,
        last_error=row.last_error,
        config=config,
        config_error=config_error,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def order_view(row: Order, bot_name: str) -> OrderView:
    return OrderView(
        id=row.id,
        client_order_id=row.client_order_id,
        exchange_order_id=row.exchange_order_id,
        bot_name=bot_name,
        position_id=row.position_id,
        symbol=row.symbol,
        side=row.side,
        order_type=row.order_type,
        price=row.price,
        quantity=row.quantity,
        filled_quantity=row.filled_quantity,
        status=row.status,
        role=row.role,
        strategy_hash=row.strategy_hash,
        model_version=row.model_version,
        reason=row.reason,
        error=row.error,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def fill_view(row: Fill) -> FillView:
    return FillView(
        id=row.id,
        order_id=row.order_id,
        exchange_fill_id=row.exchange_fill_id,
        price=row.price,
        quantity=row.quantity,
        fee=row.fee,
        fee_asset=row.fee_asset,
        filled_at=row.filled_at,
    )


def position_view(row: Position, bot_name: str) -> PositionView:
    return PositionView(
        id=row.id,
        bot_name=bot_name,
        symbol=row.symbol,
        side=row.side,
        status=row.status,
        quantity=row.quantity,
        entry_price=row.entry_price,
        exit_price=row.exit_price,
        take_profit_price=row.take_profit_price,
        stop_loss_price=row.stop_loss_price,
        opened_at=row.opened_at,
        closed_at=row.closed_at,
        expires_at=row.expires_at,
        exit_reason=row.exit_reason,
        fees=row.fees,
        realised_pnl=row.realised_pnl,
        strategy_hash=row.strategy_hash,
        model_version=row.model_version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
