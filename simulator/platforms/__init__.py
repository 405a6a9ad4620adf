"""One module per simulated marketplace, mirroring chalicelib.platforms: a
module that defines `PLATFORM` is simulated. The server, the scenarios and the
demo shops take their platforms from here."""

from __future__ import annotations

from functools import cache

from chalicelib.platforms import platforms_in
from simulator.platforms.base import SimulatedPlatform


@cache
def registry() -> dict[str, SimulatedPlatform]:
    return platforms_in(__name__, __path__)
