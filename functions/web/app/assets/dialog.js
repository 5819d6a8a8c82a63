// The task dialog (a modal <dialog>: the browser keeps focus inside, Escape closes it, focus
// returns to the button that opened it): every field of a task, with the next five dates of its
// repeat rule from POST /recurrence/preview, and its reminders.
import { api, ApiError } from "./api.js";
import { browserZone, describeBefore, formatInstant, fromWall, toWall, zones } from "./time.js";

const $ = (id) => document.getElementById(id);
const dialog = $("task-dialog");
const form = $("task-form");
let task = null;
let reminders = [];
let opener = null;
let previewTimer = null;
let actions = {};

export function setupDialog(handlers) {
  actions = handlers; // {saved(task), remove(task), toggle(task), skip(task)}
  for (const zone of zones()) $("f-timezone").add(new Option(zone.replaceAll("_", " "), zone));
  $("f-repeat").addEventListener("change", () => {
    $("rrule-field").hidden = $("f-repeat").value !== "custom";
    schedulePreview();
  });
  for (const id of ["f-rrule", "f-date", "f-time", "f-timezone", "f-basis"]) {
    $(id).addEventListener("input", schedulePreview);
  }
  $("r-kind").addEventListener("change", () => {
    const at = $("r-kind").value === "at";
    for (const el of dialog.querySelectorAll(".r-before")) el.hidden = at;
    dialog.querySelector(".r-at").hidden = !at;
  });
  $("r-add").addEventListener("click", addReminder);
  $("cancel").addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", returnFocus);
  form.addEventListener("submit", save);
  for (const [id, action] of [["toggle-done", "toggle"], ["skip", "skip"]]) {
    $(id).addEventListener("click", () =>
      run(async () => {
        await actions[action](task);
        dialog.close();
      }),
    );
  }
  $("delete").addEventListener("click", () => {
    dialog.close();
    actions.remove(task);
  });
}

// Focus goes back to what opened the dialog, or to the same control re-rendered since (the list
// redraws its rows), or to quick add when the task left the list.
function returnFocus() {
  const key = opener?.dataset.focusKey;
  const again = key ? document.querySelector(`[data-focus-key="${CSS.escape(key)}"]`) : null;
  (opener?.isConnected ? opener : again ?? $("quick-text")).focus();
}

export function openDialog(value, from) {
  task = value;
  opener = from;
  const zone = task.timezone || browserZone();
  $("dialog-title").textContent = `Edit “${task.title}”`;
  $("f-title").value = task.title;
  $("f-description").value = task.description ?? "";
  $("f-priority").value = task.priority;
  $("f-tags").value = task.tags.join(", ");
  $("f-timezone").value = zone;
  const wall = task.due_at ? toWall(task.due_at, zone) : { date: "", time: "" };
  $("f-date").value = wall.date;
  $("f-time").value = wall.time;
  const rule = task.recurrence?.rrule ?? "";
  const preset = [...$("f-repeat").options].some((o) => o.value === rule && rule !== "custom");
  $("f-repeat").value = preset ? rule : "custom";
  $("f-rrule").value = preset ? "" : rule;
  $("rrule-field").hidden = preset;
  $("f-basis").value = task.recurrence?.basis ?? "due";
  reminders = task.reminders.map((r) => ({ ...r }));
  renderReminders();
  $("toggle-done").textContent = task.status === "done" ? "Reopen" : "Complete";
  $("skip").hidden = !task.recurrence || task.status === "done";
  $("dialog-error").textContent = "";
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  schedulePreview();
  dialog.showModal();
}

function rule() {
  const repeat = $("f-repeat").value;
  return repeat === "custom" ? $("f-rrule").value.trim() : repeat;
}

function dueAt() {
  const date = $("f-date").value;
  return date ? fromWall(date, $("f-time").value, $("f-timezone").value) : null;
}

function schedulePreview() {
  clearTimeout(previewTimer);
  previewTimer = setTimeout(preview, 250);
}

