// Widget settings: colour, greeting, corner, pre-chat questions, business
// hours and away message, with a live preview drawn in the page and the
// `<script>` snippet for the tenant's site.

import { api } from "/app/api.js";
import { $, el, showError } from "./dom.js";
import { explain } from "./stepup.js";

const DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

const ui = {
  form: $("widget-form"),
  pick: $("widget-pick"),
  color: $("widget-color"),
  greeting: $("widget-greeting"),
  position: $("widget-position"),
  prechatName: $("prechat-name"),
  prechatEmail: $("prechat-email"),
  hoursOn: $("hours-on"),
  offset: $("hours-offset"),
  days: $("hours-days"),
  away: $("widget-away"),
  error: $("widget-error"),
  saved: $("widget-saved"),
  preview: $("preview"),
  previewGreeting: $("preview-greeting"),
  previewAway: $("preview-away"),
  snippet: $("widget-snippet"),
};

let widgets = [];
const dayFields = DAYS.map((name) => {
  const open = el("input", { type: "checkbox", "aria-label": `Open on ${name}` });
  const from = el("input", { class: "hhmm", value: "09:00", "aria-label": `${name} opens (HH:MM)` });
  const to = el("input", { class: "hhmm", value: "17:00", "aria-label": `${name} closes (HH:MM, 24:00 for midnight)` });
  ui.days.append(el("div", { class: "hours__day" }, el("label", {}, open, ` ${name}`), from, to));
  return { open, from, to };
});

let onChange = () => {};

export async function startWidget(changed) {
  onChange = changed;
  ui.form.addEventListener("input", () => {
    ui.saved.hidden = true;
    preview();
  });
  ui.form.addEventListener("change", preview);
  ui.pick.addEventListener("change", () => fill(current()));
  ui.form.addEventListener("submit", save);
  try {
    ({ widgets } = await api("GET", "/v1/admin/widgets"));
    ui.pick.replaceChildren(...widgets.map((w) => el("option", { value: w.id }, w.name)));
    if (widgets.length > 0) fill(widgets[0]);
  } catch (err) {
    showError(ui.error, explain(err));
  }
}

function current() {
  return widgets.find((w) => w.id === ui.pick.value);
}

function fill(widget) {
  const s = widget.settings;
  ui.color.value = s.theme_color;
  ui.greeting.value = widget.greeting;
  ui.position.value = s.position;
  ui.prechatName.value = s.prechat.name;
  ui.prechatEmail.value = s.prechat.email;
  ui.hoursOn.checked = s.hours !== null;
  ui.offset.value = String(s.hours?.utc_offset_minutes ?? 0);
  dayFields.forEach((fields, i) => {
    const window = s.hours?.days[i] ?? null;
    fields.open.checked = window !== null;
    if (window) {
      fields.from.value = window.open;
      fields.to.value = window.close;
    }
  });
  ui.away.value = s.away_message;
  ui.snippet.value =
    `<script src="${location.origin}/widget/loader.js"\n` +
    `        data-widget-key="${widget.public_key}" async></script>`;
  preview();
}

/** Redraws the mock launcher and panel from the form's current values. */
function preview() {
  ui.preview.style.setProperty("--preview-color", ui.color.value);
  ui.preview.classList.toggle("preview--left", ui.position.value === "left");
  ui.previewGreeting.textContent = ui.greeting.value;
  ui.previewAway.textContent = ui.away.value;
  ui.previewAway.hidden = !ui.hoursOn.checked;
}

function settings() {
  const hours = ui.hoursOn.checked
    ? {
        utc_offset_minutes: Number(ui.offset.value),
        days: dayFields.map((f) =>
          f.open.checked ? { open: f.from.value.trim(), close: f.to.value.trim() } : null,
        ),
      }
    : null;
  return {
    theme_color: ui.color.value,
    position: ui.position.value,
    prechat: { name: ui.prechatName.value, email: ui.prechatEmail.value },
    hours,
    away_message: ui.away.value,
  };
}

async function save(event) {
  event.preventDefault();
  showError(ui.error, null);
  ui.saved.hidden = true;
  const widget = current();
  if (!widget) return;
  const body = { greeting: ui.greeting.value, settings: settings() };
  try {
    const saved = await api("PUT", `/v1/admin/widgets/${encodeURIComponent(widget.id)}/settings`, body);
    widgets = widgets.map((w) => (w.id === saved.id ? saved : w));
    ui.saved.hidden = false;
  } catch (err) {
    showError(ui.error, explain(err));
  }
  onChange();
}
