"""Parameter checks shared by the data-movement blocks: each raises ValueError quoting the value."""

from __future__ import annotations

from typing import Any

from amaranth.hdl import Shape, ShapeCastable

__all__ = ["check_count", "check_int", "check_pair", "check_shape", "shape_range"]


def check_int(name: str, value: Any) -> int:
    """``value`` if it is an int (not a bool), else ValueError."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int, not {value!r}")
    return value


def check_count(name: str, value: Any, minimum: int = 1) -> int:
    """``value`` if it is an int >= ``minimum``, else ValueError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, not {value!r}")
    return value


def check_pair(name: str, value: Any, length: int, minimum: int) -> tuple[int, ...]:
    """``value`` as a tuple of ``length`` ints each >= ``minimum``, else ValueError."""
    try:
        items = tuple(value)
    except TypeError:
        items = ()
    if len(items) != length or any(
        isinstance(v, bool) or not isinstance(v, int) or v < minimum for v in items
    ):
        raise ValueError(f"{name} must be {length} ints >= {minimum}, not {value!r}")
    return items


def check_shape(name: str, value: Any) -> Shape:
    """The plain :class:`Shape` of an element shape, else ValueError."""
    try:
        shape = Shape.cast(value)
    except TypeError as exc:
        raise ValueError(f"{name} {value!r} is not a shape") from exc
    if isinstance(value, ShapeCastable) and not isinstance(value, Shape):
        raise ValueError(f"{name} must be a plain signed/unsigned shape, not {value!r}")
    if shape.width < 1:
        raise ValueError(f"{name} must be at least 1 bit wide, not {value!r}")
    return shape


def shape_range(shape: Shape) -> tuple[int, int]:
    """Smallest and largest integer a plain shape holds."""
    if shape.signed:
        return -(1 << (shape.width - 1)), (1 << (shape.width - 1)) - 1
    return 0, (1 << shape.width) - 1
