"""Training, walk-forward validation and gated promotion of LightGBM models from TOML specs.

The pipeline (`train`, `validate`, `promote`, `run`) turns a spec in research/specs/ into a
registered, validated MLflow model version and a promotion decision; `ModelSpec` and
`load_spec` read specs; every user-fixable failure is a `ResearchError` with one line.
Modules: spec (the TOML model), dataset (features + labels), splits (purge/embargo),
model (LightGBM fit, metrics), evaluate (backtests), train / walkforward / promotion (the
steps), gates (pure decisions), guard_gates (look-ahead, pins), tracking (MLflow runs),
workspace (where state lives).
"""

from research.training.context import DataInput, load_training_candles
from research.training.dataset import Dataset, build_dataset, required_rows
from research.training.errors import DatasetError, PipelineStateError, ResearchError, SpecError
from research.training.gates import GateResult
from research.training.pipeline import RunOutcome, promote, run, train, validate
from research.training.promotion import PromotionOutcome
from research.training.spec import ModelSpec, load_spec, parse_spec
from research.training.train import TrainResult
from research.training.walkforward import FoldResult, ValidationResult
from research.training.workspace import Workspace

__all__ = [
    "DataInput",
    "Dataset",
    "DatasetError",
    "FoldResult",
    "GateResult",
    "ModelSpec",
    "PipelineStateError",
    "PromotionOutcome",
    "ResearchError",
    "RunOutcome",
    "SpecError",
    "TrainResult",
    "ValidationResult",
    "Workspace",
    "build_dataset",
    "load_spec",
    "load_training_candles",
    "parse_spec",
    "promote",
    "required_rows",
    "run",
    "train",
    "validate",
]
