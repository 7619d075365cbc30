// The console's own script: live updates over /ws/console and alerts. Pages work without it (plain forms and
// links); it only keeps them current. Loaded after htmx, under a CSP without inline script or eval.
import { alertConversation, banner, offerNotifications } from "./alerts";
import { ConversationView } from "./conversation";
import { Inbox } from "./inbox";
import { ConsoleSocket } from "./socket";
import { startThemePreviews } from "./theme";
import type { Frame } from "./types";

interface Page {
  opened(reconnected: boolean): void;
  frame(frame: Frame): void;
}

function describe(frame: Extract<Frame, { type: "queue_alert" }>): string {
  const parts = [frame.reason || "escalated", `priority ${frame.priority}`];
  if (frame.topic) parts.push(`topic ${frame.topic}`);
  return parts.join(" · ");
}

function alerts(frame: Frame): void {
  if (frame.type === "queue_alert") {
    alertConversation("New escalation:", describe(frame), frame.conversation_id);
  } else if (frame.type === "assigned") {
    const detail = `conversation #${frame.conversation_id} (${frame.how})`;
    alertConversation("Assigned to you:", detail, frame.conversation_id);
  }
}

function start(): void {
  const body = document.body;
  if (body.dataset.page === "settings") startThemePreviews();
  if (body.dataset.live !== "true") return;
  offerNotifications();
  let page: Page | null = null;
  const socket = new ConsoleSocket({
    open: (reconnected) => page?.opened(reconnected),
    frame: (frame) => {
      alerts(frame);
      page?.frame(frame);
    },
    denied: () => banner("Your session has ended.", {
      href: `/console/login?next=${encodeURIComponent(location.pathname + location.search)}`,
      label: "Sign in again",
    }),
  });
  const conversationId = Number(body.dataset.conversationId || 0);
  if (body.dataset.page === "inbox") page = new Inbox(socket);
  else if (conversationId > 0) page = new ConversationView(socket, conversationId);
  socket.start();
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
