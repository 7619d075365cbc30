import type { Theme } from "./types";

const HEX = /^#[0-9a-fA-F]{6}$/;
// The default primary on white text has a contrast of 6.4:1 (WCAG AA asks 4.5:1).
const PRIMARY = "#1f5fa8";
const ON_PRIMARY = "#ffffff";

/** The widget's stylesheet. Theme colours are checked again here, since they are written into CSS text. */
export function css(theme: Theme): string {
  const p = theme.primary_color && HEX.test(theme.primary_color) ? theme.primary_color : PRIMARY;
  const t = theme.text_color && HEX.test(theme.text_color) ? theme.text_color : ON_PRIMARY;
  // !important: inside a shadow root it outranks the host page's own rules for the host element (a transform or
  // filter there would otherwise re-anchor the fixed-position launcher).
  return `:host{all:initial!important}
*{box-sizing:border-box}
[hidden]{display:none!important}
.w{position:fixed;bottom:20px;right:20px;z-index:2147483000;display:flex;flex-direction:column;align-items:flex-end;gap:12px;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;color:#1a1a1a}
.w.l{right:auto;left:20px;align-items:flex-start}
button{font:inherit;cursor:pointer;border-radius:6px;border:1px solid #6b6b6b;background:#fff;color:#1a1a1a;padding:5px 10px}
button:disabled{cursor:default;opacity:.6}
button:focus-visible,textarea:focus-visible,a:focus-visible,.log:focus-visible{outline:2px solid #1a1a1a;outline-offset:2px;box-shadow:0 0 0 4px #fff}
.p,.fb [aria-pressed=true],.stars [aria-pressed=true]{background:${p};color:${t};border-color:${p}}
.launch{border-radius:24px;padding:11px 20px;font-weight:600;box-shadow:0 2px 8px rgba(0,0,0,.3)}
.lw{position:relative}
.dot{position:absolute;pointer-events:none;top:-4px;right:-4px;width:14px;height:14px;border-radius:50%;background:#c62828;border:2px solid #fff}
.panel{width:370px;max-width:calc(100vw - 40px);height:560px;max-height:calc(100vh - 100px);display:flex;flex-direction:column;overflow:hidden;background:#fff;border:1px solid #c8c8c8;border-radius:12px;box-shadow:0 6px 24px rgba(0,0,0,.25)}
.head{display:flex;align-items:center;gap:8px;padding:10px 12px;background:${p};color:${t}}
.head img{width:28px;height:28px;object-fit:contain;border-radius:4px;background:#fff}
.head h2{flex:1;margin:0;font-size:16px;font-weight:600}
.x{background:transparent;color:inherit;border-color:transparent;font-size:20px;line-height:1;padding:2px 8px}
.st{padding:4px 12px;font-size:12px;color:#444;background:#f5f5f5;border-bottom:1px solid #e2e2e2}
.st:empty{display:none}
.log{flex:1;overflow-y:auto;display:flex;flex-direction:column;gap:8px;padding:12px}
.m{max-width:85%;padding:8px 10px;border-radius:10px;background:#f1f3f5;align-self:flex-start;overflow-wrap:anywhere}
.m.customer{align-self:flex-end;background:${p};color:${t}}
.m[data-pending=true]{opacity:.75}
.m[data-failed=true]{outline:2px solid #b00020}
.tx{white-space:pre-wrap}
.md{white-space:normal}
.md p,.md ul,.md ol{margin:0 0 6px}
.md>:last-child{margin-bottom:0}
.md ul,.md ol{padding-left:20px}
.md .hd{font-weight:600}
.md table{border-collapse:collapse;margin:0 0 6px;font-size:13px}
.md th,.md td{border:1px solid #c8c8c8;padding:2px 6px;text-align:left;vertical-align:top}
.md code{font:12px ui-monospace,monospace;background:#e4e7eb;padding:0 3px;border-radius:3px}
.md sup a{color:#174a85;text-decoration:none}
.fb svg{display:block}
.who{display:block;margin-bottom:2px;font-size:12px;font-weight:600;color:#444}
.vh{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
.meta{margin:6px 0 0;font-size:12px;color:#444}
.customer .meta{color:inherit}
.src{margin:2px 0 0;padding-left:18px;font-size:13px}
.src a{color:#174a85}
[data-urgent]{border-left:4px solid #b3261e}
.fb{display:flex;gap:6px;margin-top:6px}
.fb button{padding:1px 8px}
.note{align-self:center;max-width:95%;text-align:center;font-size:12px;color:#444}
.typing{padding:0 12px 4px;font-size:12px;color:#444}
.foot{display:flex;flex-direction:column;gap:6px;padding:8px;border-top:1px solid #e2e2e2}
.foot>button{align-self:flex-start;font-size:13px}
form.row{display:flex;gap:6px;align-items:flex-end;margin:0}
textarea{flex:1;min-height:38px;max-height:120px;resize:none;padding:8px;font:inherit;color:#1a1a1a;background:#fff;border:1px solid #6b6b6b;border-radius:6px}
.csat{align-self:stretch;margin:0;padding:8px;border:1px solid #c8c8c8;border-radius:8px}
.csat legend{padding:0 4px;font-weight:600}
.stars{display:flex;gap:6px;margin:6px 0}
.csat textarea{width:100%;margin-bottom:6px}
`;
}
