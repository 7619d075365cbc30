import { h, safeUrl } from "./dom";
import { render } from "./markdown";
import { S, fmt } from "./strings";
import { css } from "./styles";
import type { Message, Theme } from "./types";

export interface Actions {
  opened(): void;
  send(text: string): void;
  human(): void;
  typing(): void;
  feedback(messageId: number, value: "up" | "down"): Promise<boolean>;
  rate(rating: number, comment: string): Promise<boolean>;
}

/** Confidence in words and number: "High confidence (92)". The bands sit around the default answer threshold (85). */
export function confidence(value: number): string {
  const level = value >= 85 ? S.high : value >= 60 ? S.medium : S.low;
  return fmt(S.confidence, { level, n: Math.round(value) });
}

function adopt(root: ShadowRoot, text: string): void {
  // A constructed stylesheet is not inline style: a host page's CSP needs no style-src 'unsafe-inline' for it. The
  // <style> element is for older browsers only (it does need 'unsafe-inline' under a strict style-src).
  try {
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(text);
    root.adoptedStyleSheets = [sheet];
  } catch {
    root.append(h("style", {}, text));
  }
}

/**
 * The widget's DOM, in an open shadow root on a host element of its own. Key elements carry `data-part` names
 * that tests and the appliance's docs rely on: launcher, panel, status, log, message (data-role, data-id,
 * data-pending), confidence, sources, thumbs-up, thumbs-down, human-offer, notice, typing, csat, human, input, send.
 */
// Drawn, not emoji: an intranet kiosk may have no emoji font.
const THUMB_UP = "M7 10v12M15 5.9 14 10h5.8a2 2 0 0 1 1.9 2.6l-2.3 8A2 2 0 0 1 17.5 22H4a2 2 0 0 1-2-2v-8a2 2 0 0 1 2-2h2.8a2 2 0 0 0 1.8-1.1L12 2a3.1 3.1 0 0 1 3 3.9Z";
const THUMB_DOWN = "M17 14V2M9 18.1 10 14H4.2a2 2 0 0 1-1.9-2.6l2.3-8A2 2 0 0 1 6.5 2H20a2 2 0 0 1 2 2v8a2 2 0 0 1-2 2h-2.8a2 2 0 0 0-1.8 1.1L12 22a3.1 3.1 0 0 1-3-3.9Z";

function icon(d: string): SVGSVGElement {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  const path = document.createElementNS(ns, "path");
  for (const [k, v] of Object.entries({ viewBox: "0 0 24 24", width: "16", height: "16", fill: "none", stroke: "currentColor", "stroke-width": "2", "stroke-linecap": "round", "stroke-linejoin": "round", "aria-hidden": "true" })) svg.setAttribute(k, v);
  path.setAttribute("d", d);
  svg.append(path);
  return svg;
}

export class View {
  readonly log: HTMLDivElement;
  readonly input: HTMLTextAreaElement;
  private launcher: HTMLButtonElement;
  private panel: HTMLElement;
  private statusLine: HTMLDivElement;
  private typingLine: HTMLDivElement;
  private unread: HTMLSpanElement;
  private launcherText: string;
  private typingTimer = 0;

