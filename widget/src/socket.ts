import type { Frame } from "./types";

const MAX_DELAY_MS = 15000;
const HEARTBEAT_MS = 20000;
// No frame at all (not even a pong) for this long: the connection is dead even if the browser has not noticed,
// as happens when a laptop sleeps or a proxy drops an idle connection silently.
const SILENCE_MS = 45000;
const AUTH_CLOSE = 4401; // the appliance's close code for a session it no longer accepts

export interface SocketEvents {
  ready(): void; // connected and the hello accepted: resume and resend now
  frame(frame: Frame): void;
  change(): void; // connected or disconnected
  denied(): void; // the session was refused: no reconnect
}

/**
 * The widget's WebSocket. The session goes in the first frame (`hello`), never in the URL. While it is wanted it
 * stays open: after a loss it reconnects after 1 s, 2 s, 4 s … at most 15 s, each with ±25 % jitter so that a
 * restarted appliance is not hit by every widget at once; the delay starts again from 1 s once a connection is
 * accepted, or when the browser says it is back online.
 */
export class Socket {
  ready = false;
  wanted = false;
  everReady = false;
  generation = 0; // counts accepted connections: a message is resent once on each
  private ws: WebSocket | null = null;
  private retryTimer = 0;
  private beatTimer = 0;
  private tries = 0;
  private heard = 0;

  constructor(private url: string, private token: () => string | null, private on: SocketEvents) {
    addEventListener("online", () => {
      if (this.wanted && !this.ws) {
        clearTimeout(this.retryTimer);
        this.tries = 0;
        this.open();
      }
    });
  }

  start(): void {
    this.wanted = true;
    if (!this.ws && !this.retryTimer) this.open();
  }

  send(frame: object): boolean {
    if (!this.ready || !this.ws) return false;
    try {
      this.ws.send(JSON.stringify(frame));
      return true;
    } catch {
      return false;
    }
  }

  private open(): void {
    this.retryTimer = 0;
    const token = this.token();
    if (!token) {
      this.wanted = false;
      this.on.denied();
      return;
    }
    let ws: WebSocket;
    try {
      ws = new WebSocket(this.url);
    } catch {
      this.retry();
      return;
    }
    this.ws = ws;
    this.heard = Date.now();
    let refused = false;
    ws.onopen = () => ws.send(JSON.stringify({ type: "hello", session: token }));
    ws.onmessage = (event) => {
      this.heard = Date.now();
      let frame: Frame;
      try {
        frame = JSON.parse(String(event.data)) as Frame;
      } catch {
        return;
      }
      if (frame.type === "ready") {
        this.ready = this.everReady = true;
        this.tries = 0;
        this.generation++;
        this.on.change();
        this.on.ready();
      } else {
        if (frame.type === "error" && frame.status === 401) refused = true; // the close (4401) follows
        this.on.frame(frame);
      }
    };
    ws.onclose = (event) => {
      if (this.ws !== ws) return;
      this.lost();
      if (event.code === AUTH_CLOSE || refused) {
        this.wanted = false;
        this.on.denied();
      } else this.retry();
    };
    this.beatTimer = window.setInterval(() => {
      if (Date.now() - this.heard > SILENCE_MS) {
        ws.onclose = null;
        ws.close();
        this.lost();
        this.retry();
      } else this.send({ type: "ping" });
    }, HEARTBEAT_MS);
    this.on.change();
  }

  private lost(): void {
    clearInterval(this.beatTimer);
    this.ws = null;
    this.ready = false;
    this.on.change();
  }

  private retry(): void {
    if (!this.wanted) return;
    const delay = Math.min(MAX_DELAY_MS, 1000 * 2 ** Math.min(this.tries++, 4) * (0.75 + Math.random() / 2));
    this.retryTimer = window.setTimeout(() => this.open(), delay);
  }
}
