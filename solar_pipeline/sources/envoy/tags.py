"""ENVOY_INVERTER_TAGS: a YAML or TOML file mapping inverter serial -> labels.

"202241095486001": {array: south, row: 1, col: 3}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from solar_pipeline.config_files import load_toml_settings, load_yaml_settings
from solar_pipeline.settings import InvalidSettingError


def load_inverter_tags(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    label = f"ENVOY_INVERTER_TAGS={p}"
    # Errors name the line and column, never quote it (config_files).
    data = load_toml_settings(p, label) if p.suffix == ".toml" else load_yaml_settings(p, label)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidSettingError(f"{label} must map inverter serials to labels")
    return {str(serial): tags for serial, tags in data.items()}
