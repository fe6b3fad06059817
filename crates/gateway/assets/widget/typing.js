// "Someone is typing" notices, in both directions.

const SEND_EVERY_MS = 3000;
const SHOW_FOR_MS = 5000;

/**
 * Tells the other side this user is typing: at most one `true` every three
 * seconds while keys are pressed, and one `false` when they stop (message
 * sent, box emptied, focus left).
 */
export class TypingOut {
  /** `send(typing)` returns true if the frame went out. */
  constructor(send) {
    this.send = send;
    this.lastSent = 0;
    this.active = false;
  }

  /** Call on every input event with whether the box holds any text. */
  input(hasText) {
    if (!hasText) return this.stop();

    const now = Date.now();
    if (now - this.lastSent < SEND_EVERY_MS) return;
    if (this.send(true)) {
      this.lastSent = now;
      this.active = true;
    }
  }

  stop() {
    if (this.active) this.send(false);
    this.active = false;
    this.lastSent = 0;
  }
}

/** Shows "<name> is typing…" and hides it after five quiet seconds. */
export class TypingIn {
  constructor(el) {
    this.el = el;
    this.timer = 0;
  }

  show(name) {
    clearTimeout(this.timer);
    this.el.textContent = `${name} is typing…`;
    this.el.hidden = false;
    this.timer = setTimeout(() => this.hide(), SHOW_FOR_MS);
  }

  hide() {
    clearTimeout(this.timer);
    this.el.hidden = true;
  }
}
