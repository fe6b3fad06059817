// Overview: conversations per day and the median first response, drawn as
// SVG built with DOM calls (labels are text nodes), with the same numbers in
// a table for screen readers and copying.

import { api } from "/app/api.js";
import { $, row, showError } from "./dom.js";
import { explain } from "./stepup.js";

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 560;
const HEIGHT = 200;
const PAD = { left: 40, right: 10, top: 16, bottom: 34 };

const ui = {
  days: $("overview-days"),
  backlog: $("backlog"),
  conversations: $("chart-conversations"),
  response: $("chart-response"),
  rows: $("overview-rows"),
  error: $("overview-error"),
};

export function startOverview() {
  ui.days.addEventListener("change", loadOverview);
  return loadOverview();
}

export async function loadOverview() {
  showError(ui.error, null);
  try {
    const stats = await api("GET", `/v1/admin/stats?days=${encodeURIComponent(ui.days.value)}`);
    draw(stats);
  } catch (err) {
    showError(ui.error, explain(err));
  }
}

const dayLabel = (ms) => new Date(ms).toISOString().slice(5, 10);
const minutes = (ms) => (ms === null ? null : Math.round(ms / 6000) / 10);

/** A first-response time for the table: seconds under a minute. */
function duration(ms) {
  if (ms === null) return "no replies";
  return ms < 60_000 ? `${Math.round(ms / 1000)} s` : `${minutes(ms)} min`;
}

function draw(stats) {
  const { open_unassigned: waiting, open_assigned: taken } = stats.backlog;
  ui.backlog.textContent = `Open now: ${waiting} unassigned, ${taken} assigned.`;
  const labels = stats.days.map((d) => dayLabel(d.day_start));
  ui.conversations.replaceChildren(
    barChart(labels, stats.days.map((d) => d.conversations), "Conversations per day"),
  );
  ui.response.replaceChildren(
    lineChart(labels, stats.days.map((d) => minutes(d.median_first_response_ms)),
      "Median first response in minutes"),
  );
  ui.rows.replaceChildren(
    ...stats.days.map((d) =>
      row(new Date(d.day_start).toISOString().slice(0, 10), d.conversations,
        duration(d.median_first_response_ms)),
    ),
  );
}

function svgEl(name, attrs = {}, text = null) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== null) node.textContent = text;
  return node;
}

/** The frame shared by both charts: axis, top value and day labels. */
function frame(labels, max, title) {
  const svg = svgEl("svg", {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    class: "chart",
    role: "img",
    "aria-label": title,
  });
  svg.append(svgEl("title", {}, title));
  const bottom = HEIGHT - PAD.bottom;
  svg.append(
    svgEl("line", { x1: PAD.left, y1: bottom, x2: WIDTH - PAD.right, y2: bottom, class: "chart__axis" }),
    svgEl("text", { x: PAD.left - 6, y: PAD.top + 4, class: "chart__tick", "text-anchor": "end" }, String(max)),
    svgEl("text", { x: PAD.left - 6, y: bottom, class: "chart__tick", "text-anchor": "end" }, "0"),
  );
  const every = Math.ceil(labels.length / 10);
  labels.forEach((label, i) => {
    // Counted back from today, so today always has its label.
    if ((labels.length - 1 - i) % every !== 0) return;
    svg.append(svgEl("text", { x: slotX(i, labels.length), y: HEIGHT - 12,
      class: "chart__tick", "text-anchor": "middle" }, label));
  });
  return svg;
}

function slotX(i, count) {
  const slot = (WIDTH - PAD.left - PAD.right) / count;
  return PAD.left + slot * i + slot / 2;
}

function scaleY(value, max) {
  const height = HEIGHT - PAD.top - PAD.bottom;
  return HEIGHT - PAD.bottom - (max === 0 ? 0 : (value / max) * height);
}

function barChart(labels, values, title) {
  const max = Math.max(1, ...values);
  const svg = frame(labels, max, title);
  const slot = (WIDTH - PAD.left - PAD.right) / values.length;
  values.forEach((value, i) => {
    const y = scaleY(value, max);
    const bar = svgEl("rect", {
      x: slotX(i, values.length) - slot * 0.35,
      y,
      width: slot * 0.7,
      height: HEIGHT - PAD.bottom - y,
      class: "chart__bar",
    });
    bar.append(svgEl("title", {}, `${labels[i]}: ${value}`));
    svg.append(bar);
    if (value > 0) {
      svg.append(svgEl("text", { x: slotX(i, values.length), y: y - 3, class: "chart__value",
        "text-anchor": "middle" }, String(value)));
    }
  });
  return svg;
}

function lineChart(labels, values, title) {
  const known = values.filter((v) => v !== null);
  const max = Math.max(1, Math.ceil(Math.max(0, ...known)));
  const svg = frame(labels, max, title);
  // Days without a reply break the line rather than counting as zero.
  let path = "";
  let pen = false;
  values.forEach((value, i) => {
    if (value === null) {
      pen = false;
      return;
    }
    const x = slotX(i, values.length);
    const y = scaleY(value, max);
    path += `${pen ? "L" : "M"}${x.toFixed(1)} ${y.toFixed(1)} `;
    pen = true;
    const dot = svgEl("circle", { cx: x, cy: y, r: 4, class: "chart__dot" });
    dot.append(svgEl("title", {}, `${labels[i]}: ${value} min`));
    svg.append(dot, svgEl("text", { x, y: y - 8, class: "chart__value", "text-anchor": "middle" },
      String(value)));
  });
  if (path) svg.insertBefore(svgEl("path", { d: path.trim(), class: "chart__line" }), svg.children[1]);
  return svg;
}
