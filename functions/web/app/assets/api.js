// The public API on this origin: JSON in and out, the bearer token from auth.js, problem+json
// errors thrown as ApiError (with the field the problem names).
import { accessToken, signOut } from "./auth.js";

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.field = problem?.field ?? null;
  }
}

export async function api(method, path, body, { contentType = "application/json", keepalive = false } = {}) {
  const headers = { Authorization: `Bearer ${accessToken()}` };
  const init = { method, headers, keepalive };
  if (body !== undefined) {
    headers["Content-Type"] = contentType;
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (response.status === 401) {
    signOut();
    throw new ApiError(401, { title: "Your session has ended: sign in again" });
  }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export const query = (params) => {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== "" && value !== null && value !== undefined) search.append(key, value);
  }
  return search.toString();
};
