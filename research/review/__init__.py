"""The review of a live bot: its recorded market replayed through the backtester.

`review_bot` reads what the engine recorded (the bot's candles in the candle store, its
rows of the decision log, its positions in the trading database), replays the candles
through `research.backtest.run_backtest` with the strategy version(s) and model
version(s) that were live, one segment per version, and compares item by item: features,
model probabilities, decisions and positions (`research.review.compare`,
`research.review.positions`). `record_review` keeps the result in the database and, for a
bot that consumes a model, as an MLflow evaluation run of the model version.
"""

from research.review.compare import FEATURE_TOLERANCE, Divergence
from research.review.report import ReviewReport
from research.review.run import ReviewError, ReviewInputs, review_bot

__all__ = [
    "FEATURE_TOLERANCE",
    "Divergence",
    "ReviewError",
    "ReviewInputs",
    "ReviewReport",
    "review_bot",
]
