import type { Frame } from "./types";

const MAX_DELAY_MS = 30000;
const HEARTBEAT_MS = 20000;
// No frame at all (not even a pong) for this long: the connection is dead even if the browser has not noticed.
const SILENCE_MS = 45000;
const AUTH_CLOSE = 4401; // the appliance's close code for a session it no longer accepts

export interface SocketEvents {
  open(reconnected: boolean): void;
  frame(frame: Frame): void;
  denied(): void; // the session is no longer accepted: no reconnect
}

/**
 * The console's WebSocket (/ws/console), authenticated by the session cookie. After a loss it reconnects after
 * 1 s, 2 s, 4 s … at most 30 s, each with ±25 % jitter, so a restarted appliance is not hit by every console at
 * once; the delay starts again from 1 s once a connection opens.
 */
export class ConsoleSocket {
  private ws: WebSocket | null = null;
  private tries = 0;
  private opened = false;
  private heard = 0;
  private beat = 0;

  constructor(private on: SocketEvents) {}

  start(): void {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}/ws/console`);
    this.ws = ws;
    let refused = false;
    ws.onopen = () => {
      this.tries = 0;
      this.heard = Date.now();
      this.on.open(this.opened);
      this.opened = true;
    };
    ws.onmessage = (event) => {
      this.heard = Date.now();
      let frame: Frame;
      try {
        frame = JSON.parse(String(event.data)) as Frame;
      } catch {
        return;
      }
      if (frame.type === "error" && frame.status === 401) refused = true; // the 4401 close follows
      this.on.frame(frame);
    };
    ws.onclose = (event) => {
      if (this.ws !== ws) return;
      this.stopBeat();
      this.ws = null;
      if (event.code === AUTH_CLOSE || refused) this.on.denied();
      else this.retry();
    };
    this.beat = window.setInterval(() => {
      if (Date.now() - this.heard > SILENCE_MS) {
        ws.onclose = null;
        ws.close();
        this.stopBeat();
        this.ws = null;
        this.retry();
      } else this.send({ type: "ping" });
    }, HEARTBEAT_MS);
  }

  send(frame: object): void {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame));
  }

  private stopBeat(): void {
    clearInterval(this.beat);
  }

  private retry(): void {
    const base = Math.min(MAX_DELAY_MS, 1000 * 2 ** this.tries);
    this.tries++;
    window.setTimeout(() => this.start(), base * (0.75 + Math.random() * 0.5));
  }
}
