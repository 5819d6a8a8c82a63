// The app: sign-in, the task list (search, filters, sort, keyset paging as you scroll), quick add,
// complete/reopen, delete with undo, the calendar feed link and live updates.
import { api, query } from "./api.js";
import { accessToken, claims, devSignIn, oidcSignIn, signInSettings, signOut, startAuth } from "./auth.js";
import { openDialog, setupDialog } from "./dialog.js";
import { connectLive } from "./live.js";
import { formatInstant } from "./time.js";

const $ = (id) => document.getElementById(id);
const PAGE = 25;
const UNDO_MS = 6000;
let cursor = null;
let loaded = [];
let loading = null;
let stopLive = null;
let reloadTimer = null;
let moreObserver = null; // loads the next page as the end of the list comes into view
const pendingDeletes = new Map(); // task id -> timer of the delete the user can still undo

async function start() {
  let failure = "";
  try {
    await startAuth();
  } catch (error) {
    failure = error.message;
  }
  $("dev-sign-in").hidden = !signInSettings().dev_sign_in;
  $("oidc-sign-in").hidden = !signInSettings().oidc;
  setupDialog({ saved, remove: removeTask, toggle, skip });
  wire();
  accessToken() && !failure ? showApp() : showSignIn(failure);
}

function wire() {
  $("dev-sign-in").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await devSignIn($("dev-user").value.trim());
      showApp();
    } catch (error) {
      $("sign-in-error").textContent = error.message;
    }
  });
  $("oidc-sign-in").addEventListener("click", () => oidcSignIn());
  $("sign-out").addEventListener("click", () => signOut());
  document.addEventListener("signed-out", () => showSignIn());
  $("quick-add").addEventListener("submit", quickAdd);
  let searchTimer = null;
  $("filters").addEventListener("input", (event) => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => reload(), event.target.id === "search" ? 250 : 0);
  });
  $("filters").addEventListener("submit", (event) => event.preventDefault());
  $("more").addEventListener("click", () => loadMore());
  // infinite scroll: the next page once the "Load more" button scrolls into view
  moreObserver = new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting) && cursor) loadMore();
  }, { rootMargin: "200px" });
  moreObserver.observe($("more"));
  $("feed-button").addEventListener("click", calendarFeed);
  $("feed-copy").addEventListener("click", () => navigator.clipboard?.writeText($("feed-url").value));
  window.addEventListener("pagehide", () => {
    for (const id of pendingDeletes.keys()) commitDelete(id, true);
  });
}

function showSignIn(message = "") {
  stopLive?.();
  stopLive = null;
  $("app").hidden = true;
  $("account").hidden = true;
  $("sign-in").hidden = false;
  $("sign-in-error").textContent = message;
}

function showApp() {
  $("sign-in").hidden = true;
  $("app").hidden = false;
  $("account").hidden = false;
  const me = claims();
  $("who").textContent = `Signed in as ${me.email || me.sub}`;
  reload();
  loadTags();
  stopLive?.();
  stopLive = connectLive(onLiveEvent, (state) => {
    const states = { connected: "Live updates on", reconnecting: "Live updates reconnecting…" };
    $("live-state").textContent = states[state] ?? "Live updates unavailable";
  });
}

function filters() {
  return {
    q: $("search").value.trim(),
    status: $("status").value,
    priority: $("priority-filter").value,
    tag: $("tag-filter").value,
    sort: $("sort").value,
  };
}

// One page of the list: from the top again, as many items as were shown (the filters may have
// changed), or the next page after the cursor. The latest request wins over older ones.
async function fetchPage(more) {
  if (more && (!cursor || loading)) return;
  const generation = (loading = Symbol("page"));
  const size = more ? { limit: PAGE, cursor } : { limit: Math.min(200, Math.max(PAGE, loaded.length)) };
  try {
    const page = await api("GET", `/tasks?${query({ ...filters(), ...size })}`);
    if (loading !== generation) return;
    const kept = more ? loaded : [];
    const known = new Set(kept.map((t) => t.id));
    loaded = [...kept, ...page.items.filter((t) => !known.has(t.id) && !pendingDeletes.has(t.id))];
    cursor = page.next_cursor;
    render();
  } catch (error) {
    toast(error.message);
  } finally {
    if (loading === generation) {
      loading = null;
      // The observer calls back only when the end of the list enters or leaves the view: one that
      // came while this page was loading was dropped, so look again with the list as it is now.
      if (cursor && moreObserver) {
        moreObserver.unobserve($("more"));
        moreObserver.observe($("more"));
      }
    }
  }
}

function reload() {
  return fetchPage(false);
}

function loadMore() {
  return fetchPage(true);
}

async function loadTags() {
  try {
    const { items } = await api("GET", "/tags");
    const select = $("tag-filter");
    const chosen = select.value;
    select.replaceChildren(new Option("Any", ""), ...items.map((t) => new Option(`${t.name} (${t.count})`, t.name)));
    select.value = items.some((t) => t.name === chosen) ? chosen : "";
  } catch {
    // the filter keeps its options
  }
}

function render() {
  const list = $("tasks");
  const focused = document.activeElement?.dataset.focusKey;
  list.replaceChildren(...loaded.map(item));
  if (focused) list.querySelector(`[data-focus-key="${CSS.escape(focused)}"]`)?.focus();
  $("count").textContent = loaded.length ? `${loaded.length}${cursor ? "+" : ""} task${loaded.length === 1 && !cursor ? "" : "s"}` : "No tasks";
  $("more").hidden = !cursor;
}

