import { h } from "./dom";

// Answers are markdown (the knowledge base's own passages, with citation marks [n]). This renders the part of it
// that answers use — paragraphs, headings, lists, pipe tables, bold, italics, code, links and citation marks —
// with createElement and text nodes only: nothing is ever parsed as HTML. Anything else shows as its text.

/** The href of citation mark n, or null (then the mark stays plain text). */
export type Cite = (n: number) => string | null;
/** `url` made safe (http(s) only), or null. */
export type Safe = (url: string) => string | null;

const INLINE = /(\*\*[^*]+\*\*|__[^_]+__|\*[^*\s][^*]*\*|`[^`]+`|\[[^\]]+\]\([^)\s]+\)|\[\d+\])/;
const ITEM = /^\s*([-*+]|\d+[.)])\s+/;
const HEADING = /^#{1,6}\s+/;
const ROW = /^\s*\|/;
const RULE = /^\s*\|?(\s*:?-+:?\s*\|)+\s*:?-*:?\s*\|?\s*$/;

function inline(text: string, into: HTMLElement, cite: Cite, safe: Safe): void {
  for (const part of text.split(INLINE)) {
    if (!part) continue;
    let m: RegExpExecArray | null;
    if (/^(\*\*|__)/.test(part) && part.length > 4) into.append(h("strong", {}, part.slice(2, -2)));
    else if (/^\*\S/.test(part) && part.length > 2) into.append(h("em", {}, part.slice(1, -1)));
    else if (part[0] === "`" && part.length > 2) into.append(h("code", {}, part.slice(1, -1)));
    else if ((m = /^\[(\d+)\]$/.exec(part))) {
      const href = cite(Number(m[1]));
      into.append(href ? h("sup", {}, h("a", { href, target: "_blank", rel: "noopener" }, part)) : part);
    } else if ((m = /^\[([^\]]+)\]\(([^)\s]+)\)$/.exec(part))) {
      const href = safe(m[2]);
      into.append(href ? h("a", { href, target: "_blank", rel: "noopener" }, m[1]) : m[1]);
    } else into.append(part);
  }
}

function cells(line: string): string[] {
  return line.trim().replace(/^\||\|$/g, "").split("|").map((c) => c.trim());
}

/** The rendered blocks of `text`. */
export function render(text: string, cite: Cite, safe: Safe): DocumentFragment {
  const out = document.createDocumentFragment();
  const lines = text.split("\n");
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (!line.trim()) {
      i++;
    } else if (HEADING.test(line)) {
      const p = h("p", { class: "hd" });
      inline(line.replace(HEADING, ""), p, cite, safe);
      out.append(p);
      i++;
    } else if (ITEM.test(line)) {
      const list = h(/^\s*\d/.test(line) ? "ol" : "ul");
      for (; i < lines.length && ITEM.test(lines[i]); i++) {
        const li = h("li");
        inline(lines[i].replace(ITEM, ""), li, cite, safe);
        list.append(li);
      }
      out.append(list);
    } else if (ROW.test(line)) {
      const table = h("table");
      for (let head = true; i < lines.length && ROW.test(lines[i]); i++) {
        if (RULE.test(lines[i])) continue;
        const tr = h("tr");
        for (const c of cells(lines[i])) {
          const cell = h(head ? "th" : "td");
          inline(c, cell, cite, safe);
          tr.append(cell);
        }
        table.append(tr);
        head = false;
      }
      out.append(table);
    } else {
      const p = h("p");
      const words: string[] = [];
      for (; i < lines.length && lines[i].trim() && !HEADING.test(lines[i]) && !ITEM.test(lines[i]) && !ROW.test(lines[i]); i++) words.push(lines[i].trim());
      inline(words.join(" "), p, cite, safe);
      out.append(p);
    }
  }
  return out;
}
