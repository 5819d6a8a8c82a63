// Wall-clock date and time in an IANA zone <-> UTC instants, with the browser's Intl only.

function parts(instant, timeZone) {
  const format = new Intl.DateTimeFormat("en-CA", {
    timeZone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
  return Object.fromEntries(format.formatToParts(instant).map((p) => [p.type, p.value]));
}

// {date: "2026-11-23", time: "18:00"} of an RFC 3339 instant in `timeZone`.
export function toWall(iso, timeZone) {
  const p = parts(new Date(iso), timeZone);
  return { date: `${p.year}-${p.month}-${p.day}`, time: `${p.hour}:${p.minute}` };
}

const offsetAt = (ms, timeZone) => {
  const p = parts(new Date(ms), timeZone);
  return Date.UTC(+p.year, p.month - 1, +p.day, +p.hour, +p.minute, +p.second) - ms;
};

// The UTC instant ("…Z") of a wall-clock date and time in `timeZone`; the later offset wins in
// a DST overlap, the time after the gap in a DST gap.
export function fromWall(date, time, timeZone) {
  const [y, m, d] = date.split("-").map(Number);
  const [hh, mm] = (time || "00:00").split(":").map(Number);
  const wall = Date.UTC(y, m - 1, d, hh, mm);
  let instant = wall - offsetAt(wall, timeZone);
  instant = wall - offsetAt(instant, timeZone);
  return new Date(instant).toISOString().replace(".000Z", "Z");
}

export function formatInstant(iso, timeZone) {
  return new Intl.DateTimeFormat(undefined, {
    timeZone, weekday: "short", day: "numeric", month: "short", year: "numeric",
    hour: "2-digit", minute: "2-digit",
  }).format(new Date(iso));
}

export const zones = () =>
  typeof Intl.supportedValuesOf === "function" ? ["UTC", ...Intl.supportedValuesOf("timeZone")] : ["UTC"];

export const browserZone = () => Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

// "PT15M" -> "15 minutes before"; the units the dialog offers, and any other duration as is.
const UNITS = { M: "minute", H: "hour", D: "day", W: "week" };
export function describeBefore(duration) {
  const m = /^P(?:T(\d+)([MH])|(\d+)([DW]))$/.exec(duration);
  if (duration === "PT0S") return "at the due time";
  if (!m) return `${duration} before`;
  const n = Number(m[1] ?? m[3]);
  const unit = UNITS[m[2] ?? m[4]];
  return `${n} ${unit}${n === 1 ? "" : "s"} before`;
}
