// Small DOM helpers for the admin console. Everything from the server or a
// user goes in as text (textContent or attribute values), never as markup.

export const $ = (id) => document.getElementById(id);

/** `<tag>` with attributes and children (strings become text nodes). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    node.setAttribute(name, value === true ? "" : String(value));
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

/** A table row of text cells; a cell may also be a node. */
export function row(...cells) {
  return el("tr", {}, ...cells.map((cell) => el("td", {}, cell instanceof Node ? cell : String(cell ?? ""))));
}

/** Shows `message` in an alert paragraph, or hides it for null. */
export function showError(node, message) {
  node.textContent = message || "";
  node.hidden = !message;
}

/** A date and time from unix milliseconds, or "never". */
export function when(ms) {
  if (ms === null || ms === undefined) return "never";
  return new Date(ms).toLocaleString();
}

/** Copy buttons: `data-copy` names the field whose value they copy. */
export function wireCopyButtons() {
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.addEventListener("click", async () => {
      const field = $(button.dataset.copy);
      field.select();
      try {
        await navigator.clipboard.writeText(field.value);
        button.textContent = "Copied";
      } catch {
        button.textContent = "Press Ctrl+C";
      }
    });
  }
}

/** Done buttons: `data-dismiss` names the box of a shown-once secret, whose
 * fields are emptied and which is hidden. */
export function wireDismissButtons() {
  for (const button of document.querySelectorAll("button[data-dismiss]")) {
    button.addEventListener("click", () => {
      const box = $(button.dataset.dismiss);
      for (const field of box.querySelectorAll("input, textarea")) field.value = "";
      box.hidden = true;
    });
  }
}
