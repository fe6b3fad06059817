// A WebSocket that reconnects by itself and notices when it has gone quiet.
//
// Frames are JSON objects in both directions. After a drop it waits 1 s,
// 2 s, 4 s, ... up to 15 s between attempts, starting over once a connection
// opens. A small random extra on each wait keeps many clients that lost the
// server at the same moment from all knocking at the same moment.

const FIRST_DELAY_MS = 1000;
const MAX_DELAY_MS = 15000;
const JITTER_MS = 300;
const PING_EVERY_MS = 20000;
// No frame at all (not even a pong) for this long means the link is dead,
// even if the browser has not noticed yet.
const SILENT_LIMIT_MS = 50000;

export class Socket {
  /**
   * hooks.onOpen()            connected; say hello or resync here
   * hooks.onFrame(frame)      one parsed frame (pongs are kept internal)
   * hooks.onClose({ opened }) the connection ended; `opened` is false if it
   *                           never got as far as opening
   */
  constructor(url, hooks) {
    this.url = url;
    this.hooks = hooks;
    this.ws = null;
    this.attempt = 0;
    this.retryTimer = 0;
    this.pingTimer = 0;
    this.lastHeard = 0;
    this.stopped = true;
    this.retryNow = () => this.#retryNow();
    this.dropNow = () => this.#dropNow();
  }

  get isOpen() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  start() {
    this.stopped = false;
    window.addEventListener("online", this.retryNow);
    window.addEventListener("offline", this.dropNow);
    this.#connect();
  }

  stop() {
    this.stopped = true;
    window.removeEventListener("online", this.retryNow);
    window.removeEventListener("offline", this.dropNow);
    clearTimeout(this.retryTimer);
    if (this.ws) this.#forget(this.ws);
  }

  /** Sends one frame; returns false (and sends nothing) if not connected. */
  send(frame) {
    if (!this.isOpen) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  #connect() {
    const ws = new WebSocket(this.url);
    let opened = false;
    this.ws = ws;

    ws.onopen = () => {
      opened = true;
      this.attempt = 0;
      this.lastHeard = Date.now();
      this.pingTimer = setInterval(() => this.#keepAlive(ws), PING_EVERY_MS);
      this.hooks.onOpen?.();
    };

    ws.onmessage = (event) => {
      this.lastHeard = Date.now();
      const frame = parseFrame(event.data);
      if (frame && frame.type !== "pong") this.hooks.onFrame(frame);
    };

    ws.onclose = () => this.#lost(ws, opened);
  }

  // The connection ended or went silent: tell the owner and try again.
  #lost(ws, opened) {
    if (this.ws !== ws) return;
    this.#forget(ws);
    this.hooks.onClose?.({ opened });
    if (!this.stopped) this.#schedule();
  }

  // Lets go of `ws` at once rather than waiting for its closing handshake,
  // which on a dead link can take minutes.
  #forget(ws) {
    this.ws = null;
    clearInterval(this.pingTimer);
    ws.onopen = ws.onmessage = ws.onclose = null;
    if (ws.readyState < WebSocket.CLOSING) ws.close();
  }

  #schedule() {
    const delay = Math.min(FIRST_DELAY_MS * 2 ** this.attempt, MAX_DELAY_MS);
    this.attempt += 1;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.#connect(), delay + Math.random() * JITTER_MS);
  }

  #keepAlive(ws) {
    if (Date.now() - this.lastHeard > SILENT_LIMIT_MS) {
      this.#lost(ws, true);
    } else {
      this.send({ type: "ping" });
    }
  }

  // The browser says the network is gone: a socket on it is dead even if it
  // has not closed yet, so let go now (sends queue until it is back) rather
  // than after the silence limit.
  #dropNow() {
    if (this.ws) this.#lost(this.ws, this.isOpen);
  }

  // The network came back: skip the rest of the current wait.
  #retryNow() {
    if (this.stopped || this.ws) return;
    clearTimeout(this.retryTimer);
    this.#connect();
  }
}

function parseFrame(data) {
  if (typeof data !== "string") return null;
  try {
    const frame = JSON.parse(data);
    return frame && typeof frame.type === "string" ? frame : null;
  } catch {
    return null;
  }
}
