import { refresh } from "./refresh";
import type { ConsoleSocket } from "./socket";
import type { Frame } from "./types";

/**
 * The inbox: the list refreshes itself (htmx) whenever the hub says something changed. Besides the frames every
 * console gets (alerts, assignments, and list updates for roles that see all), the page watches each conversation
 * it lists, so a customer's new message updates that row's excerpt, sentiment and unread count. After a lost
 * connection it refreshes once: the list is read from the database, so nothing missed meanwhile stays missing.
 */
export class Inbox {
  private watched = new Set<number>();

  constructor(private socket: ConsoleSocket) {
    document.body.addEventListener("htmx:afterSettle", () => this.syncWatches());
  }

  opened(reconnected: boolean): void {
    this.watched.clear();
    this.syncWatches();
    if (reconnected) refresh();
  }

  frame(frame: Frame): void {
    switch (frame.type) {
      case "queue_alert":
      case "assigned":
      case "conversation":
      case "message":
      case "status":
        refresh();
    }
  }

  private listed(): Set<number> {
    const ids = new Set<number>();
    document.querySelectorAll<HTMLElement>("#conversation-list [data-conversation-id]").forEach((row) => {
      const id = Number(row.dataset.conversationId);
      if (id > 0) ids.add(id);
    });
    return ids;
  }

  private syncWatches(): void {
    const now = this.listed();
    now.forEach((id) => {
      if (!this.watched.has(id)) this.socket.send({ type: "watch", conversation_id: id });
    });
    this.watched.forEach((id) => {
      if (!now.has(id)) this.socket.send({ type: "unwatch", conversation_id: id });
    });
    this.watched = now;
  }
}
