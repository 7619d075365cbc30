import { h } from "./dom";

let audio: AudioContext | null = null;

/** A short two-tone beep made with WebAudio (no sound file to serve). Browsers allow it once the page has had a
 * click or key press; before that it is silently skipped. */
export function beep(): void {
  try {
    audio = audio || new AudioContext();
    const now = audio.currentTime;
    for (const [offset, pitch] of [[0, 880], [0.18, 660]] as const) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = pitch;
      gain.gain.setValueAtTime(0.15, now + offset);
      gain.gain.exponentialRampToValueAtTime(0.001, now + offset + 0.15);
      osc.connect(gain).connect(audio.destination);
      osc.start(now + offset);
      osc.stop(now + offset + 0.16);
    }
  } catch {
    // no audio device, or not allowed yet
  }
}

function notify(title: string, body: string, tag: string): void {
  if (!("Notification" in window) || Notification.permission !== "granted") return;
  try {
    new Notification(title, { body, tag });
  } catch {
    // some browsers allow notifications only from a service worker
  }
}

/** An alert at the top of the page (announced by screen readers), with a beep and a desktop notification. */
export function alertConversation(title: string, detail: string, conversationId: number): void {
  const region = document.getElementById("alerts");
  if (!region) return;
  const existing = region.querySelector(`[data-alert-for="${conversationId}"]`);
  if (existing) existing.remove();
  const dismiss = h("button", { type: "button", class: "button-quiet" }, "Dismiss");
  const alert = h("div", { class: "alert", role: "alert", "data-alert-for": conversationId },
    h("p", {}, h("strong", {}, title), " ", detail),
    h("a", { href: `/console/conversations/${conversationId}` }, `Open conversation #${conversationId}`),
    dismiss);
  dismiss.addEventListener("click", () => alert.remove());
  region.prepend(alert);
  beep();
  notify(title, detail, `conversation-${conversationId}`);
}

export function banner(text: string, link?: { href: string; label: string }): void {
  const region = document.getElementById("alerts");
  if (!region || region.querySelector("[data-banner]")) return;
  region.prepend(h("div", { class: "alert alert-warning", role: "alert", "data-banner": true },
    h("p", {}, text), link ? h("a", { href: link.href }, link.label) : null));
}

/** The "Enable desktop notifications" button: shown only while the browser has not been asked yet. */
export function offerNotifications(): void {
  const button = document.querySelector<HTMLButtonElement>("[data-action=enable-notifications]");
  if (!button || !("Notification" in window) || Notification.permission !== "default") return;
  button.hidden = false;
  button.addEventListener("click", () => {
    Notification.requestPermission().then(() => {
      button.hidden = true;
    });
  });
}
