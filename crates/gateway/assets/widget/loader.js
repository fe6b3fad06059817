/* Palisade chat widget loader.
 *
 * A business puts this on its pages:
 *
 *   <script src="https://PALISADE-HOST/widget/loader.js"
 *           data-widget-key="pk_..." async></script>
 *
 * It runs on the host page, under the host's rules, so it stays small and
 * polite: a classic script (document.currentScript works only for those), no
 * globals, no inline styles, one stylesheet fetched from Palisade's origin.
 * The chat itself lives in an iframe on Palisade's origin. The two sides
 * speak only by postMessage, and each checks the other's origin and window.
 */
(function () {
  "use strict";

  // Read now: document.currentScript is null once this first run is over.
  // The query is a fallback for the rare loader that hides it.
  const script =
    document.currentScript ||
    document.querySelector('script[data-widget-key][src$="/widget/loader.js"]');
  if (!script || !script.src) return;

  const ORIGIN = new URL(script.src, location.href).origin;
  const KEY = script.getAttribute("data-widget-key") || "";
  const ROOT_ID = "palisade-widget";
  const SVG_NS = "http://www.w3.org/2000/svg";
  const ICONS = {
    chat: "M4 5a2 2 0 0 1 2-2h12a2 2 0 0 1 2 2v9a2 2 0 0 1-2 2h-7l-5 4v-4a2 2 0 0 1-2-2z",
    close: "M6 6l12 12M18 6L6 18",
  };

  if (!/^[A-Za-z0-9_.:-]{1,128}$/.test(KEY)) {
    console.warn("Palisade: the loader script needs a valid data-widget-key attribute.");
    return;
  }

  let root, panel, launcher, badge;
  let frame = null; // created on the first open, then kept so the chat stays live
  let frameReady = false; // the frame has said hello, so it can hear us too
  let open = false;
  let unread = 0;

  function build() {
    if (document.getElementById(ROOT_ID)) return; // the snippet is on the page twice

    root = element("div", "palisade-root");
    root.id = ROOT_ID;
    // Hidden until our stylesheet has loaded (or failed to), so the page
    // never flashes an unstyled button.
    root.hidden = true;

    panel = element("div", "palisade-panel");
    panel.id = "palisade-panel";
    panel.hidden = true;

    launcher = element("button", "palisade-launcher");
    launcher.type = "button";
    launcher.setAttribute("aria-controls", panel.id);
    badge = element("span", "palisade-badge");
    badge.hidden = true;
    badge.setAttribute("aria-hidden", "true"); // the count is in the button's label
    launcher.append(icon("chat"), icon("close"), badge);
    launcher.addEventListener("click", () => (open ? hide() : show()));

    root.append(panel, launcher);
    root.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && open) hide();
    });

    const sheet = element("link");
    sheet.rel = "stylesheet";
    sheet.href = ORIGIN + "/widget/launcher.css";
    sheet.onload = sheet.onerror = () => {
      root.hidden = false;
    };

    // The widget's own colour and corner, from its settings.
    const theme = element("link");
    theme.rel = "stylesheet";
    theme.href = ORIGIN + "/widget/theme.css?key=" + encodeURIComponent(KEY);

    document.head.append(sheet, theme);
    document.body.append(root);
    window.addEventListener("message", onMessage);
    updateLauncher();
  }

  function show() {
    if (!frame) {
      frame = element("iframe", "palisade-frame");
      frame.title = "Chat";
      // The frame posts to our origin only if it knows it; make sure the
      // referrer carries at least that, whatever this page's own policy.
      frame.setAttribute("referrerpolicy", "origin");
      // Keeps the frame from steering this page (navigating it, say). On
      // Palisade's own pages (the demo) a same-origin frame could lift its
      // sandbox anyway, so it is left off there.
      if (ORIGIN !== location.origin) {
        frame.setAttribute(
          "sandbox",
          "allow-scripts allow-same-origin allow-forms allow-popups allow-popups-to-escape-sandbox",
        );
      }
      // The key goes in the query: the server reads it there to allow this
      // widget's origins, and only those, to frame the chat.
      // The host page (without query or fragment, which may hold the
      // visitor's own tokens) rides in the fragment, which is never sent
      // to a server: the frame passes it on for the agent's side panel.
      const page = location.protocol + "//" + location.host + location.pathname;
      frame.src =
        ORIGIN + "/widget/frame.html?key=" + encodeURIComponent(KEY) + "#page=" + encodeURIComponent(page);
      frame.addEventListener("load", () => {
        if (open) frame.focus();
      });
      panel.append(frame);
    }

    open = true;
    panel.hidden = false;
    root.classList.add("palisade-is-open");
    updateLauncher();
    tellFrame();
    frame.focus();
  }

  function hide() {
    const focusInside = panel.contains(document.activeElement);
    open = false;
    panel.hidden = true;
    root.classList.remove("palisade-is-open");
    updateLauncher();
    tellFrame();
    if (focusInside) launcher.focus();
  }

  // Lets the frame know whether it is on screen, so it can count unread
  // messages while it is not.
  function tellFrame() {
    if (frameReady && frame.contentWindow) {
      frame.contentWindow.postMessage({ type: "palisade:visibility", open: open }, ORIGIN);
    }
  }

  function onMessage(event) {
    if (event.origin !== ORIGIN || !frame || event.source !== frame.contentWindow) return;
    const data = event.data;
    if (!data || typeof data !== "object") return;

    if (data.type === "palisade:ready") {
      // The frame can talk to us, so it shows its own close button.
      frameReady = true;
      root.classList.add("palisade-frame-talks");
      tellFrame();
    } else if (data.type === "palisade:unread") {
      if (Number.isInteger(data.count) && data.count >= 0) {
        unread = data.count;
        updateLauncher();
      }
    } else if (data.type === "palisade:close") {
      if (open) hide();
    }
  }

  function updateLauncher() {
    launcher.setAttribute("aria-expanded", String(open));
    let label = open ? "Close chat" : "Open chat";
    if (unread > 0 && !open) {
      label += ", " + unread + (unread === 1 ? " unread message" : " unread messages");
    }
    launcher.setAttribute("aria-label", label);

    badge.textContent = unread > 9 ? "9+" : String(unread);
    badge.hidden = unread === 0 || open;
  }

  function element(tag, className) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    return node;
  }

  function icon(name) {
    const svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    svg.setAttribute("class", "palisade-icon palisade-icon--" + name);
    const path = document.createElementNS(SVG_NS, "path");
    path.setAttribute("d", ICONS[name]);
    svg.append(path);
    return svg;
  }

  if (document.body) {
    build();
  } else {
    document.addEventListener("DOMContentLoaded", build);
  }
})();
