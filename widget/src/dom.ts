// Elements are built with createElement and text nodes only: nothing the server or the visitor sends is ever
// parsed as HTML.
type Attrs = Record<string, string | number | boolean | null | undefined>;
type Child = Node | string | null | undefined | false;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const name in attrs) {
    const value = attrs[name];
    if (value != null && value !== false) el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) if (child) el.append(child);
  return el;
}

/** `url` made absolute against the appliance; null unless it is http(s) (no javascript: or data: links). */
export function safeUrl(url: string | undefined, origin: string): string | null {
  if (!url) return null;
  try {
    const u = new URL(url, origin);
    return u.protocol === "https:" || u.protocol === "http:" ? u.href : null;
  } catch {
    return null;
  }
}
