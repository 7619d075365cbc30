declare const htmx: { trigger(target: Element, event: string, detail?: object): void } | undefined;

const DEBOUNCE_MS = 300;
let timer = 0;

/** Ask every element with `hx-trigger="refresh from:body"` to fetch itself again. A burst of frames (a message, its
 * answer, the status change) becomes one request. */
export function refresh(): void {
  if (timer) return;
  timer = window.setTimeout(() => {
    timer = 0;
    if (typeof htmx !== "undefined") htmx.trigger(document.body, "refresh");
  }, DEBOUNCE_MS);
}
