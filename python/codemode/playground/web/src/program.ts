// Program mode: the editor, engine and limits, Run (streamed into the timeline, then the
// result or error), and Compare (the same program on two engines, one after the other).

import { type AgEvent, ApiError, api, type Info, type RunResult } from "./api";
import { byTestId, h, ms } from "./dom";
import { codeViewer, programEditor } from "./editor";
import { renderFailure, renderPlaceholder, renderResult } from "./result";
import { Timeline } from "./timeline";

type Status = "idle" | "running" | "done" | "failed";

function fillEngines(select: HTMLSelectElement, info: Info, preferred: string | undefined): void {
  for (const engine of info.engines) {
    const text = engine.available ? engine.label : `${engine.label} — ${engine.detail}`;
    select.append(
      h("option", { value: engine.id, disabled: !engine.available, title: engine.detail }, text),
    );
  }
  const available = info.engines.filter((e) => e.available).map((e) => e.id);
  select.value = preferred && available.includes(preferred) ? preferred : (available[0] ?? "");
}

export function setupProgram(info: Info): void {
  const statusEl = byTestId("run-status");
  const runButton = byTestId<HTMLButtonElement>("run-button");
  const compareButton = byTestId<HTMLButtonElement>("compare-button");
  const engineSelect = byTestId<HTMLSelectElement>("engine-select");
  const compareSelect = byTestId<HTMLSelectElement>("compare-select");
  const timeoutInput = byTestId<HTMLInputElement>("timeout-input");
  const memoryInput = byTestId<HTMLInputElement>("memory-input");
  const resultEl = byTestId("result");
  const resultTitle = document.getElementById("result-title")!;
  const compareBody = document.getElementById("compare-body")!;
  const timeline = new Timeline(byTestId<HTMLOListElement>("timeline"));
  const label = (id: string) => info.engines.find((e) => e.id === id)?.label ?? id;

  const available = info.engines.filter((e) => e.available).map((e) => e.id);
  fillEngines(engineSelect, info, available[0]);
  fillEngines(compareSelect, info, available.find((id) => id !== engineSelect.value));
  timeoutInput.value = String(info.defaults.timeout);
  memoryInput.value = String(info.defaults.memoryLimitMb);
  if (info.maxima) {
    timeoutInput.max = String(info.maxima.timeout);
    memoryInput.max = String(info.maxima.memoryLimitMb);
  }
  codeViewer(byTestId("declarations"), info.declarations);
  byTestId("system-prompt").textContent = info.systemPrompt;
  renderPlaceholder(resultEl, "Run the program (Ctrl+Enter) to see its result here.");

  let busy = false;
  const setStatus = (status: Status) => {
    statusEl.textContent = status;
    statusEl.dataset.status = status;
  };
  const setBusy = (value: boolean) => {
    busy = value;
    runButton.disabled = value;
    compareButton.disabled = value;
  };

  /** One streamed run on `engine`: fills the timeline and the result, marks the failing line. */
  async function runOnce(engine: string): Promise<RunResult | null> {
    editor.clearError();
    timeline.reset();
    setStatus("running");
    resultTitle.textContent = `Result · ${label(engine)}`;
    renderPlaceholder(resultEl, `Running on ${label(engine)}…`);
    let result: RunResult | null = null;
    let failure: [string, string] | null = null;
    const onEvent = (event: AgEvent) => {
      if (event.type === "CUSTOM" && event.name === "playground:result") result = event.value as RunResult;
      else if (event.type === "CUSTOM" && event.name) timeline.handle(event.name, event.value);
      else if (event.type === "RUN_ERROR") failure = ["host", String(event.message ?? "the run failed")];
    };
    try {
      await api.run(
        {
          code: editor.code(),
          engine,
          timeout: Number(timeoutInput.value) || info.defaults.timeout,
          memoryLimitMb: Number(memoryInput.value) || info.defaults.memoryLimitMb,
        },
        onEvent,
      );
    } catch (error) {
      failure = [error instanceof ApiError ? "request" : "network", (error as Error).message];
    }
    const r = result as RunResult | null;
    if (r) {
      resultTitle.textContent = `Result · ${label(r.engine || engine)}`;
      renderResult(resultEl, r);
      if (!r.success && r.error?.line != null) editor.markError(r.error.line, r.error.message);
    } else {
      const [kind, message] = failure ?? ["host", "the run ended without a result"];
      renderFailure(resultEl, kind, message);
    }
    setStatus(r?.success && !failure ? "done" : "failed");
    return r;
  }

  async function run(): Promise<void> {
    if (busy) return;
    setBusy(true);
    try {
      await runOnce(engineSelect.value);
    } finally {
      setBusy(false);
    }
  }

  async function compare(): Promise<void> {
    if (busy) return;
    setBusy(true);
    const engines = [engineSelect.value, compareSelect.value];
    const note = h("p", { class: "compare-note" });
    compareBody.replaceChildren(note);
    const results: [string, RunResult | null][] = [];
    try {
      for (const [i, engine] of engines.entries()) {
        note.textContent = `Running on ${label(engine)} (${i + 1} of ${engines.length})…`;
        results.push([engine, await runOnce(engine)]);
      }
      compareBody.replaceChildren(compareTable(results, label));
    } finally {
      setBusy(false);
    }
  }

  const editor = programEditor(byTestId("editor"), info.example, () => void run());
  runButton.addEventListener("click", () => void run());
  compareButton.addEventListener("click", () => void compare());
  setStatus("idle");
}

function compareTable(results: [string, RunResult | null][], label: (id: string) => string): HTMLElement {
  const cell = (text: string, cls = "") => h("td", { class: cls }, text);
  const rows = results.map(([engine, r]) =>
    h(
      "tr",
      { testid: "compare-row", "data-engine": engine },
      h("th", {}, label(engine)),
      r ? cell(r.success ? "yes" : `no (${r.error?.kind ?? "error"})`, r.success ? "ok" : "error") : cell("failed", "error"),
      cell(ms(r?.durationMs), "num"),
      cell(ms(r?.wallMs), "num"),
      cell(r ? String(r.toolCalls) : "–", "num"),
    ),
  );
  const table = h(
    "table",
    { class: "compare-table", testid: "compare-table" },
    h(
      "thead",
      {},
      h("tr", {}, ...["engine", "success", "execution", "wall", "tool calls"].map((t) => h("th", {}, t))),
    ),
    h("tbody", {}, ...rows),
  );
  const timed = results.filter((x): x is [string, RunResult] => x[1] !== null);
  let verdict = "Could not time both engines.";
  if (timed.length === 2) {
    // the engines' own execution times decide; wall time (with the host's share) is shown beside
    const [fast, slow] = [...timed].sort((a, b) => a[1].durationMs - b[1].durationMs);
    const gap = slow[1].durationMs - fast[1].durationMs;
    const ratio = fast[1].durationMs > 0 ? slow[1].durationMs / fast[1].durationMs : Infinity;
    const how = ratio >= 1.5 ? `${Number.isFinite(ratio) ? ratio.toFixed(1) : "∞"}× as fast` : `${Math.round((gap / slow[1].durationMs) * 100)}% less`;
    const wall = `wall time ${ms(fast[1].wallMs)} vs ${ms(slow[1].wallMs)}`;
    verdict =
      fast[0] === slow[0]
        ? `Same engine twice: ${ms(gap)} apart in execution time; ${wall}.`
        : `${label(fast[0])} ran faster: ${ms(gap)} less execution time (${how}); ${wall}.`;
  }
  return h("div", { class: "compare" }, table, h("p", { class: "verdict", testid: "compare-verdict" }, verdict));
}
