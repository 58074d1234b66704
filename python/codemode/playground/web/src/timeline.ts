// The live timeline of one execution, built from its `code_mode:*` CUSTOM events in arrival
// order: a call is one entry, paired with its result or error by callId (skills by name).

import { compact, h, ms } from "./dom";
import { jsonTree } from "./jsontree";

type Kind = "started" | "console" | "call" | "skill" | "finished";
type State = "pending" | "ok" | "error";

export class Timeline {
  readonly el: HTMLOListElement;
  private start: number | null = null;
  private calls = new Map<number, HTMLLIElement>();
  private skills: { name: string; entry: HTMLLIElement }[] = [];

  constructor(el?: HTMLOListElement) {
    this.el = el ?? h("ol");
    this.el.classList.add("timeline");
  }

  reset(): void {
    this.el.replaceChildren();
    this.start = null;
    this.calls.clear();
    this.skills = [];
  }

  get empty(): boolean {
    return this.el.childElementCount === 0;
  }

  /** Take one CUSTOM event; returns false when it is not a `code_mode:` event. */
  handle(name: string, value: any): boolean {
    if (!name.startsWith("code_mode:")) return false;
    const v = value ?? {};
    const at = typeof v.timestamp === "number" ? v.timestamp : null;
    if (this.start === null && at !== null) this.start = at;
    const time = at !== null && this.start !== null ? `+${ms(at - this.start)}` : "";
    switch (name.slice("code_mode:".length)) {
      case "execution_started":
        this.add("started", "ok", time, h("span", { class: "tl-title" }, "execution started"));
        break;
      case "console": {
        const level = String(v.level ?? "log");
        const entry = this.add(
          "console",
          level === "error" ? "error" : "ok",
          time,
          h("span", { class: `tl-level lvl-${level}` }, level),
          h("span", { class: "tl-console" }, String(v.text ?? "")),
        );
        entry.dataset.level = level;
        break;
      }
      case "external_call": {
        const fn = String(v.function ?? "");
        const short = fn.startsWith("external_") ? fn.slice(9) : fn;
        const entry = this.add(
          "call",
          "pending",
          time,
          h(
            "div",
            { class: "tl-line" },
            h("span", { class: "tl-fn" }, h("span", { class: "tl-prefix" }, fn.slice(0, fn.length - short.length)), short),
            h("span", { class: "tl-args" }, `(${compact(v.args, 200)})`),
            h("span", { class: "tl-dur" }, "…"),
          ),
        );
        entry.dataset.callId = String(v.callId);
        this.calls.set(Number(v.callId), entry);
        break;
      }
      case "external_result":
      case "external_error": {
        const entry = this.calls.get(Number(v.callId));
        if (!entry) break;
        this.finish(entry, name.endsWith("error") ? "error" : "ok", v);
        break;
      }
      case "skill_call": {
        const entry = this.add(
          "skill",
          "pending",
          time,
          h(
            "div",
            { class: "tl-line" },
            h("span", { class: "tl-tag" }, "skill"),
            h("span", { class: "tl-fn" }, String(v.skill ?? "")),
            h("span", { class: "tl-args" }, `(${compact(v.input, 200)})`),
            h("span", { class: "tl-dur" }, "…"),
          ),
        );
        this.skills.push({ name: String(v.skill), entry });
        break;
      }
      case "skill_result":
      case "skill_error": {
        const index = this.skills.findIndex((s) => s.name === String(v.skill));
        if (index < 0) break;
        const [{ entry }] = this.skills.splice(index, 1);
        this.finish(entry, name.endsWith("error") ? "error" : "ok", v);
        break;
      }
      case "skill_registered":
        this.add(
          "skill",
          "ok",
          time,
          h(
            "div",
            { class: "tl-line" },
            h("span", { class: "tl-tag" }, "skill"),
            h("span", { class: "tl-title" }, "registered "),
            h("span", { class: "tl-fn" }, String(v.name ?? "")),
            v.version !== undefined ? h("span", { class: "tl-args" }, ` v${v.version}`) : null,
          ),
        );
        break;
      case "execution_finished": {
        const ok = Boolean(v.success);
        this.add(
          "finished",
          ok ? "ok" : "error",
          time,
          h("span", { class: "tl-title" }, ok ? "finished" : "finished with an error"),
          h("span", { class: "tl-dur" }, ms(v.duration_ms)),
        );
        break;
      }
      default:
        return false;
    }
    return true;
  }

  private add(kind: Kind, state: State, time: string, ...body: (Node | null)[]): HTMLLIElement {
    const entry = h(
      "li",
      { class: `tl-entry tl-${kind}`, testid: "timeline-entry", "data-kind": kind, "data-state": state },
      h("span", { class: "tl-time" }, time),
      h("div", { class: "tl-body" }, ...body),
    );
    this.el.append(entry);
    return entry;
  }

  private finish(entry: HTMLLIElement, state: State, v: any): void {
    entry.dataset.state = state;
    const dur = entry.querySelector(".tl-dur");
    if (dur) dur.textContent = ms(v.duration_ms);
    const body = entry.querySelector(".tl-body")!;
    if (state === "error") {
      body.append(h("div", { class: "tl-out tl-error" }, `✗ ${String(v.error ?? "failed")}`));
    } else {
      body.append(
        h(
          "details",
          { class: "tl-out" },
          h("summary", {}, h("span", { class: "tl-arrow" }, "→ "), compact(v.result, 140)),
          jsonTree(v.result, 1),
        ),
      );
    }
  }
}
