// Desktop notifications for visitor messages while the console is out of
// view. Permission is asked only when the agent presses the button (a user
// gesture), never on load; a refusal hides the button for good.

const PREVIEW_CHARS = 140;

export class Notifier {
  constructor(button) {
    this.button = button;
    this.supported = "Notification" in window;
    button.addEventListener("click", async () => {
      await Notification.requestPermission();
      this.#update();
    });
    this.#update();
  }

  /** Shows a visitor's message if the console is not being looked at. */
  visitorMessage(message, from) {
    if (!this.supported || Notification.permission !== "granted") return;
    if (!document.hidden && document.hasFocus()) return;

    const body = message.body.length > PREVIEW_CHARS
      ? `${message.body.slice(0, PREVIEW_CHARS)}…`
      : message.body;
    // One notification per conversation: a newer message replaces it.
    const shown = new Notification(from || "Visitor", { body, tag: message.conversation_id });
    shown.addEventListener("click", () => {
      window.focus();
      shown.close();
    });
  }

  #update() {
    this.button.hidden = !this.supported || Notification.permission !== "default";
  }
}
