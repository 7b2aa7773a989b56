"""Writes the published JSON Schemas of the deconfliction payloads to docs/schemas/.

A developer tool, not used at run time: ``python -m hotline.deconfliction.schemas
docs/schemas``. tests/deconfliction/test_schemas.py fails when the committed files
differ from :func:`hotline.deconfliction.models.json_schemas`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .models import json_schemas


def render() -> dict[str, str]:
    """File name -> text of each schema file."""
    return {
        f"{name}.json": json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
        for name, schema in sorted(json_schemas().items())
    }


def main(argv: list[str]) -> None:
    out = Path(argv[0] if argv else "docs/schemas")
    out.mkdir(parents=True, exist_ok=True)
    for name, text in render().items():
        (out / name).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
