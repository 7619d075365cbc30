import type { Stored } from "./types";

// sessionStorage only (never localStorage): the visitor session ends with the tab, and nothing but these few
// numbers and the theme is kept; message content lives in memory only. Storage can be unavailable (sandboxed
// frames, privacy modes): the widget then works for the page's lifetime.
const name = (key: string): string => "appliance-widget:" + key;

export function load(key: string): Stored | null {
  try {
    const raw = sessionStorage.getItem(name(key));
    const got = raw ? (JSON.parse(raw) as Stored) : null;
    return got && typeof got.session === "string" && typeof got.expires === "number" ? got : null;
  } catch {
    return null;
  }
}

export function save(key: string, value: Stored): void {
  try {
    sessionStorage.setItem(name(key), JSON.stringify(value));
  } catch {
    // storage full or refused: the session still works in memory
  }
}

export function drop(key: string): void {
  try {
    sessionStorage.removeItem(name(key));
  } catch {
    // nothing stored
  }
}
