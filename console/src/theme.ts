// The settings page's widget preview: as the theme form changes, the preview takes its colours (CSS custom
// properties set through the CSSOM, which the console's CSP allows, unlike a style attribute), its texts and its
// position. The server renders the preview with the saved texts; colours need this script. An emptied text field
// shows the widget's default, as the widget would.
const HEX = /^#[0-9a-fA-F]{6}$/;
const POSITIONS = ["bottom-right", "bottom-left"];

function fieldValue(form: HTMLFormElement, name: string): string {
  const field = form.querySelector<HTMLInputElement | HTMLSelectElement>(`[data-theme="${name}"]`);
  return field ? field.value : "";
}

function paint(form: HTMLFormElement, preview: HTMLElement): void {
  for (const [name, property] of [["primary_color", "--preview-primary"], ["text_color", "--preview-on-primary"]]) {
    const value = fieldValue(form, name);
    if (HEX.test(value)) preview.style.setProperty(property, value);
  }
  const position = fieldValue(form, "position");
  for (const p of POSITIONS) preview.classList.toggle(`position-${p}`, p === position);
  preview.querySelectorAll<HTMLElement>("[data-preview-text]").forEach((el) => {
    el.textContent = fieldValue(form, el.dataset.previewText || "") || el.dataset.fallback || "";
  });
}

/** Wires every theme form on the page to its preview. */
export function startThemePreviews(): void {
  document.querySelectorAll<HTMLFormElement>("form[data-theme-form]").forEach((form) => {
    const preview = document.getElementById(form.dataset.preview || "");
    if (!preview) return;
    const update = () => paint(form, preview);
    form.addEventListener("input", update);
    form.addEventListener("change", update);
    update();
    preview.dataset.live = "true";
  });
}
