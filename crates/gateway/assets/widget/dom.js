// DOM helpers shared by the visitor widget and the agent console.
//
// Nothing in this file parses HTML. Text reaches the page only as text nodes,
// and a link only as an <a> whose href was parsed by the URL constructor and
// found to be http or https. Keep it that way: every chat body, name and
// email shown anywhere goes through these helpers.

/**
 * Builds an element. Keys of `props` starting with `aria-` or `data-`, and
 * `role`, become attributes; every other key is set as a property
 * (className, textContent, type, hidden, disabled, onclick, ...). Children
 * may be nodes or strings; strings become text nodes.
 */
export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);

  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (key === "innerHTML" || key === "outerHTML" || key === "style") {
      throw new Error(`h(): refusing to set ${key}`);
    }
    if (key === "role" || key.startsWith("aria-") || key.startsWith("data-")) {
      node.setAttribute(key, String(value));
    } else {
      node[key] = value;
    }
  }

  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

// A URL starts at "http://" or "https://" and runs to whitespace or to a
// character that cannot appear unescaped in one. Punctuation that usually
// ends a sentence is trimmed from the end afterwards.
const URL_IN_TEXT = /\bhttps?:\/\/[^\s<>"]+/gi;
const TRAILING_PUNCTUATION = /[.,;:!?'")\]}]+$/;

/**
 * Turns plain text into a fragment of text nodes and safe links. The link
 * text is exactly what the sender wrote; only the href is normalised.
 */
export function linkify(text) {
  const fragment = document.createDocumentFragment();
  let done = 0;

  for (const match of text.matchAll(URL_IN_TEXT)) {
    const raw = match[0].replace(TRAILING_PUNCTUATION, "");
    const link = raw && safeLink(raw);
    if (!link) continue;

    fragment.append(text.slice(done, match.index), link);
    done = match.index + raw.length;
  }

  fragment.append(text.slice(done));
  return fragment;
}

/** An <a> for `raw` if it parses as an http(s) URL, otherwise null. */
export function safeLink(raw) {
  let url;
  try {
    url = new URL(raw);
  } catch {
    return null;
  }
  if (!/^https?:\/\//.test(url.href)) return null;

  return h("a", {
    href: url.href,
    rel: "noopener noreferrer nofollow",
    target: "_blank",
    textContent: raw,
  });
}

/** A <time> element showing the clock time, or the date if not today. */
export function timeEl(ms) {
  const date = new Date(ms);
  const today = new Date().toDateString() === date.toDateString();
  const text = today
    ? date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
    : date.toLocaleDateString([], { month: "short", day: "numeric" });

  const title = date.toLocaleString();
  return h("time", { dateTime: date.toISOString(), title, textContent: text });
}

/** A fresh client_msg_id: "c-" and a random UUID, well inside 64 characters. */
export function newClientMsgId() {
  if (crypto.randomUUID) return `c-${crypto.randomUUID()}`;
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `c-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** Message bodies are limited in characters (code points), not UTF-16 units. */
export function charCount(text) {
  let count = 0;
  for (const _ of text) count += 1;
  return count;
}

/** True for Enter without Shift, outside an IME composition. */
export function isSendKey(event) {
  return event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229;
}
