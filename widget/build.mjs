// Builds dist/widget.js (one minified ES2019 IIFE) and dist/widget.json, which carries what the appliance serves
// it with: the SRI digest for the integrity attribute, and the sizes. Fails when the widget outgrows its budget.
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { build } from "esbuild";

const root = dirname(fileURLToPath(import.meta.url));
const dist = join(root, "dist");
const out = join(dist, "widget.js");
const BUDGET_GZIP_BYTES = 20 * 1024; // the whole widget, gzipped: intranet pages load it on every view

mkdirSync(dist, { recursive: true });
await build({
  entryPoints: [join(root, "src", "main.ts")],
  outfile: out,
  bundle: true,
  minify: true,
  format: "iife",
  target: "es2019",
  platform: "browser",
  charset: "ascii", // \u escapes: the file reads the same whatever charset the host page's server declares
  legalComments: "none",
  sourcemap: false,
  logLevel: "warning",
});

const code = readFileSync(out);
const info = {
  file: "widget.js",
  sha384: createHash("sha384").update(code).digest("base64"),
  bytes: code.length,
  gzip_bytes: gzipSync(code, { level: 9 }).length,
};
writeFileSync(join(dist, "widget.json"), JSON.stringify(info, null, 2) + "\n");
console.log(`dist/widget.js  ${info.bytes} bytes, ${info.gzip_bytes} gzipped (budget ${BUDGET_GZIP_BYTES})`);
console.log(`integrity="sha384-${info.sha384}"`);
if (info.gzip_bytes > BUDGET_GZIP_BYTES) {
  console.error(`widget.js is over its size budget: ${info.gzip_bytes} > ${BUDGET_GZIP_BYTES} bytes gzipped`);
  process.exit(1);
}
