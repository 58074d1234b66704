// The server API: typed shapes of its answers, JSON requests, and SSE streams read with fetch
// (EventSource can neither POST nor send the token header).

export interface Engine {
  id: string;
  label: string;
  available: boolean;
  detail: string;
}

export interface Scenario {
  id: string;
  title: string;
  prompt: string;
}

export interface Info {
  engines: Engine[];
  defaults: { timeout: number; memoryLimitMb: number };
  maxima?: { timeout: number; memoryLimitMb: number };
  declarations: string;
  systemPrompt: string;
  example: string;
  tools: string[];
  chat: { offline: boolean; model: string; scenarios: Scenario[] };
  store: string;
}

export interface ProgramError {
  kind: string;
  name: string;
  message: string;
  line: number | null;
  column: number | null;
  frame: string | null;
  stack: string | null;
}

export interface RunResult {
  engine: string;
  success: boolean;
  result: unknown;
  error: ProgramError | null;
  logs: string[];
  durationMs: number;
  toolCalls: number;
  wallMs: number;
}

export interface Skill {
  name: string;
  description: string;
  trustLevel: string;
  version: number | string;
  stats: { runs: number; successes: number; failures: number; [key: string]: unknown };
  code: string;
  inputSchema: unknown;
  outputSchema: unknown;
  dependsOn: string[];
  updatedAt: string | number | null;
}

export interface SkillRunOutput {
  success: boolean;
  result: unknown;
  error: unknown;
  logs: string[];
  durationMs: number;
}

/** One AG-UI event: `type` plus the camelCase fields of that type. */
export interface AgEvent {
  type: string;
  name?: string;
  value?: any;
  [key: string]: any;
}

/** An answer other than 2xx: the message is the server's `{"error"}` when it sent one. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const token = new URLSearchParams(location.search).get("token");

function headers(json: boolean): Record<string, string> {
  const out: Record<string, string> = {};
  if (token) out["X-Codemode-Token"] = token;
  if (json) out["Content-Type"] = "application/json";
  return out;
}

async function send(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<Response> {
  const response = await fetch(path, {
    method,
    headers: headers(body !== undefined),
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
  });
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      const data = await response.json();
      if (data && typeof data.error === "string") message = data.error;
    } catch {
      // not JSON: keep the status line
    }
    throw new ApiError(response.status, message);
  }
  return response;
}

export async function getJSON<T>(path: string): Promise<T> {
  return (await send("GET", path)).json();
}

export async function requestJSON<T>(method: string, path: string, body?: unknown): Promise<T> {
  return (await send(method, path, body)).json();
}

/** Read an SSE answer, calling `onEvent` for each `data:` JSON as it arrives; resolves at its end. */
export async function stream(
  method: string,
  path: string,
  body: unknown,
  onEvent: (event: AgEvent) => void,
  signal?: AbortSignal,
): Promise<void> {
  const response = await send(method, path, body, signal);
  if (!response.body) throw new ApiError(0, "the answer has no body");
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  const flush = (block: string) => {
    const data = block
      .split(/\r?\n/)
      .filter((line) => line.startsWith("data:"))
      .map((line) => line.slice(5).replace(/^ /, ""))
      .join("\n");
    if (data) onEvent(JSON.parse(data));
  };
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    const blocks = buffer.split(/\r?\n\r?\n/);
    buffer = blocks.pop() ?? "";
    blocks.forEach(flush);
  }
  buffer += decoder.decode();
  if (buffer.trim()) flush(buffer);
}

export const api = {
  info: () => getJSON<Info>("/api/info"),
  run: (body: { code: string; engine: string; timeout: number; memoryLimitMb: number }, onEvent: (e: AgEvent) => void) =>
    stream("POST", "/api/run", body, onEvent),
  chat: (threadId: string, message: string, onEvent: (e: AgEvent) => void) =>
    stream("POST", "/api/chat", { threadId, message }, onEvent),
  resetChat: (threadId: string) => requestJSON<unknown>("POST", "/api/chat/reset", { threadId }),
  skillsStream: (onEvent: (e: AgEvent) => void, signal: AbortSignal) =>
    stream("GET", "/api/skills/stream", undefined, onEvent, signal),
  runSkill: (name: string, input: unknown) =>
    requestJSON<SkillRunOutput>("POST", `/api/skills/${encodeURIComponent(name)}/run`, { input }),
  approveSkill: (name: string) => requestJSON<Skill>("POST", `/api/skills/${encodeURIComponent(name)}/approve`),
  deleteSkill: (name: string) => requestJSON<unknown>("DELETE", `/api/skills/${encodeURIComponent(name)}`),
};

/** A fresh conversation id; crypto.randomUUID exists only in secure contexts. */
export function newId(): string {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
