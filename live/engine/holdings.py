"""The bots that may hold open positions, by symbol: what a trade, a tick and the exposure
caps have to look at, instead of every bot of the engine.

A position opens in one place only, an entry the book accepts (`note` after it), or
arrives with a saved book (`note` when the bot is added); it closes in many. So the
index is a superset kept exact lazily: a bot found flat, moved to another symbol, or no
longer the running bot of its name is dropped when it is next looked at. With ten thousand
bots mostly flat, a trade visits the few holding its symbol, not the thirty on it.
"""

from __future__ import annotations

from collections.abc import Mapping

from live.engine.bot import BotRuntime

__all__ = ["Holdings"]


class Holdings:
    def __init__(self) -> None:
        self._by_symbol: dict[str, dict[str, BotRuntime]] = {}

    def note(self, bot: BotRuntime) -> None:
        """`bot` may hold positions now (a no-op while its book is flat)."""
        if bot.book.open_count:
            self._by_symbol.setdefault(bot.symbol, {})[bot.name] = bot

    def of_symbol(self, symbol: str, running: Mapping[str, BotRuntime]) -> list[BotRuntime]:
        """The running bots holding open positions on `symbol`."""
        held = self._by_symbol.get(symbol)
        if not held:
            return []
        found = []
        for name, bot in list(held.items()):
            if running.get(name) is not bot or bot.symbol != symbol or not bot.book.open_count:
                del held[name]
                continue
            found.append(bot)
        return found

    def every(self, running: Mapping[str, BotRuntime]) -> list[BotRuntime]:
        """The running bots holding open positions, on any symbol."""
        return [bot for symbol in list(self._by_symbol) for bot in self.of_symbol(symbol, running)]
