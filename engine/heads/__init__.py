"""Model heads transformers does not ship, registered with its Auto classes so every loader finds them."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any


def export_code(model: Any, folder: Path) -> None:
    """Copy the module of a head defined here into a saved model folder and point config.json's auto_map at it.

    Plain transformers then loads the folder with trust_remote_code=True; models of transformers' own classes
    are left as they are.
    """
    module = sys.modules.get(type(model).__module__)
    if module is None or not type(model).__module__.startswith(f"{__name__}.") or not hasattr(module, "AUTO_MAP"):
        return
    shutil.copyfile(module.__file__, folder / Path(module.__file__).name)
    config_file = folder / "config.json"
    config = json.loads(config_file.read_text(encoding="utf-8"))
    config["auto_map"] = {**config.get("auto_map", {}), **module.AUTO_MAP}
    config_file.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
