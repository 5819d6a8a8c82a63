// Live updates from GET /live (server-sent events). A ticket from POST /live/tickets opens the
// stream; when the stream drops (network, server restart, expired ticket) a new ticket reopens
// it after a backoff, from the last event seen (last_event_id), and at once when the browser
// comes back online.
import { api } from "./api.js";

const TYPES = ["created", "updated", "completed", "deleted"].map((t) => `dev.dueflow.task.${t}`);
const BACKOFF_MAX = 15000;

export function connectLive(onEvent, onState) {
  let source = null;
  let lastEventId = null;
  let delay = 500;
  let timer = null;
  let stopped = false;

  async function open() {
    clearTimeout(timer);
    if (stopped) return;
    source?.close();
    try {
      const { ticket } = await api("POST", "/live/tickets");
      const params = new URLSearchParams({ ticket });
      if (lastEventId) params.set("last_event_id", lastEventId);
      source = new EventSource(`/live?${params}`);
    } catch (error) {
      return retry(error.status === 404 ? "unavailable" : "reconnecting");
    }
    source.onopen = () => {
      delay = 500;
      onState("connected");
    };
    for (const type of TYPES) {
      source.addEventListener(type, (message) => {
        lastEventId = message.lastEventId || lastEventId;
        try {
          onEvent(JSON.parse(message.data));
        } catch {
          // an event this page cannot read changes nothing it shows
        }
      });
    }
    source.onerror = () => {
      // EventSource would reconnect with the same (spent) ticket: start over with a new one
      source.close();
      retry();
    };
  }

  function retry(state = "reconnecting") {
    if (stopped) return;
    onState(state);
    clearTimeout(timer);
    timer = setTimeout(open, delay);
    delay = Math.min(BACKOFF_MAX, delay * 2);
  }

  const online = () => {
    delay = 500;
    open();
  };
  window.addEventListener("online", online);
  open();
  return () => {
    stopped = true;
    clearTimeout(timer);
    source?.close();
    window.removeEventListener("online", online);
  };
}
