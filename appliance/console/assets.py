"""The console's browser assets, as built by console/build.mjs into console/dist: our script and stylesheet, htmx and
Chart.js. Each is served at /console/static/<content hash>/<name>, so a URL never changes meaning and the browser
may keep it for a year; a new build gives new URLs. Nothing is fetched from outside the box."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path

from appliance.errors import NotFound

DIST = Path(__file__).resolve().parents[2] / "console" / "dist"
PREFIX = "/console/static"
BUILD_HINT = "run `npm --prefix console ci && npm --prefix console run build` (installer/setup.sh does)"
MEDIA_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


@dataclass(frozen=True)
class Asset:
    name: str
    hash: str
    sri: str  # "sha384-…", for the integrity attribute

    @property
    def url(self) -> str:
        return f"{PREFIX}/{self.hash}/{self.name}"


class Assets:
    """The manifest of one build, read again when the file changes (a rebuild while the server runs)."""

    def __init__(self, dist: Path = DIST) -> None:
        self.dist = dist
        self._lock = threading.Lock()
        self._stamp: float | None = None
        self._assets: dict[str, Asset] = {}

    def _load(self) -> dict[str, Asset]:
        manifest = self.dist / "manifest.json"
        try:
            stamp = manifest.stat().st_mtime
        except FileNotFoundError:
            return {}
        with self._lock:
            if stamp != self._stamp:
                files = json.loads(manifest.read_text("utf-8"))["files"]
                self._assets = {name: Asset(name, info["hash"], f"sha384-{info['sha384']}")
                                for name, info in files.items()}  # fmt: skip
                self._stamp = stamp
            return self._assets

    def get(self, name: str) -> Asset | None:
        """The built asset, or None when the console was not built (pages still work, unstyled and not live)."""
        return self._load().get(name)

    def read(self, content_hash: str, name: str) -> tuple[bytes, str]:
        """The file's bytes and media type, when `content_hash` is this build's hash of it."""
        asset = self._load().get(name)
        if asset is None:
            raise NotFound(f"no console asset {name!r}: {BUILD_HINT}")
        if asset.hash != content_hash:
            raise NotFound(f"{name} has changed since this page was loaded; reload the page")
        return (self.dist / name).read_bytes(), MEDIA_TYPES.get(Path(name).suffix, "application/octet-stream")
