/*
 * The chat widget: one script tag on an intranet page.
 *
 *   <script async src="https://support.example/widget/v1/widget.js" integrity="sha384-…" crossorigin="anonymous"
 *           data-widget-key="wk_…" data-identity='{"user_id": …, "email": …, "name": …, "timestamp": …, "signature": …}'></script>
 *
 * data-identity is optional: the intranet's server signs who is signed in (docs/conversations.md, "Widget identity").
 * The appliance's origin is taken from the script's src; everything else comes from the appliance.
 *
 * Content Security Policy of the host page: the widget runs no inline script, no eval and no new Function, and
 * styles itself with a constructed stylesheet inside its shadow root (not inline style). A page with a strict CSP
 * needs only the appliance's origin in:
 *   script-src  https://support.example            ('self' when the page is served by the appliance itself)
 *   connect-src https://support.example wss://support.example   (REST calls and the WebSocket)
 *   img-src     https://support.example            (and the logo's host when the theme's logo_url is elsewhere)
 * Browsers without constructable stylesheets (before 2023) get a <style> element instead, which a strict
 * style-src blocks unless it allows 'unsafe-inline'.
 */
import { Widget } from "./widget";
import type { Identity } from "./types";

// currentScript is only set while this file runs, so it is read now; the fallback serves bundlers that wrap it.
const script = (document.currentScript as HTMLScriptElement | null) || document.querySelector<HTMLScriptElement>("script[data-widget-key]");

function identity(raw: string | null): Identity | null {
  if (!raw) return null;
  try {
    return JSON.parse(raw) as Identity;
  } catch {
    console.warn("chat widget: data-identity is not JSON; continuing without an identity");
    return null;
  }
}

function boot(): void {
  const key = script && script.getAttribute("data-widget-key");
  if (!script || !key || document.querySelector("[data-appliance-widget]")) return; // no key, or already there
  const origin = new URL(script.src || location.href, location.href).origin;
  new Widget({ key, origin, identity: identity(script.getAttribute("data-identity")) }).start();
}

// The tag is async: the page never waits for it. The widget's host element goes into <body>, so it waits for it.
if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot);
else boot();
