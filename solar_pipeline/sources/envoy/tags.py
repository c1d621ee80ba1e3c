"""ENVOY_INVERTER_TAGS: a YAML or TOML file mapping inverter serial -> labels.

"202241095486001": {array: south, row: 1, col: 3}
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import yaml


def load_inverter_tags(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise FileNotFoundError(
            f"ENVOY_INVERTER_TAGS points at {p}, which does not exist"
        ) from None
    data = tomllib.loads(text) if p.suffix == ".toml" else yaml.safe_load(text)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"ENVOY_INVERTER_TAGS ({p}) must map inverter serials to labels")
    return {str(serial): tags for serial, tags in data.items()}