function item(task) {
  const li = document.createElement("li");
  li.className = `task priority-${task.priority}${task.status === "done" ? " done" : ""}`;
  li.dataset.id = task.id;
  const done = document.createElement("input");
  done.type = "checkbox";
  done.checked = task.status === "done";
  done.setAttribute("aria-label", `Done: ${task.title}`);
  done.dataset.focusKey = `done-${task.id}`;
  done.addEventListener("change", () => toggle(task).catch((error) => toast(error.message)));
  const title = document.createElement("button");
  title.type = "button";
  title.className = "title";
  title.textContent = task.title;
  title.setAttribute("aria-label", `Edit ${task.title}`);
  title.dataset.focusKey = `edit-${task.id}`;
  title.addEventListener("click", () => openDialog(task, title));
  const meta = document.createElement("p");
  meta.className = "meta";
  const bits = [];
  if (task.due_at) bits.push(`Due ${formatInstant(task.due_at, task.timezone)}`);
  if (task.recurrence) bits.push("Repeats");
  if (task.priority !== "none") bits.push(`${task.priority} priority`);
  if (task.reminders.length) bits.push(`${task.reminders.length} reminder${task.reminders.length > 1 ? "s" : ""}`);
  meta.textContent = bits.join(" · ");
  const tags = document.createElement("ul");
  tags.className = "tags";
  tags.setAttribute("aria-label", "Tags");
  tags.append(...task.tags.map((t) => Object.assign(document.createElement("li"), { textContent: `#${t}` })));
  const remove = document.createElement("button");
  remove.type = "button";
  remove.className = "danger";
  remove.textContent = "Delete";
  remove.setAttribute("aria-label", `Delete ${task.title}`);
  remove.addEventListener("click", () => removeTask(task));
  const body = document.createElement("div");
  body.className = "body";
  body.append(title, meta);
  if (task.tags.length) body.append(tags);
  li.append(done, body, remove);
  return li;
}

async function quickAdd(event) {
  event.preventDefault();
  const input = $("quick-text");
  $("quick-error").textContent = "";
  input.removeAttribute("aria-invalid");
  try {
    const task = await api("POST", "/tasks/quick", { text: input.value });
    input.value = "";
    toast(`Added “${task.title}”`);
    upsert(task);
    loadTags();
  } catch (error) {
    $("quick-error").textContent = error.message;
    input.setAttribute("aria-invalid", "true");
  }
}

function upsert(task) {
  const index = loaded.findIndex((t) => t.id === task.id);
  if (index >= 0) loaded[index] = task;
  else loaded.unshift(task);
  render();
  scheduleReload(); // the server's order and filters decide where it belongs
}

function saved(task, { keepOpen = false } = {}) {
  upsert(task);
  loadTags();
  if (!keepOpen) toast(`Saved “${task.title}”`);
}

async function toggle(task) {
  const action = task.status === "done" ? "reopen" : "complete";
  const updated = await api("POST", `/tasks/${task.id}/${action}`);
  toast(action === "complete" ? `Completed “${task.title}”` : `Reopened “${task.title}”`);
  upsert(updated);
  if (action === "complete" && task.recurrence) {
    // the next instance is created shortly after the answer (usually within a second): look
    // again then, also when live updates are off
    for (const ms of [1000, 3000]) setTimeout(reload, ms);
  }
  return updated;
}

async function skip(task) {
  const updated = await api("POST", `/tasks/${task.id}/skip`);
  toast(`Skipped to ${formatInstant(updated.due_at, updated.timezone)}`);
  upsert(updated);
}

// Delete with undo: the task leaves the list at once; the DELETE is sent when the undo offer
// lapses (or the page is left), and Undo simply cancels it.
function removeTask(task) {
  pendingDeletes.set(task.id, setTimeout(() => commitDelete(task.id), UNDO_MS));
  const index = loaded.findIndex((t) => t.id === task.id);
  loaded = loaded.filter((t) => t.id !== task.id);
  render();
  const next = $("tasks").children[Math.min(index, loaded.length - 1)];
  toast(`Deleted “${task.title}”`, {
    label: "Undo",
    run: () => {
      clearTimeout(pendingDeletes.get(task.id));
      pendingDeletes.delete(task.id);
      toast(`Restored “${task.title}”`);
      upsert(task);
    },
  });
  (next?.querySelector("button.title") ?? $("quick-text")).focus();
}

async function commitDelete(id, leaving = false) {
  clearTimeout(pendingDeletes.get(id));
  pendingDeletes.delete(id);
  try {
    await api("DELETE", `/tasks/${id}`, undefined, { keepalive: leaving });
  } catch (error) {
    if (error.status !== 404) toast(error.message);
  }
  loadTags();
}

let toastTimer = null;
function toast(message, action = null) {
  const box = $("toast");
  clearTimeout(toastTimer);
  const text = document.createElement("span");
  text.textContent = message;
  box.replaceChildren(text);
  if (action) {
    const undo = document.createElement("button");
    undo.type = "button";
    undo.textContent = action.label;
    undo.addEventListener("click", () => action.run(), { once: true });
    box.append(undo);
  }
  toastTimer = setTimeout(() => box.replaceChildren(), action ? UNDO_MS : 4000);
}

async function calendarFeed() {
  try {
    const { url } = await api("POST", "/calendar/token");
    $("feed").hidden = false;
    $("feed-url").value = url;
    $("feed-url").focus();
    $("feed-url").select();
  } catch (error) {
    toast(`Calendar feed: ${error.message}`);
  }
}

function scheduleReload() {
  clearTimeout(reloadTimer);
  reloadTimer = setTimeout(reload, 300);
}

// Another tab, device or the assistant changed a task: show it, without a reload of the page.
function onLiveEvent() {
  scheduleReload();
  loadTags();
}

start();
