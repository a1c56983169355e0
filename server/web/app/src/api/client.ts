// The one way the app talks to Homeward: same-origin fetch under /v1, the session
// cookie sent by the browser, and the CSRF token added to every write.

export interface ProblemDetails {
  [key: string]: unknown;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: number | null,
    message: string,
    readonly details: ProblemDetails | null,
  ) {
    super(message);
  }
}

let csrfToken = "";

export function setCsrf(token: string): void {
  csrfToken = token;
}

export interface RequestOptions {
  method?: string;
  json?: unknown;
  body?: BodyInit;
  headers?: Record<string, string>;
}

export async function request(path: string, options: RequestOptions = {}): Promise<Response> {
  const method = options.method ?? "GET";
  const headers: Record<string, string> = {
    Accept: "application/json",
    "X-Requested-With": "XMLHttpRequest",
    ...options.headers,
  };
  let body = options.body;
  if (options.json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(options.json);
  }
  if (method !== "GET" && method !== "HEAD") headers["X-CSRF-Token"] = csrfToken;
  const response = await fetch(path, { method, headers, body, credentials: "same-origin" });
  if (!response.ok) throw await problemOf(response);
  return response;
}

async function problemOf(response: Response): Promise<ApiError> {
  const text = await response.text();
  if ((response.headers.get("content-type") ?? "").includes("xml")) {
    // An OpenRosa answer: its first <message> is what Collect would show.
    const message = new DOMParser().parseFromString(text, "text/xml").querySelector("message");
    return new ApiError(response.status, null, message?.textContent ?? text, null);
  }
  try {
    const problem = JSON.parse(text) as { code?: number; message?: string; details?: ProblemDetails };
    return new ApiError(
      response.status,
      problem.code ?? null,
      problem.message ?? response.statusText,
      problem.details ?? null,
    );
  } catch {
    return new ApiError(response.status, null, text || response.statusText, null);
  }
}

export async function getJson<T>(path: string, headers?: Record<string, string>): Promise<T> {
  return (await (await request(path, { headers })).json()) as T;
}

export async function sendJson<T>(method: string, path: string, json?: unknown): Promise<T> {
  const response = await request(path, { method, json: json ?? {} });
  const text = await response.text();
  return (text ? JSON.parse(text) : {}) as T;
}

export function qs(params: Record<string, string | number | boolean | null | undefined>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

export function enc(segment: string | number): string {
  return encodeURIComponent(String(segment));
}
