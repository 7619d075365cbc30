// Builds dist/: console.js (our script, one minified ES2019 IIFE), dashboard.js (the analytics charts, loaded only
// by that page after Chart.js), console.css (our stylesheet, as written), and
// htmx and Chart.js copied from the versions pinned in package-lock.json. dist/manifest.json maps each file to a
// short content hash, which the appliance puts in the file's URL (/console/static/<hash>/<file>) so the browser may
// cache it for a year, and its SRI digest for the integrity attribute.
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = dirname(fileURLToPath(import.meta.url));
const dist = join(root, "dist");
const packageDir = (name) => join(root, "node_modules", name);
const version = (name) => JSON.parse(readFileSync(join(packageDir(name), "package.json"), "utf8")).version;

rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });
await build({
  entryPoints: [join(root, "src", "console.ts"), join(root, "src", "dashboard.ts")],
  outdir: dist,
  bundle: true,
  minify: true,
  format: "iife",
  target: "es2019",
  platform: "browser",
  charset: "ascii",
  legalComments: "none",
  sourcemap: false,
  logLevel: "warning",
});
copyFileSync(join(root, "src", "console.css"), join(dist, "console.css"));
copyFileSync(join(packageDir("htmx.org"), "dist", "htmx.min.js"), join(dist, "htmx.min.js"));
copyFileSync(join(packageDir("chart.js"), "dist", "chart.umd.min.js"), join(dist, "chart.umd.min.js"));

const versions = { "htmx.min.js": version("htmx.org"), "chart.umd.min.js": version("chart.js") };
const files = {};
for (const name of ["console.js", "dashboard.js", "console.css", "htmx.min.js", "chart.umd.min.js"]) {
  const body = readFileSync(join(dist, name));
  files[name] = {
    hash: createHash("sha256").update(body).digest("hex").slice(0, 16),
    sha384: createHash("sha384").update(body).digest("base64"),
    bytes: body.length,
    ...(versions[name] ? { version: versions[name] } : {}),
  };
}
writeFileSync(join(dist, "manifest.json"), JSON.stringify({ files }, null, 2) + "\n");
for (const [name, info] of Object.entries(files)) {
  console.log(`dist/${name}  ${info.bytes} bytes  ${info.hash}${info.version ? `  (${info.version})` : ""}`);
}
