"""Community grids as GeoJSON polygons, with a spatial index (shapely STRtree).

Answers "which grids does this area touch" for a CAP polygon, a CAP circle, a GB/T 2260
geocode, and a station's own coordinates. A point on a border shared by two grids
belongs to both: telling one grid too many is better than telling one too few.
Coordinates in GeoJSON are [lon, lat]; CAP's are "lat,lon" — the methods say which.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Any

import orjson
import shapely
import shapely.affinity
import shapely.errors
import shapely.validation
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from shapely.geometry import Point, Polygon, shape
from shapely.geometry.base import BaseGeometry
from shapely.strtree import STRtree

from warning.areas import area_prefix, inside
from warning.yamlfile import describe

KM_PER_DEGREE = 111.32


class GridFileError(ValueError):
    """A GeoJSON file that cannot be used as a grid registry; names the feature and field."""


class GridProperties(BaseModel):
    model_config = ConfigDict(extra="allow")
    grid_id: str = Field(pattern=r"^\d{9,15}$")
    name: str = Field(min_length=1)
    community: str | None = Field(default=None, pattern=r"^\d{9,12}$")
    township: str | None = Field(default=None, pattern=r"^\d{9}$")
    district: str | None = Field(default=None, pattern=r"^\d{6}$")
    city: str | None = Field(default=None, pattern=r"^\d{6}$")
    endpoint: str | None = None  # the grid station's webhook


@dataclass(frozen=True)
class Grid:
    id: str
    name: str
    geometry: BaseGeometry
    endpoint: str | None = None


class GridRegistry:
    def __init__(self, grids: list[Grid]) -> None:
        self.grids = grids
        self.by_id = {g.id: g for g in grids}
        self._tree = STRtree([g.geometry for g in grids]) if grids else None
        # Grid ids extend their area's code (GB/T 2260), so an area's grids are one range of
        # the sorted ids: found by bisection, not by scanning every grid for every alert.
        self._sorted = sorted(grids, key=lambda g: g.id)
        self._ids = [g.id for g in self._sorted]

    @classmethod
    def from_geojson(cls, data: bytes | str, source: str = "GeoJSON") -> GridRegistry:
        try:
            doc: Any = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise GridFileError(f"{source}: not valid JSON: {exc}") from exc
        if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
            raise GridFileError(f"{source}: expected a GeoJSON FeatureCollection")
        grids: list[Grid] = []
        seen: set[str] = set()
        for i, feature in enumerate(doc.get("features") or []):
            where = f"{source}: feature {i}"
            try:
                props = GridProperties.model_validate(feature.get("properties") or {})
            except ValidationError as exc:
                detail = describe(exc)
                raise GridFileError(f"{where}: properties: {detail}") from exc
            where = f"{where} (grid {props.grid_id})"
            if props.grid_id in seen:
                raise GridFileError(f"{where}: grid_id appears twice")
            seen.add(props.grid_id)
            for level in ("community", "township", "district", "city"):
                code = getattr(props, level)
                if code and not inside(props.grid_id, code):
                    raise GridFileError(f"{where}: {level} {code} does not contain grid {props.grid_id}")
            try:
                geometry = shape(feature.get("geometry") or {})
            except (ValueError, TypeError, AttributeError, shapely.errors.GEOSException) as exc:
                raise GridFileError(f"{where}: geometry: {exc}") from exc
            if geometry.geom_type not in ("Polygon", "MultiPolygon") or geometry.is_empty:
                raise GridFileError(f"{where}: geometry must be a Polygon or MultiPolygon")
            if not geometry.is_valid:
                raise GridFileError(f"{where}: geometry is not valid ({shapely.validation.explain_validity(geometry)})")
            grids.append(Grid(props.grid_id, props.name, geometry, props.endpoint))
        return cls(grids)

    def _query(self, geometry: BaseGeometry) -> list[Grid]:
        if self._tree is None:
            return []
        hits = self._tree.query(geometry, predicate="intersects")
        return sorted((self.grids[i] for i in hits), key=lambda g: g.id)

    def at_point(self, lat: float, lon: float) -> list[Grid]:
        """The grid(s) a point lies in — both of them when it is on their shared border."""
        return self._query(Point(lon, lat))

    def in_polygon(self, points: list[tuple[float, float]]) -> list[Grid]:
        """Grids a CAP polygon touches; ``points`` are (lat, lon) as CAP writes them."""
        return self._query(Polygon([(lon, lat) for lat, lon in points]))

    def in_circle(self, lat: float, lon: float, radius_km: float) -> list[Grid]:
        """Grids a CAP circle touches (an ellipse in degrees, true to within a few metres)."""
        dlat = radius_km / KM_PER_DEGREE
        dlon = radius_km / (KM_PER_DEGREE * max(math.cos(math.radians(lat)), 1e-6))
        circle = shapely.affinity.scale(Point(lon, lat).buffer(dlat, quad_segs=32), xfact=dlon / dlat, yfact=1.0)
        return self._query(circle)

    def in_area(self, code: str) -> list[Grid]:
        """Grids inside a GB/T 2260 area (city, district, township, community or grid)."""
        prefix = area_prefix(code)
        start = bisect.bisect_left(self._ids, prefix)
        end = bisect.bisect_left(self._ids, prefix + "\uffff", lo=start)
        return self._sorted[start:end]

    def for_alert(self, area: str, polygons: list[list[tuple[float, float]]],
                  circles: list[tuple[float, float, float]]) -> list[Grid]:
        """Every grid an alert touches: by its area code and by any CAP polygon or circle."""
        found: dict[str, Grid] = {}
        if area.isdigit():
            found.update((g.id, g) for g in self.in_area(area))
        for points in polygons:
            found.update((g.id, g) for g in self.in_polygon(points))
        for lat, lon, radius in circles:
            found.update((g.id, g) for g in self.in_circle(lat, lon, radius))
        return sorted(found.values(), key=lambda g: g.id)
