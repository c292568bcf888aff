"""Layer stacks as ``model.summary()`` shows them, and comparing one with an expected stack.

A row is the layer's type with its key configuration (filters, kernel size, activation,
units, pool size), its output shape and its parameter count. The comparison marks the first
row that differs, and its message says what was expected there and what was found.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from autograder.checks.artifacts import CheckFailed


@dataclass(frozen=True)
class LayerRow:
    """One line of a layer table."""

    layer: str
    output_shape: tuple[int | None, ...]
    params: int

    def describe(self) -> str:
        return f"{self.layer} with output {format_shape(self.output_shape)}"


def format_shape(shape: tuple[int | None, ...]) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def describe_layer(layer: Any) -> str:
    """``Conv2D(128, 3x3, relu)``, ``Dense(64, relu)``, ``MaxPooling2D(2x2)``, ``LSTM(64)``."""
    kind = type(layer).__name__
    config = layer.get_config()
    parts: list[str] = []
    if "filters" in config:
        parts.append(str(config["filters"]))
    if "units" in config:
        parts.append(str(config["units"]))
    for key in ("kernel_size", "pool_size"):
        if key in config and config[key] is not None:
            parts.append("x".join(str(v) for v in config[key]))
    activation = config.get("activation")
    if activation not in (None, "linear") and kind not in ("LSTM", "GRU", "SimpleRNN"):
        parts.append(str(activation))
    if kind in ("Bidirectional", "TimeDistributed") and hasattr(layer, "layer"):
        parts = [describe_layer(layer.layer if kind == "TimeDistributed" else layer.forward_layer)]
    return f"{kind}({', '.join(parts)})"


def layer_table(model: Any) -> list[LayerRow]:
    """The rows ``model.summary()`` shows for ``model``, from the loaded model itself."""
    rows = []
    for layer in model.layers:
        shape = tuple(layer.output.shape) if hasattr(layer, "output") else ()
        rows.append(LayerRow(describe_layer(layer), shape, int(layer.count_params())))
    return rows


def compare_stacks(found: list[LayerRow], expected: list[LayerRow], *, name: str) -> None:
    """Raise :class:`CheckFailed` at the first row where ``found`` differs from ``expected``;
    its details carry both tables and the index of that row for the feedback report."""
    first = None
    for index in range(max(len(found), len(expected))):
        mine = found[index] if index < len(found) else None
        wanted = expected[index] if index < len(expected) else None
        if (
            mine is None
            or wanted is None
            or (mine.layer, mine.output_shape) != (wanted.layer, wanted.output_shape)
            or mine.params != wanted.params
        ):
            first = index
            break
    if first is None:
        return
    mine = found[first] if first < len(found) else None
    wanted = expected[first] if first < len(expected) else None
    if wanted is None:
        what = (
            f"layer {first + 1}: expected no more layers, found {mine.describe() if mine else ''}"
        )
    elif mine is None:
        what = f"layer {first + 1}: expected {wanted.describe()}, found nothing (too few layers)"
    elif (mine.layer, mine.output_shape) == (wanted.layer, wanted.output_shape):
        what = (
            f"layer {first + 1} ({wanted.layer}): expected {wanted.params} parameters, "
            f"found {mine.params}"
        )
    else:
        what = f"layer {first + 1}: expected {wanted.describe()}, found {mine.describe()}"
    raise CheckFailed(
        f"`{name}`: {what}",
        details={
            "layer_tables": {
                "model": name,
                "expected": [_row(r) for r in expected],
                "found": [_row(r) for r in found],
                "first_difference": first,
            }
        },
    )


def _row(row: LayerRow) -> dict[str, Any]:
    data = asdict(row)
    data["output_shape"] = format_shape(row.output_shape)
    return data
