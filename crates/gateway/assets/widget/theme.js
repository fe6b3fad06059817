// The widget's theme colour as CSS custom properties, set through the CSSOM
// (allowed by the page's CSP, unlike style attributes). The text on the
// colour is white or near-black, whichever contrasts more.

const HEX = /^#[0-9a-f]{6}$/i;

/** Sets --accent, --accent-strong and --on-accent on `root` from "#rrggbb". */
export function applyTheme(root, color) {
  if (typeof color !== "string" || !HEX.test(color)) return;
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(color.slice(i, i + 2), 16));
  const strong = [r, g, b].map((c) => Math.round(c * 0.8).toString(16).padStart(2, "0"));
  root.style.setProperty("--accent", color);
  root.style.setProperty("--accent-strong", `#${strong.join("")}`);
  root.style.setProperty("--on-accent", luminance(r, g, b) > 0.18 ? "#111418" : "#ffffff");
}

// Relative luminance as WCAG defines it, 0 (black) to 1 (white).
function luminance(r, g, b) {
  const linear = (c) => {
    const s = c / 255;
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b);
}
