"""Size limits of a deconfliction notice, checked on the raw decoded JSON before anything
expensive (schema validation, shapely, pyproj) looks at it.

Owns :class:`Limits` and :func:`check_size`: one iterative walk over the decoded
structure (an explicit stack, no recursion) that counts nodes, nesting depth and the
bytes of its compact JSON encoding, and stops at the first limit crossed. A geometry's
``coordinates`` are measured by length first (``len`` of a list is O(1)): rings per
polygon, positions per ring, vertices in all. So a 10^6-vertex polygon is refused after
a handful of steps, whatever else the notice holds.

Invariant: :func:`check_size` does work proportional to ``min(size of the input,
limits)``, never more, and raises only :class:`~hotline.errors.GeometryError` with code
``geometry_too_large`` (everything else, wrong types included, is left to the schema).
Pure: no I/O. Must not import shapely, pyproj or the models.
"""

from __future__ import annotations

from dataclasses import dataclass

from hotline.errors import GeometryError

DEFAULT_MAX_VERTICES = 10_000
DEFAULT_MAX_RINGS = 64
DEFAULT_MAX_BYTES = 1024 * 1024
#: deepest nesting a notice may have (a valid one is 7 deep: data, site, geometry,
#: coordinates, ring, position, number)
MAX_DEPTH = 12
#: nodes a notice may hold beyond its geometry's (names, windows, altitudes, text)
SLACK_NODES = 4096
CODE = "geometry_too_large"
HINT = (
    "simplify the geometry (a protection zone needs no more detail than its buffer), split "
    "it into several notices, or raise geometry_max_vertices / geometry_max_rings / "
    "notice_max_bytes"
)


@dataclass(frozen=True, slots=True)
class Limits:
    """The bounds of one notice (from Settings: geometry_max_vertices, geometry_max_rings,
    notice_max_bytes)."""

    max_vertices: int = DEFAULT_MAX_VERTICES
    max_rings: int = DEFAULT_MAX_RINGS
    max_bytes: int = DEFAULT_MAX_BYTES

    @property
    def max_nodes(self) -> int:
        """Most JSON values in a notice: each vertex is a list of up to 3 numbers."""
        return 4 * self.max_vertices + self.max_rings + SLACK_NODES


def too_large(message: str) -> GeometryError:
    """The refusal of an over-limit notice (code ``geometry_too_large``)."""
    return GeometryError(message, code=CODE, hint=HINT)


def check_coordinates(gtype: object, coords: object, limits: Limits) -> None:
    """Refuse a geometry's ``coordinates`` that hold more rings or vertices than allowed,
    looking at list lengths only (at most ``max_rings`` + 1 of them)."""
    if not isinstance(coords, list):
        return
    if gtype != "Polygon":
        if len(coords) > limits.max_vertices:
            raise too_large(
                f"geometry has {len(coords)} positions, more than the limit of "
                f"{limits.max_vertices}"
            )
        return
    if len(coords) > limits.max_rings:
        raise too_large(
            f"Polygon has {len(coords)} rings, more than the limit of {limits.max_rings}"
        )
    total = 0
    for i, ring in enumerate(coords):
        n = len(ring) if isinstance(ring, list) else 0
        if n > limits.max_vertices:
            raise too_large(
                f"Polygon ring {i} has {n} positions, more than the limit of {limits.max_vertices}"
            )
        total += n
        if total > limits.max_vertices:
            raise too_large(
                f"geometry has more than {limits.max_vertices} vertices (the limit) in its "
                f"first {i + 1} rings"
            )


def check_size(data: object, limits: Limits) -> int:
    """Refuse ``data`` (a decoded JSON notice) if it is nested too deep, holds too many
    values or vertices, or encodes to more than ``max_bytes``; return its encoded size
    (compact JSON, UTF-8; string escapes not counted)."""
    max_nodes = limits.max_nodes
    nodes = 0
    size = 0
    stack: list[tuple[object, int]] = [(data, 1)]
    while stack:
        obj, depth = stack.pop()
        nodes += 1
        if depth > MAX_DEPTH:
            raise too_large(f"notice is nested deeper than {MAX_DEPTH} levels")
        if isinstance(obj, dict):
            n = len(obj)
            if nodes + n > max_nodes:
                raise too_large(f"notice holds more than {max_nodes} values")
            if "coordinates" in obj:
                check_coordinates(obj.get("type"), obj["coordinates"], limits)
            size += 2 + max(n - 1, 0) + n  # braces, commas, colons
            for key, value in obj.items():
                size += _scalar_size(key, limits.max_bytes)
                stack.append((value, depth + 1))
        elif isinstance(obj, list | tuple):
            n = len(obj)
            if nodes + n > max_nodes:
                raise too_large(f"notice holds more than {max_nodes} values")
            size += 2 + max(n - 1, 0)
            stack.extend((item, depth + 1) for item in obj)
        else:
            size += _scalar_size(obj, limits.max_bytes)
        if size > limits.max_bytes:
            raise too_large(f"notice is larger than {limits.max_bytes} bytes")
    return size


def _scalar_size(v: object, max_bytes: int) -> int:
    if isinstance(v, str):
        if len(v) > max_bytes or v.isascii():
            return 2 + len(v)
        return 2 + len(v.encode("utf-8", "surrogatepass"))
    if v is None or v is True:
        return 4
    if v is False:
        return 5
    if isinstance(v, int):
        return v.bit_length() * 30103 // 100000 + 2  # decimal digits, without str()
    if isinstance(v, float):
        return len(repr(v))
    return 8  # not JSON: the schema refuses it
