// The skills panel: kept live from the skills stream (reconnecting after a drop); each skill
// is updated in place, so a typed input or a shown output survives updates. Run, Approve, Delete.

import { type AgEvent, api, type Skill } from "./api";
import { byTestId, compact, h, ms, replace } from "./dom";
import { highlightedCode } from "./highlight";
import { jsonTree } from "./jsontree";

const RECONNECT_MS = 1500;

class SkillItem {
  readonly el: HTMLLIElement;
  private skill: Skill;
  private trust = h("span", { class: "trust", testid: "skill-trust" });
  private version = h("span", { class: "skill-version", testid: "skill-version" });
  private runs = h("span", { class: "skill-runs", testid: "skill-runs" });
  private description = h("p", { class: "skill-desc" });
  private code = h("div", { class: "skill-code", testid: "skill-code" });
  private schemas = h("div", { class: "skill-schemas" });
  private input = h("textarea", { class: "skill-input", testid: "skill-input", rows: 2, spellcheck: "false" });
  private approve = h("button", { class: "btn small", testid: "skill-approve" }, "Approve");
  private output = h("div", { class: "skill-output", testid: "skill-output" });
  private shownCode = "";

  constructor(skill: Skill) {
    this.skill = skill;
    this.input.value = "{}";
    const name = skill.name;
    this.el = h(
      "li",
      { class: "skill", testid: "skill-item", "data-name": name },
      h("div", { class: "skill-head" }, h("span", { class: "skill-name" }, name), this.version, this.trust),
      this.description,
      this.runs,
      h("details", { class: "skill-more" }, h("summary", {}, "code"), this.code),
      h("details", { class: "skill-more" }, h("summary", {}, "input / output schema"), this.schemas),
      this.input,
      h(
        "div",
        { class: "skill-actions" },
        h("button", { class: "btn small primary", testid: "skill-run", onclick: () => void this.run() }, "Run"),
        this.approve,
        h("button", { class: "btn small danger", testid: "skill-delete", onclick: () => void this.remove() }, "Delete"),
      ),
      this.output,
    );
    this.approve.addEventListener("click", () => void this.doApprove());
    this.update(skill);
  }

  update(skill: Skill): void {
    this.skill = skill;
    const level = skill.trustLevel;
    this.trust.textContent = level;
    this.trust.className = `trust trust-${level}`;
    this.version.textContent = `v${skill.version}`;
    const stats = skill.stats ?? { runs: 0, successes: 0, failures: 0 };
    const runs = stats.runs ?? 0;
    this.runs.textContent = `${runs} run${runs === 1 ? "" : "s"} · ${stats.successes ?? 0} ok · ${stats.failures ?? 0} failed`;
    this.description.textContent = skill.description ?? "";
    if (skill.code !== this.shownCode) {
      this.shownCode = skill.code ?? "";
      this.code.replaceChildren(highlightedCode(this.shownCode));
    }
    replace(
      this.schemas,
      h("div", { class: "tool-label" }, "input"),
      jsonTree(skill.inputSchema ?? null, 2),
      h("div", { class: "tool-label" }, "output"),
      jsonTree(skill.outputSchema ?? null, 2),
      skill.dependsOn?.length ? h("div", { class: "tool-label" }, `depends on: ${skill.dependsOn.join(", ")}`) : null,
    );
    const trusted = level === "trusted";
    this.approve.hidden = trusted;
    this.approve.disabled = trusted;
  }

  private show(ok: boolean, ...body: (Node | string | null)[]): void {
    this.output.replaceChildren(h("div", { class: `skill-out ${ok ? "ok" : "error"}` }, ...body));
  }

  private async run(): Promise<void> {
    let input: unknown;
    try {
      input = JSON.parse(this.input.value.trim() || "{}");
    } catch (error) {
      this.show(false, `input is not valid JSON: ${(error as Error).message}`);
      return;
    }
    this.output.replaceChildren(h("div", { class: "skill-out" }, "running…"));
    try {
      const out = await api.runSkill(this.skill.name, input);
      const error = out.error;
      const message =
        error && typeof error === "object" && "message" in (error as object)
          ? String((error as { message: unknown }).message)
          : compact(error, 400);
      this.show(
        out.success,
        h("div", { class: "tool-label" }, `${out.success ? "success" : "failed"} · ${ms(out.durationMs)}`),
        out.success ? jsonTree(out.result, 2) : h("div", { class: "tool-error" }, message),
        out.logs?.length ? h("pre", { class: "skill-logs" }, out.logs.join("\n")) : null,
      );
    } catch (error) {
      this.show(false, (error as Error).message);
    }
  }

  private async doApprove(): Promise<void> {
    try {
      this.update(await api.approveSkill(this.skill.name));
    } catch (error) {
      this.show(false, (error as Error).message);
    }
  }

  private async remove(): Promise<void> {
    if (!confirm(`Delete the skill "${this.skill.name}"?`)) return;
    try {
      await api.deleteSkill(this.skill.name);
      this.el.dispatchEvent(new CustomEvent("skill-deleted", { bubbles: true, detail: this.skill.name }));
    } catch (error) {
      this.show(false, (error as Error).message);
    }
  }
}

export function setupSkills(): void {
  const panel = byTestId("skills-panel");
  const list = document.getElementById("skill-list")!;
  const empty = byTestId("skills-empty");
  const count = document.getElementById("skills-count")!;
  const live = document.getElementById("skills-live")!;
  const items = new Map<string, SkillItem>();

  const setLive = (state: "live" | "connecting") => {
    live.textContent = state === "live" ? "live" : "connecting…";
    live.dataset.state = state;
  };

  const refresh = () => {
    empty.hidden = items.size > 0;
    count.textContent = items.size ? String(items.size) : "";
  };

  const render = (skills: Skill[]) => {
    const names = new Set(skills.map((s) => s.name));
    for (const [name, item] of items) {
      if (!names.has(name)) {
        item.el.remove();
        items.delete(name);
      }
    }
    skills.forEach((skill, index) => {
      let item = items.get(skill.name);
      if (item) item.update(skill);
      else {
        item = new SkillItem(skill);
        items.set(skill.name, item);
      }
      if (list.children[index] !== item.el) list.insertBefore(item.el, list.children[index] ?? null);
    });
    refresh();
  };

  panel.addEventListener("skill-deleted", (event) => {
    const name = (event as CustomEvent<string>).detail;
    items.get(name)?.el.remove();
    items.delete(name);
    refresh();
  });

  const onEvent = (event: AgEvent) => {
    if (event.type === "CUSTOM" && event.name === "playground:skills") {
      setLive("live");
      render(event.value?.skills ?? []);
    }
  };

  (async () => {
    const controller = new AbortController();
    window.addEventListener("pagehide", () => controller.abort());
    for (;;) {
      setLive("connecting");
      try {
        await api.skillsStream(onEvent, controller.signal);
      } catch {
        // dropped or refused: try again shortly
      }
      if (controller.signal.aborted) return;
      await new Promise((resolve) => setTimeout(resolve, RECONNECT_MS));
    }
  })();
  refresh();
}
