// Entry point: load /api/info, set up the program and chat modes and the skills panel, and
// switch modes with the header tabs (the mode is kept in the URL hash: #program, #chat).

import { api } from "./api";
import { setupChat } from "./chat";
import { byTestId, h } from "./dom";
import { setupProgram } from "./program";
import { setupSkills } from "./skills";

type Mode = "program" | "chat";

function setupModes(): void {
  const tabs: Record<Mode, HTMLElement> = { program: byTestId("mode-program"), chat: byTestId("mode-chat") };
  const show = (mode: Mode) => {
    for (const [name, tab] of Object.entries(tabs) as [Mode, HTMLElement][]) {
      const active = name === mode;
      tab.setAttribute("aria-selected", String(active));
      document.getElementById(`${name}-view`)!.hidden = !active;
    }
    document.body.dataset.mode = mode;
    if (location.hash !== `#${mode}`) history.replaceState(null, "", `${location.pathname}${location.search}#${mode}`);
  };
  tabs.program.addEventListener("click", () => show("program"));
  tabs.chat.addEventListener("click", () => show("chat"));
  show(location.hash === "#chat" ? "chat" : "program");
}

function setupReferenceTabs(): void {
  const buttons = document.querySelectorAll<HTMLButtonElement>("[data-ref-tab]");
  for (const button of buttons) {
    button.addEventListener("click", () => {
      for (const other of buttons) {
        const active = other === button;
        other.setAttribute("aria-selected", String(active));
        document.getElementById(other.dataset.refTab!)!.hidden = !active;
      }
    });
  }
}

async function main(): Promise<void> {
  setupModes();
  setupReferenceTabs();
  try {
    const info = await api.info();
    document.getElementById("store")!.textContent = `store: ${info.store}`;
    setupProgram(info);
    setupChat(info);
    setupSkills();
    document.body.classList.remove("loading");
  } catch (error) {
    document.body.classList.remove("loading");
    document.body.prepend(
      h("div", { class: "banner", testid: "load-error" }, `Could not load the playground: ${(error as Error).message}`),
    );
  }
}

void main();
