"""The chat widget's size and its Subresource Integrity digest, as built (this builds nothing).

    .venv/bin/python bench/widget_size.py [--json] [--file widget/dist/widget.js]

Reads widget/dist/widget.js (build it first: `npm --prefix widget ci && npm --prefix widget run build`) and prints
its raw size, its size gzipped at level 9 (what a browser fetches from a server that compresses; the widget's budget
is 20 KiB of it), and the SHA-384 SRI value for the script tag's integrity attribute. --json prints one object.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "widget" / "dist" / "widget.js"
BUDGET_GZIP_BYTES = 20 * 1024  # the same budget widget/build.mjs enforces


def measure(code: bytes) -> dict[str, object]:
    # mtime=0: the gzip header carries no timestamp, so the figure is the same on every run
    gzipped = gzip.compress(code, compresslevel=9, mtime=0)
    return {
        "bytes": len(code),
        "gzip_bytes": len(gzipped),
        "budget_gzip_bytes": BUDGET_GZIP_BYTES,
        "integrity": "sha384-" + base64.b64encode(hashlib.sha384(code).digest()).decode(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--file", type=Path, default=DEFAULT, help="the built widget (default: widget/dist/widget.js)")
    args = parser.parse_args()
    try:
        code = args.file.read_bytes()
    except FileNotFoundError:
        sys.exit(f"{args.file} is missing: build the widget first with `npm --prefix widget run build`"
                 " (after `npm --prefix widget ci`)")  # fmt: skip
    result = {"file": str(args.file), **measure(code)}
    if args.json:
        print(json.dumps(result))
        return
    print(f"{result['file']}")
    print(f"  raw        {result['bytes']:>8,} bytes")
    print(f"  gzip -9    {result['gzip_bytes']:>8,} bytes  (budget {BUDGET_GZIP_BYTES:,})")
    print(f"  integrity  {result['integrity']}")


if __name__ == "__main__":
    main()
