import { banner } from "./alerts";
import { csrfToken, h, safeUrl, shortTime } from "./dom";
import { refresh } from "./refresh";
import type { ConsoleSocket } from "./socket";
import type { Frame, Message, Note } from "./types";

const TYPING_EVERY_MS = 2500;
const TYPING_SHOWN_MS = 4000;
const AUTHORS: Record<string, string> = { customer: "Customer", ai: "Assistant" };

function capitalised(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** A message as the server's template renders it (templates/_message.html). */
function messageItem(m: Message): HTMLLIElement {
  const meta = h("p", { class: "message-meta" },
    h("span", { class: "message-author" }, m.role === "agent" ? m.agent || "Agent" : AUTHORS[m.role] || m.role), " ",
    h("time", { datetime: m.created_at }, shortTime(m.created_at)));
  if (m.role === "customer" && m.sentiment_label) {
    const score = m.sentiment == null ? "" : ` (${Math.round(m.sentiment)})`;
    const label = capitalised(m.sentiment_label) + score;
    meta.append(" ", h("span", { class: `sentiment sentiment-${m.sentiment_label}` }, label));
  }
  const item = h("li", { class: `message message-${m.role}`, "data-message-id": m.id }, meta,
    h("p", { class: "message-text" }, m.content));
  if (m.role === "ai" && m.confidence != null) {
    item.append(h("p", { class: "message-confidence" }, `Confidence ${m.confidence}/100 · ${m.outcome || ""}`));
  }
  if (m.role === "ai" && m.sources.length) {
    const list = h("ol", { class: "sources", "aria-label": "Sources" });
    for (const s of m.sources) {
      const href = safeUrl(s.url);
      list.append(h("li", {}, href ? h("a", { href }, s.title) : s.title));
    }
    item.append(list);
  }
  return item;
}

function noteItem(n: Note): HTMLLIElement {
  return h("li", { class: "note", "data-note-id": n.id },
    h("p", { class: "message-meta" }, h("span", { class: "message-author" }, n.author), " ",
      h("time", { datetime: n.created_at }, shortTime(n.created_at))),
    h("p", { class: "message-text" }, n.body));
}

/**
 * The conversation view: watches the conversation over the hub and appends new messages and notes as they come,
 * refreshes the status and actions (htmx) when they change, shows the customer typing, and tells the customer's
 * widget when the agent types. Messages that arrive here are marked read (the inbox's unread counts).
 */
export class ConversationView {
  private lastTyping = 0;
  private typingTimer = 0;
  private readTimer = 0;
  private readUpTo = 0;

  constructor(private socket: ConsoleSocket, private id: number) {
    const reply = document.getElementById("reply-text") as HTMLTextAreaElement | null;
    reply?.addEventListener("input", () => this.typing());
    document.querySelectorAll<HTMLElement>("[data-fill-target]").forEach((link) => {
      link.addEventListener("click", (event) => {
        const target = document.getElementById(link.dataset.fillTarget || "") as HTMLTextAreaElement | null;
        const source = document.getElementById(link.dataset.fillFrom || "");
        if (!target || !source) return;
        event.preventDefault();
        target.value = source.textContent || "";
        target.focus();
      });
    });
  }

  opened(reconnected: boolean): void {
    this.socket.send({ type: "watch", conversation_id: this.id });
    if (!reconnected) return;
    refresh();
    // Frames sent while the socket was down are not replayed: the person reloads (an audited read of the
    // transcript) when it suits them, so a half-typed reply is not lost.
    banner("The live connection was lost for a while: messages that arrived meanwhile show after a reload.", {
      href: location.pathname + location.search,
      label: "Reload the conversation",
    });
  }

  frame(frame: Frame): void {
    switch (frame.type) {
      case "message":
        if (frame.message.conversation_id === this.id) this.append(frame.message);
        break;
      case "status":
      case "agent_joined":
      case "agent_left":
        if (frame.conversation_id === this.id) refresh();
        break;
      case "typing":
        if (frame.conversation_id === this.id && frame.role === "customer") this.showTyping();
        break;
      case "note":
        if (frame.note.conversation_id === this.id) this.appendNote(frame.note);
        break;
    }
  }

  private append(m: Message): void {
    const list = document.getElementById("transcript");
    if (!list || list.querySelector(`[data-message-id="${m.id}"]`)) return;
    list.append(messageItem(m));
    document.getElementById("typing")?.setAttribute("hidden", "");
    this.markRead(m.id); // it is on the screen: it no longer counts as unread in the inbox
  }

  private appendNote(n: Note): void {
    const list = document.getElementById("notes");
    if (!list || list.querySelector(`[data-note-id="${n.id}"]`)) return;
    document.getElementById("no-notes")?.remove();
    list.append(noteItem(n));
  }

  private showTyping(): void {
    const typing = document.getElementById("typing");
    if (!typing) return;
    typing.hidden = false;
    clearTimeout(this.typingTimer);
    this.typingTimer = window.setTimeout(() => (typing.hidden = true), TYPING_SHOWN_MS);
  }

  private typing(): void {
    const now = Date.now();
    if (now - this.lastTyping < TYPING_EVERY_MS) return;
    this.lastTyping = now;
    this.socket.send({ type: "typing", conversation_id: this.id });
  }

  private markRead(messageId: number): void {
    this.readUpTo = Math.max(this.readUpTo, messageId);
    clearTimeout(this.readTimer);
    this.readTimer = window.setTimeout(() => {
      fetch(`/console/conversations/${this.id}/read`, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/x-www-form-urlencoded", "X-CSRF-Token": csrfToken() },
        body: `message_id=${this.readUpTo}`,
      }).catch(() => undefined);
    }, 500);
  }
}