async function preview() {
  const list = $("preview");
  $("preview-error").textContent = "";
  const recurrence = rule();
  if (!recurrence) {
    list.replaceChildren();
    return;
  }
  const zone = $("f-timezone").value;
  const body = { recurrence, timezone: zone, count: 5 };
  if (dueAt()) body.start = dueAt();
  try {
    const result = await api("POST", "/recurrence/preview", body);
    if (rule() !== recurrence) return; // changed meanwhile: a newer preview is on its way
    list.replaceChildren(
      ...result.dates.map((d) => Object.assign(document.createElement("li"), { textContent: formatInstant(d, zone) })),
    );
  } catch (error) {
    list.replaceChildren();
    $("preview-error").textContent = error.message;
  }
}

function renderReminders() {
  const items = reminders.map((r, index) => {
    const li = document.createElement("li");
    const zone = $("f-timezone").value;
    const text = r.before !== undefined ? describeBefore(r.before) : `at ${formatInstant(r.at, zone)}`;
    const label = document.createElement("span");
    label.textContent = r.remind_at ? `${text} (${formatInstant(r.remind_at, zone)}, ${r.status})` : text;
    const remove = button("Remove", `Remove reminder ${text}`, () => {
      reminders.splice(index, 1);
      renderReminders();
      $("r-add").focus();
    });
    li.append(label, remove);
    if (r.id && task.status === "open") {
      li.append(button("Snooze 10 min", `Snooze reminder ${text} for 10 minutes`, () => snooze(r)));
    }
    return li;
  });
  $("reminders").replaceChildren(...items);
}

function button(text, label, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  b.setAttribute("aria-label", label);
  b.addEventListener("click", onClick);
  return b;
}

function addReminder() {
  if ($("r-kind").value === "at") {
    const local = $("r-at").value; // wall time in the task's zone
    if (!local) return;
    const [date, time] = local.split("T");
    reminders.push({ at: fromWall(date, time, $("f-timezone").value) });
  } else {
    const amount = Math.max(0, Math.trunc(Number($("r-amount").value) || 0));
    const unit = $("r-unit").value;
    reminders.push({ before: amount === 0 ? "PT0S" : unit === "D" || unit === "W" ? `P${amount}${unit}` : `PT${amount}${unit}` });
  }
  renderReminders();
}

async function snooze(reminder) {
  await run(async () => {
    const updated = await api("POST", `/tasks/${task.id}/reminders/${reminder.id}/snooze`, { for: "PT10M" });
    task = updated;
    reminders = updated.reminders.map((r) => ({ ...r }));
    renderReminders();
    actions.saved(updated, { keepOpen: true });
  });
}

function fields() {
  const recurrence = rule();
  return {
    title: $("f-title").value.trim(),
    description: $("f-description").value || null,
    priority: $("f-priority").value,
    tags: $("f-tags").value.split(",").map((t) => t.trim()).filter(Boolean),
    due_at: dueAt(),
    timezone: $("f-timezone").value,
    recurrence: recurrence ? { rrule: recurrence, basis: $("f-basis").value } : null,
    reminders: reminders.map((r) => (r.before !== undefined ? { before: r.before } : { at: r.at })),
  };
}

async function save(event) {
  event.preventDefault();
  await run(async () => {
    const updated = await api("PATCH", `/tasks/${task.id}`, fields(), { contentType: "application/merge-patch+json" });
    dialog.close();
    actions.saved(updated);
  });
}

// Runs an action; a failure is shown in the dialog, on the field the problem names.
async function run(action) {
  $("dialog-error").textContent = "";
  try {
    await action();
  } catch (error) {
    $("dialog-error").textContent = error.message;
    const field = error instanceof ApiError && error.field ? error.field.split(".")[0] : null;
    const input = { due_at: "f-date", recurrence: "f-rrule" }[field] ?? `f-${field}`;
    if (field && $(input)) {
      $(input).setAttribute("aria-invalid", "true");
      $(input).setAttribute("aria-describedby", "dialog-error");
    }
  }
}
