import { post, statusOf } from "./api";
import { Socket } from "./socket";
import { drop, load, save } from "./store";
import { S, fmt } from "./strings";
import type { Frame, Identity, Message, SessionReply, State, Stored, Theme } from "./types";
import { View } from "./view";

const CLOSED = ["resolved", "closed"]; // a new message starts a new conversation; CSAT may be given
const EXPIRY_MARGIN_MS = 60000; // a session this close to its end is not reused
const TYPING_EVERY_MS = 3000;
const ANSWER_WAIT_MS = 30000; // "Typing…" while the assistant prepares an answer, at most this long

export interface Config {
  key: string;
  origin: string; // the appliance's, from the script's src
  identity: Identity | null;
}

interface Pending {
  clientId: string;
  text: string;
  el: HTMLElement;
  generation: number; // the connection it was last sent on (-1: not yet)
  to: number | null; // the conversation it was last sent to
}

function clientId(): string {
  const c = window.crypto;
  if (c && typeof c.randomUUID === "function") return c.randomUUID(); // secure contexts only
  const bytes = new Uint8Array(16);
  if (c && c.getRandomValues) c.getRandomValues(bytes);
  else for (let i = 0; i < 16; i++) bytes[i] = (Math.random() * 256) | 0;
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The widget's state and its conversation with the appliance.
 *
 * Nothing acknowledged is lost and nothing is sent twice: a message stays pending (shown so) until its `ack`;
 * on every accepted connection the widget sends `resume` with the last message id it has seen, then resends each
 * pending message with its original client_id, which the appliance recognises (same id, `duplicate: true`).
 * Messages are shown once each, by id; the customer's own echo is matched to its pending bubble by client_id.
 */
export class Widget {
  private view!: View;
  private socket: Socket;
  private stored: Stored | null;
  private starting: Promise<Stored | null> | null = null;
  private conversation: number | null = null;
  private state: State | null = null;
  private seen = 0; // the highest message id shown
  private seenBefore = 0; // the same, as the previous page of this tab left it (for the unread mark)
  private byId = new Map<number, HTMLElement>();
  private byClientId = new Map<string, HTMLElement>();
  private pending: Pending[] = [];
  private drafts = new Map<number, HTMLElement>(); // streamed answers, by the message they answer
  private rated = new Set<number>(); // conversations rated, or asked for a rating, in this page
  private resuming = false;
  private typingSent = 0;

  constructor(private config: Config) {
    const stored = load(config.key);
    this.stored = stored && stored.expires * 1000 > Date.now() + EXPIRY_MARGIN_MS ? stored : null;
    if (stored && !this.stored) drop(config.key);
    this.socket = new Socket(config.origin.replace(/^http/, "ws") + "/ws/widget", () => this.stored && this.stored.session, {
      ready: () => this.connected(),
      frame: (f) => this.frame(f),
      change: () => this.line(),
      denied: () => this.denied(),
    });
  }

  /** Shows the launcher: with the tab's stored theme, or the one a new session brings (the defaults if none). */
  async start(): Promise<void> {
    const stored = this.stored || (await this.session());
    this.render(stored ? stored.theme : {});
    if (this.stored && this.stored.conversation_id) {
      // A conversation from an earlier page of this tab: connect now, so that its history and any answer that
      // arrived meanwhile are there when the panel opens.
      this.conversation = this.stored.conversation_id;
      this.seenBefore = this.stored.last_seen_id || 0;
      this.socket.start();
    }
  }

  private render(theme: Theme): void {
    this.view = new View(theme, this.config.origin, {
      opened: () => this.connect(),
      send: (text) => this.send(text),
      human: () => this.human(),
      typing: () => this.typing(),
      feedback: (id, value) => this.rest(`/api/chat/messages/${id}/feedback`, { value }).then(Boolean),
      rate: (rating, comment) => this.rate(rating, comment),
    });
  }

  // -- the visitor session --------------------------------------------------------------------------------

  /** The stored session while it is valid, else a new one (null when the appliance refuses or cannot be reached). */
  private session(): Promise<Stored | null> {
    if (this.stored && this.stored.expires * 1000 > Date.now() + EXPIRY_MARGIN_MS) return Promise.resolve(this.stored);
    if (!this.starting) {
      const body = this.config.identity ? { key: this.config.key, identity: this.config.identity } : { key: this.config.key };
      this.starting = post<SessionReply>(this.config.origin, "/api/widget/session", null, body)
        .then((r) => {
          // A new session is a new visitor: an earlier conversation belongs to the old one.
          this.conversation = null;
          this.state = null;
          this.stored = { session: r.session, expires: r.expires, conversation_id: null, last_seen_id: 0, theme: r.theme || {} };
          this.persist();
          return this.stored;
        }, () => null)
        .finally(() => (this.starting = null));
    }
    return this.starting;
  }

  private persist(): void {
    if (!this.stored) return;
    this.stored.conversation_id = this.conversation;
    this.stored.last_seen_id = this.seen;
    save(this.config.key, this.stored);
  }

  /** 401, on the socket or a REST call: the session is gone (expired, key revoked). The next send starts anew. */
  private denied(): void {
    drop(this.config.key);
    this.stored = null;
    this.conversation = null;
    this.state = null;
    for (const p of this.pending.splice(0)) this.unsent(p);
    this.view.notice(S.sessionEnded);
    this.line();
  }

  private connect(): void {
    this.session().then((stored) => {
      if (stored) this.socket.start();
      else {
        for (const p of this.pending.splice(0)) this.unsent(p);
        this.view.notice(S.unavailable);
      }
    });
  }

  // -- sending ----------------------------------------------------------------------------------------------

  /** The conversation a new message goes to: none (a new one) once the current one is resolved or closed. */
  private target(): number | null {
    return this.state && CLOSED.indexOf(this.state.status) >= 0 ? null : this.conversation;
  }

  private send(text: string): void {
    const p: Pending = { clientId: clientId(), text, el: this.view.pending(text), generation: -1, to: null };
    this.byClientId.set(p.clientId, p.el);
    this.pending.push(p);
    if (this.socket.ready) this.flush();
    else this.connect(); // flushes when ready
  }

  /** Sends each pending message not yet sent on this connection. Without a conversation, only the first goes
   * until its ack names the conversation: two messages sent at once would otherwise open two conversations. */
  private flush(): void {
    const generation = this.socket.generation;
    for (const p of this.pending) {
      if (p.generation === generation) continue;
      const conversation = this.target();
      if (conversation === null && this.pending.some((q) => q.generation === generation)) return;
      if (!this.socket.send({ type: "message", client_id: p.clientId, text: p.text, conversation_id: conversation })) return;
      p.generation = generation;
      p.to = conversation;
    }
  }

  private unsent(p: Pending): void {
    this.view.failed(p.el);
    if (!this.view.input.value) this.view.input.value = p.text; // so that it can be sent again
  }

  private typing(): void {
    const now = Date.now();
    if (this.target() !== null && now - this.typingSent > TYPING_EVERY_MS) {
      this.typingSent = now;
      this.socket.send({ type: "typing", conversation_id: this.conversation });
    }
  }

  private human(): void {
    const conversation = this.target();
    if (conversation === null) {
      this.send(S.humanText); // the appliance escalates a request for a person in words too
      return;
    }
    const was = this.state && this.state.status;
    this.rest<State>(`/api/chat/conversations/${conversation}/human`).then((state) => {
      if (!state) return;
      this.apply(state, false);
      // Already waiting: the click gets an answer (a new escalation gets the appliance's notice of who is coming).
      if (was === "escalated" && state.handled_by !== "agent" && state.status === "escalated") this.view.notice(S.escalated);
    });
  }

  private rate(rating: number, comment: string): Promise<boolean> {
    const conversation = this.conversation;
    return this.rest(`/api/conversations/${conversation}/csat`, { rating, comment }, 409).then(Boolean);
  }

  /** A REST call with the visitor session; null (and a polite notice) when it fails. `fine` is a status that
   * counts as done (409 for a rating already given). */
  private async rest<T = object>(path: string, body?: object, fine?: number): Promise<T | null> {
    const stored = this.stored;
    if (!stored) return null;
    try {
      return await post<T>(this.config.origin, path, stored.session, body);
    } catch (e) {
      const status = statusOf(e);
      if (status === fine) return {} as T;
      if (status === 401) this.denied();
      else this.view.notice(status === 429 ? S.slowDown : S.failed);
      return null;
    }
  }

  // -- receiving --------------------------------------------------------------------------------------------

  private connected(): void {
    this.drafts.forEach((el) => el.remove()); // the stored answers come with the history
    this.drafts.clear();
    if (this.conversation !== null) this.resume();
    this.flush();
  }

  /** Asks for the conversation's messages after the last one shown (and its state). */
  private resume(): void {
    this.resuming = true;
    this.socket.send({ type: "resume", conversation_id: this.conversation, after: this.seen });
  }

  private frame(f: Frame): void {
    switch (f.type) {
      case "ack": {
        this.pending = this.pending.filter((p) => p.clientId !== f.client_id);
        if (f.conversation_id !== this.conversation) {
          this.conversation = f.conversation_id;
          this.state = { conversation_id: f.conversation_id, status: "active", handled_by: "ai", agent: null };
          this.persist();
        }
        const el = this.byClientId.get(f.client_id);
        if (el && !el.hasAttribute("data-id")) this.bind(el, f.message_id);
        // The bubble shows what was stored: a card number or an identifier the customer typed, masked.
        if (el && typeof f.text === "string") this.view.stored(el, f.text);
        // A resent message that was stored before its ack was lost: its reply went to the lost connection, and
        // without a conversation to resume on reconnecting, nothing else brings it.
        if (f.duplicate && f.reply_id != null && !this.byId.has(f.reply_id)) this.resume();
        // "Typing…" only when the assistant will look at the message; a `no_reply`, a reply, a notice or a status
        // frame clears it (and ANSWER_WAIT_MS at the latest).
        if (!f.duplicate && f.answer !== false && this.state && this.state.handled_by === "ai") this.view.typing(S.typing, ANSWER_WAIT_MS);
        this.flush();
        break;
      }
      case "message":
        this.message(f.message, true);
        break;
      case "history":
        this.resuming = false;
        for (const m of f.messages) this.message(m, false);
        if (f.conversation_id === this.conversation) this.apply(f, true);
        break;
      case "status":
        this.view.typing(null);
        if (f.conversation_id === this.conversation) this.apply(f, false);
        break;
      case "no_reply": {
        this.view.typing(null); // no answer is coming for that message
        const draft = this.drafts.get(f.reply_to);
        if (draft) draft.remove();
        this.drafts.delete(f.reply_to);
        break;
      }
      case "delta": {
        this.view.typing(null);
        let el = this.drafts.get(f.reply_to);
        if (!el) this.drafts.set(f.reply_to, (el = this.view.draft()));
        this.view.grow(el, f.text);
        break;
      }
      case "agent_joined":
      case "agent_left":
        if (f.type === "agent_joined" && this.state) this.state.agent = f.agent;
        this.view.typing(null);
        this.view.notice(fmt(f.type === "agent_joined" ? S.joined : S.left, { agent: f.agent || S.agent }));
        break;
      case "typing":
        if (f.role === "agent") {
          const agent = this.state && this.state.agent;
          this.view.typing(agent ? fmt(S.agentTyping, { agent }) : S.typing);
        }
        break;
      case "error":
        this.error(f);
        break;
    }
  }

  private bind(el: HTMLElement, id: number): void {
    const other = this.byId.get(id);
    if (other && other !== el) other.remove();
    this.byId.set(id, el);
    this.view.sent(el, id);
  }

  private message(m: Message, live: boolean): void {
    if (this.byId.has(m.id)) return;
    const own = m.role === "customer" && m.client_id ? this.byClientId.get(m.client_id) : undefined;
    if (own) {
      this.pending = this.pending.filter((p) => p.clientId !== m.client_id);
      this.bind(own, m.id);
      this.view.stored(own, m.content);
    } else {
      const el = this.view.message(m);
      this.byId.set(m.id, el);
      let draft: HTMLElement | undefined;
      if (m.role === "ai") {
        // The stored answer replaces the bubble its stream grew in (it may differ: a checked draft can fall
        // back to the extractive answer).
        this.drafts.forEach((d, replyTo) => {
          if (replyTo < m.id) {
            if (draft) d.remove();
            else draft = d;
            this.drafts.delete(replyTo);
          }
        });
      }
      if (draft) this.view.replace(draft, el);
      else this.view.place(el, m.id);
      if (m.role !== "customer") {
        this.view.typing(null); // any reply or notice
        if (live || m.id > this.seenBefore) this.view.markUnread();
      }
    }
    if (m.id > this.seen) {
      this.seen = m.id;
      this.persist();
    }
  }

  /** A conversation's state from a `status` or `history` frame or a REST reply; `quiet` for a restored one. */
  private apply(s: State, quiet: boolean): void {
    const before = this.state;
    this.state = { conversation_id: s.conversation_id, status: s.status, handled_by: s.handled_by, agent: s.agent };
    const closed = CLOSED.indexOf(s.status) >= 0;
    if (s.handled_by !== "ai" || s.status === "escalated" || closed) {
      this.view.typing(null); // the assistant will not answer now
      this.drafts.forEach((el) => el.remove());
      this.drafts.clear();
    }
    if (!quiet && before) {
      // Who is coming (a person shortly, the queue, or nobody now) is the appliance's own notice message.
      if (closed && CLOSED.indexOf(before.status) < 0) this.view.notice(S.resolved);
    }
    if (s.rated) this.rated.add(s.conversation_id);
    if (closed && !this.rated.has(s.conversation_id)) {
      this.rated.add(s.conversation_id); // asked once
      this.view.csat();
    }
    this.line();
  }

  private error(f: Extract<Frame, { type: "error" }>): void {
    if (f.status === 401) return; // the socket closes with 4401 next: denied()
    const p = f.client_id ? this.pending.find((q) => q.clientId === f.client_id) : undefined;
    if (p && f.status === 409 && p.to !== null) {
      // The conversation was resolved or closed meanwhile: the message opens a new one.
      this.state = { conversation_id: p.to, status: "closed", handled_by: "ai", agent: null };
      p.generation = -1;
      this.flush();
      return;
    }
    this.view.typing(null); // whatever failed, no answer is coming for it
    if (p) {
      this.pending = this.pending.filter((q) => q !== p);
      this.unsent(p);
    } else if (this.resuming && f.status === 404) {
      // The conversation is no longer there (purged after the retention period): start afresh.
      this.resuming = false;
      this.conversation = null;
      this.state = null;
      this.persist();
      return;
    }
    this.view.notice(f.status === 413 ? S.tooLong : f.status === 429 ? S.slowDown : S.failed);
  }

  /** The status line: the connection first, then who is handling the conversation. */
  private line(): void {
    const s = this.state;
    let text = "";
    if (this.socket.wanted && !this.socket.ready) text = this.socket.everReady ? S.reconnecting : S.connecting;
    else if (s && this.conversation !== null) {
      if (CLOSED.indexOf(s.status) >= 0) text = S.ended;
      else if (s.handled_by === "agent") text = fmt(S.chatting, { agent: s.agent || S.agent });
      else if (s.status === "escalated") text = S.waiting;
    }
    if (this.view) this.view.status(text);
  }
}