  constructor(theme: Theme, private origin: string, private act: Actions) {
    const host = h("div", { "data-appliance-widget": "" });
    const root = host.attachShadow({ mode: "open" });
    adopt(root, css(theme));
    const logo = safeUrl(theme.logo_url, origin);
    this.statusLine = h("div", { class: "st", role: "status", "data-part": "status" });
    this.log = h("div", { class: "log", role: "log", "aria-live": "polite", "aria-label": S.log, tabindex: 0, "data-part": "log" },
      h("p", { class: "m", "data-part": "greeting" }, theme.greeting || S.greeting));
    this.typingLine = h("div", { class: "typing", "data-part": "typing", hidden: true });
    this.input = h("textarea", { id: "aw-input", rows: 1, "aria-label": S.input, placeholder: S.placeholder, "data-part": "input" });
    const close = h("button", { type: "button", class: "x", "aria-label": S.close }, "\u00d7");
    const human = h("button", { type: "button", "data-part": "human" }, S.human);
    const form = h("form", { class: "row" }, this.input, h("button", { type: "submit", class: "p", "data-part": "send" }, S.send));
    this.panel = h("section", { id: "aw-panel", class: "panel", role: "dialog", "aria-modal": "false", "aria-labelledby": "aw-title", hidden: true, "data-part": "panel" },
      h("div", { class: "head" }, logo && h("img", { src: logo, alt: "" }), h("h2", { id: "aw-title" }, theme.title || S.title), close),
      this.statusLine, this.log, this.typingLine,
      h("div", { class: "foot" }, human, form));
    this.unread = h("span", { class: "dot", "data-part": "unread", "aria-hidden": "true", hidden: true });
    this.launcherText = theme.launcher_text || S.launcher;
    this.launcher = h("button", { type: "button", class: "launch p", "aria-expanded": "false", "aria-controls": "aw-panel", "data-part": "launcher" },
      this.launcherText);
    root.append(h("div", { class: theme.position === "bottom-left" ? "w l" : "w" }, this.panel, h("span", { class: "lw" }, this.launcher, this.unread)));

    this.launcher.addEventListener("click", () => this.show(!this.open));
    close.addEventListener("click", () => this.show(false));
    this.panel.addEventListener("keydown", (e) => {
      if (e.key === "Escape") this.show(false);
    });
    human.addEventListener("click", () => act.human());
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const text = this.input.value.trim();
      if (!text) return;
      this.input.value = "";
      act.send(text);
    });
    this.input.addEventListener("keydown", (e) => {
      // Enter sends, Shift+Enter is a new line; not while an input method is composing a character.
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event("submit", { cancelable: true }));
      }
    });
    this.input.addEventListener("input", () => act.typing());
    document.body.append(host);
  }

  get open(): boolean {
    return !this.panel.hidden;
  }

  show(open: boolean): void {
    this.panel.hidden = !open;
    this.launcher.setAttribute("aria-expanded", String(open));
    if (open) {
      this.unread.hidden = true;
      this.launcher.removeAttribute("aria-label");
      this.scroll();
      this.input.focus();
      this.act.opened();
    } else this.launcher.focus();
  }

  status(text: string): void {
    if (this.statusLine.textContent !== text) this.statusLine.textContent = text;
  }

  markUnread(): void {
    if (this.open) return;
    this.unread.hidden = false;
    this.launcher.setAttribute("aria-label", this.launcherText + " " + S.newMessages);
  }

  /** "Typing…" for a while (or until cleared with null). */
  typing(text: string | null, ms = 6000): void {
    clearTimeout(this.typingTimer);
    this.typingLine.textContent = text || "";
    this.typingLine.hidden = !text;
    if (text) this.typingTimer = window.setTimeout(() => this.typing(null), ms);
  }

  /** Puts a message in id order: before the first message with a larger id, or before the pending ones. */
  place(el: HTMLElement, id: number): void {
    let before: Element | null = null;
    for (const child of Array.from(this.log.children)) {
      const other = child.getAttribute("data-id");
      if (other ? Number(other) > id : child.getAttribute("data-pending") === "true") {
        before = child;
        break;
      }
    }
    this.log.insertBefore(el, before);
    this.scroll();
  }

  /** The stored answer in place of the bubble its stream grew in. */
  replace(draft: HTMLElement, el: HTMLElement): void {
    draft.replaceWith(el);
    this.scroll();
  }

  append(el: HTMLElement): void {
    this.log.append(el);
    this.scroll();
  }

  private scroll(): void {
    this.log.scrollTop = this.log.scrollHeight;
  }

  /** A system line (agent joined, errors, the service's notices). The same text twice in a row is shown once. */
  notice(text: string, id?: number): HTMLElement | null {
    const last = this.log.lastElementChild;
    if (id === undefined && last && last.getAttribute("data-part") === "notice" && last.textContent === text) return null;
    const el = h("p", { class: "note", "data-part": "notice", "data-id": id }, text);
    if (id === undefined) this.append(el);
    return el;
  }

  /** A customer message that the appliance has not acknowledged yet. */
  pending(text: string): HTMLElement {
    const el = this.bubble("customer", S.you, text);
    el.setAttribute("data-pending", "true");
    el.append(h("p", { class: "meta" }, S.sending));
    this.append(el);
    return el;
  }

  sent(el: HTMLElement, id: number): void {
    el.setAttribute("data-id", String(id));
    el.setAttribute("data-pending", "false");
    el.querySelector(".meta")?.remove();
  }

  /** The customer's message as the appliance stored it (masked where it held a card number or an identifier). */
  stored(el: HTMLElement, text: string): void {
    const tx = el.querySelector(".tx");
    if (tx && tx.textContent !== text) tx.textContent = text;
  }

  failed(el: HTMLElement): void {
    el.setAttribute("data-pending", "false");
    el.setAttribute("data-failed", "true");
    const meta = el.querySelector(".meta");
    if (meta) meta.textContent = S.notSent;
  }

  /** The bubble a streamed answer grows in, until the stored answer replaces it. */
  draft(): HTMLElement {
    const el = this.bubble("ai", S.assistant, "");
    el.setAttribute("data-provisional", "true");
    el.setAttribute("aria-busy", "true"); // screen readers hear the finished answer, not every fragment
    this.append(el);
    return el;
  }

  grow(el: HTMLElement, text: string): void {
    el.querySelector(".tx")?.append(text);
    this.scroll();
  }

  message(m: Message): HTMLElement {
    if (m.role === "ai" && m.outcome === "notice") return this.notice(m.content, m.id) as HTMLElement;
    const who = m.role === "customer" ? S.you : m.role === "agent" ? m.agent || S.agent : S.assistant;
    // The customer's own words stay as typed; the assistant's and the agents' (often from an article) are markdown.
    const el = this.bubble(m.role, who, m.role === "customer" ? m.content : "");
    el.setAttribute("data-id", String(m.id));
    if (m.role === "customer") return el;
    const urls = (m.sources || []).map((s) => safeUrl(s.url, this.origin));
    const tx = el.querySelector(".tx") as HTMLElement;
    tx.className = "tx md";
    tx.append(render(m.content, (n) => urls[n - 1] || null, (url) => safeUrl(url, this.origin)));
    if (m.role !== "ai") return el;
    if (m.outcome === "refused") {
      // the refusal's own text already leads into the list ("These articles may help:"): no second heading
      this.links(el, m.suggestions, "suggestions", S.suggestions, false);
      const offer = h("button", { type: "button", "data-part": "human-offer" }, S.human);
      offer.addEventListener("click", () => this.act.human());
      el.append(h("p", { class: "meta" }, S.refused), offer);
    } else if (m.outcome === "urgent") {
      el.setAttribute("data-urgent", "true");
      this.sources(el, m);
    } else if (m.outcome === "answered") {
      if (typeof m.confidence === "number") el.append(h("p", { class: "meta", "data-part": "confidence" }, confidence(m.confidence)));
      this.sources(el, m);
      this.thumbs(el, m);
    }
    return el;
  }

  private bubble(role: string, who: string, text: string): HTMLElement {
    return h("div", { class: "m " + role, "data-part": "message", "data-role": role, "data-pending": "false" },
      h("span", { class: role === "customer" ? "vh" : "who" }, who), h("div", { class: "tx", "data-part": "text" }, text));
  }

  private sources(el: HTMLElement, m: Message): void {
    this.links(el, m.sources, "sources", S.sources);
  }

  /** Article links under a message: its sources, or a refusal's suggestions. Several passages of one article: one link. */
  private links(el: HTMLElement, items: Message["sources"] | undefined, part: string, label: string,
    heading = true): void {
    const list = h("ul", { class: "src", "data-part": part, "aria-label": label });
    const seen = new Set<string>();
    for (const s of items || []) {
      const href = safeUrl(s.url, this.origin);
      if (!href || seen.has(href)) continue; // several passages of one article: one link
      seen.add(href);
      list.append(h("li", {}, h("a", { href, target: "_blank", rel: "noopener" }, s.title || href)));
    }
    if (!seen.size) return;
    if (heading) el.append(h("p", { class: "meta", "aria-hidden": "true" }, label));
    el.append(list);
  }

  private thumbs(el: HTMLElement, m: Message): void {
    const up = h("button", { type: "button", "data-part": "thumbs-up", "aria-label": S.helpful }, icon(THUMB_UP));
    const down = h("button", { type: "button", "data-part": "thumbs-down", "aria-label": S.notHelpful }, icon(THUMB_DOWN));
    const press = (value: string | null) => {
      up.setAttribute("aria-pressed", String(value === "up"));
      down.setAttribute("aria-pressed", String(value === "down"));
    };
    let current: string | null = m.feedback;
    press(current);
    const choose = (value: "up" | "down") => {
      if (value === current) return;
      const before = current;
      press((current = value)); // at once; put back if the appliance refuses it
      this.act.feedback(m.id, value).then((ok) => {
        if (!ok) press((current = before));
      });
    };
    up.addEventListener("click", () => choose("up"));
    down.addEventListener("click", () => choose("down"));
    el.append(h("div", { class: "fb" }, up, down));
  }

  /** The satisfaction question: 1 to 5 and an optional comment, sent once. */
  csat(): void {
    let rating = 0;
    const stars = h("div", { class: "stars" });
    const buttons: HTMLButtonElement[] = [];
    for (let n = 1; n <= 5; n++) {
      const b = h("button", { type: "button", "aria-pressed": "false", "aria-label": fmt(S.csatRate, { n }), "data-rating": n }, String(n));
      b.addEventListener("click", () => {
        rating = n;
        buttons.forEach((other, i) => other.setAttribute("aria-pressed", String(i + 1 === n)));
      });
      buttons.push(b);
      stars.append(b);
    }
    const comment = h("textarea", { rows: 2, maxlength: 2000, "aria-label": S.csatComment, placeholder: S.csatComment });
    const submit = h("button", { type: "submit", class: "p" }, S.csatSend);
    const form = h("form", { "data-part": "csat" }, h("fieldset", { class: "csat" }, h("legend", {}, S.csat), stars, comment, submit));
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      if (!rating) {
        buttons[0].focus();
        return;
      }
      submit.disabled = true;
      this.act.rate(rating, comment.value.trim()).then((ok) => {
        if (ok) form.replaceWith(h("p", { class: "note", "data-part": "csat" }, S.csatThanks));
        else submit.disabled = false;
      });
    });
    this.append(form);
  }
}
