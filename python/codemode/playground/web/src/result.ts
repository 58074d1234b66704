// The outcome of a run: its value as a JSON tree, or its error (kind, name, message, position,
// code frame, stack), under a line of figures (engine, durations, tool calls).

import type { ProgramError, RunResult } from "./api";
import { h, ms } from "./dom";
import { jsonTree } from "./jsontree";

function figures(r: RunResult): HTMLElement {
  const item = (label: string, value: string) => h("span", { class: "fig" }, h("b", {}, value), ` ${label}`);
  return h(
    "div",
    { class: "figures" },
    h("span", { class: `badge ${r.success ? "ok" : "error"}` }, r.success ? "success" : "error"),
    item("execution", ms(r.durationMs)),
    item("wall", ms(r.wallMs)),
    item(r.toolCalls === 1 ? "tool call" : "tool calls", String(r.toolCalls)),
  );
}

export function errorView(error: Pick<ProgramError, "kind" | "message"> & Partial<ProgramError>): HTMLElement {
  const where =
    error.line != null ? `line ${error.line}${error.column != null ? `, column ${error.column}` : ""}` : null;
  return h(
    "div",
    { class: "result-error", testid: "result-error" },
    h(
      "div",
      { class: "err-head" },
      h("span", { class: "err-kind", testid: "error-kind" }, error.kind),
      error.name ? h("span", { class: "err-name" }, error.name) : null,
      where ? h("span", { class: "err-where" }, where) : null,
    ),
    h("div", { class: "err-message", testid: "error-message" }, error.message),
    error.frame ? h("pre", { class: "err-frame", testid: "error-frame" }, error.frame) : null,
    error.stack ? h("details", { class: "err-stack" }, h("summary", {}, "stack"), h("pre", {}, error.stack)) : null,
  );
}

export function renderResult(container: HTMLElement, r: RunResult): void {
  const body =
    r.success || !r.error
      ? h("div", { class: "result-json", testid: "result-json" }, jsonTree(r.result))
      : errorView(r.error);
  container.replaceChildren(figures(r), body);
}

/** A failure of the request or the host, not of the program. */
export function renderFailure(container: HTMLElement, kind: string, message: string): void {
  container.replaceChildren(errorView({ kind, message }));
}

export function renderPlaceholder(container: HTMLElement, text: string): void {
  container.replaceChildren(h("div", { class: "placeholder" }, text));
}
