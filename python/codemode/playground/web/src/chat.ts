// Chat mode: a conversation with the model (or the offline scripted one). Assistant text
// streams in; each tool call is an inline card with its program or arguments, the live
// timeline of its code_mode events, and its result.

import { type AgEvent, api, type Info, newId } from "./api";
import { byTestId, h, replace, stickToBottom } from "./dom";
import { highlightedCode } from "./highlight";
import { jsonTree } from "./jsontree";
import { Timeline } from "./timeline";

type Status = "idle" | "running" | "done" | "failed";

/** Plain text with ``` blocks, `inline code` and **bold**, built as nodes (never as HTML). */
function richText(text: string): Node[] {
  const nodes: Node[] = [];
  text.split(/```(?:\w+)?\n?/).forEach((part, i) => {
    if (i % 2 === 1) {
      nodes.push(highlightedCode(part.replace(/\n$/, "")));
      return;
    }
    part.split(/`([^`\n]+)`/).forEach((piece, j) => {
      if (j % 2 === 1) nodes.push(h("code", {}, piece));
      else {
        piece.split(/\*\*([^*\n]+)\*\*/).forEach((bit, k) => {
          if (k % 2 === 1) nodes.push(h("strong", {}, bit));
          else if (bit) nodes.push(document.createTextNode(bit));
        });
      }
    });
  });
  return nodes;
}

class ToolCard {
  readonly el: HTMLElement;
  readonly timeline = new Timeline();
  private args = "";
  private argsEl = h("div", { class: "tool-args" });
  private resultEl = h("div", { class: "tool-result", testid: "chat-tool-result" });
  private stateEl = h("span", { class: "tool-state" }, "running…");

  constructor(readonly name: string) {
    this.el = h(
      "div",
      { class: "tool-card", testid: "chat-tool-call", "data-tool": name, "data-state": "pending" },
      h(
        "details",
        { open: true },
        h("summary", {}, h("span", { class: "tool-icon" }, "⚙"), h("span", { class: "tool-name" }, name), this.stateEl),
        this.argsEl,
        this.timeline.el,
        this.resultEl,
      ),
    );
  }

  addArgs(delta: string): void {
    this.args += delta;
    let parsed: any;
    try {
      parsed = JSON.parse(this.args);
    } catch {
      this.argsEl.replaceChildren(h("pre", { class: "code" }, this.args));
      return;
    }
    if (parsed && typeof parsed.typescriptCode === "string") {
      this.argsEl.replaceChildren(highlightedCode(parsed.typescriptCode));
    } else if (parsed && typeof parsed === "object" && typeof parsed.code === "string") {
      // register_skill / update_skill: the skill's code highlighted, the rest as a tree
      const { code, ...rest } = parsed;
      this.argsEl.replaceChildren(
        h("div", { class: "tool-label" }, "arguments"),
        jsonTree(rest, 1),
        h("div", { class: "tool-label" }, "code"),
        highlightedCode(code),
      );
    } else {
      this.argsEl.replaceChildren(h("div", { class: "tool-label" }, "arguments"), jsonTree(parsed, 2));
    }
  }

  setResult(content: unknown): void {
    let parsed: any = content;
    if (typeof content === "string") {
      try {
        parsed = JSON.parse(content);
      } catch {
        parsed = content;
      }
    }
    const failed = parsed !== null && typeof parsed === "object" && parsed.success === false;
    this.el.dataset.state = failed ? "error" : "ok";
    this.stateEl.textContent = failed ? "failed" : "done";
    const error = failed ? parsed.error : null;
    const message = error && typeof error === "object" ? `${error.kind ?? "error"}: ${error.message ?? ""}` : error;
    replace(
      this.resultEl,
      h("div", { class: "tool-label" }, failed ? "tool output (failed)" : "tool output"),
      message ? h("div", { class: "tool-error" }, String(message)) : null,
      typeof parsed === "string" ? h("pre", { class: "code" }, parsed) : jsonTree(parsed, 2),
    );
  }
}

export function setupChat(info: Info): void {
  const log = byTestId("chat-log");
  const input = byTestId<HTMLTextAreaElement>("chat-input");
  const sendButton = byTestId<HTMLButtonElement>("chat-send");
  const statusEl = byTestId("chat-status");
  const modelLabel = byTestId("model-label");

  modelLabel.textContent = info.chat.offline
    ? "Offline demo model — scripted, no LLM"
    : `Model: ${info.chat.model}`;
  modelLabel.classList.toggle("offline", info.chat.offline);
  modelLabel.title = info.chat.model;

  let threadId = newId();
  let busy = false;
  const setStatus = (status: Status) => {
    statusEl.textContent = status;
    statusEl.dataset.status = status;
  };

  const scenarios = document.getElementById("scenarios")!;
  for (const scenario of info.chat.scenarios) {
    scenarios.append(
      h(
        "button",
        {
          class: "scenario",
          testid: `scenario-${scenario.id}`,
          title: scenario.prompt,
          onclick: () => {
            if (busy) return;
            input.value = scenario.prompt;
            void send();
          },
        },
        scenario.title,
      ),
    );
  }

  async function send(): Promise<void> {
    const text = input.value.trim();
    if (!text || busy) return;
    busy = true;
    sendButton.disabled = true;
    input.value = "";
    setStatus("running");
    log.append(h("div", { class: "msg user", testid: "chat-message", "data-role": "user" }, text));
    log.scrollTop = log.scrollHeight;

    const messages = new Map<string, { el: HTMLElement; text: string }>();
    const cards = new Map<string, ToolCard>();
    let lastCard: ToolCard | null = null;
    let failure: string | null = null;
    const message = (id: string) => {
      let m = messages.get(id);
      if (!m) {
        m = { el: h("div", { class: "msg assistant", testid: "chat-message", "data-role": "assistant" }), text: "" };
        messages.set(id, m);
        log.append(m.el);
      }
      return m;
    };
    const onEvent = (e: AgEvent) =>
      stickToBottom(log, () => {
        switch (e.type) {
          case "TEXT_MESSAGE_START":
            message(e.messageId);
            break;
          case "TEXT_MESSAGE_CONTENT": {
            const m = message(e.messageId);
            m.text += e.delta ?? "";
            m.el.replaceChildren(...richText(m.text));
            break;
          }
          case "TOOL_CALL_START": {
            const card = new ToolCard(String(e.toolCallName ?? "tool"));
            cards.set(e.toolCallId, card);
            lastCard = card;
            log.append(card.el);
            break;
          }
          case "TOOL_CALL_ARGS":
            cards.get(e.toolCallId)?.addArgs(e.delta ?? "");
            break;
          case "TOOL_CALL_RESULT":
            cards.get(e.toolCallId)?.setResult(e.content);
            break;
          case "CUSTOM": {
            const card = cards.get(e.value?.toolCallId) ?? lastCard;
            if (e.name && card) card.timeline.handle(e.name, e.value);
            break;
          }
          case "RUN_ERROR":
            failure = String(e.message ?? "the run failed");
            break;
        }
      });
    try {
      await api.chat(threadId, text, onEvent);
    } catch (error) {
      failure = (error as Error).message;
    }
    if (failure) log.append(h("div", { class: "chat-error" }, `Error: ${failure}`));
    for (const card of cards.values()) {
      if (failure && card.el.dataset.state === "pending") card.el.dataset.state = "error";
    }
    setStatus(failure ? "failed" : "done");
    busy = false;
    sendButton.disabled = false;
    log.scrollTop = log.scrollHeight;
  }

  sendButton.addEventListener("click", () => void send());
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      void send();
    }
  });
  document.getElementById("chat-reset")!.addEventListener("click", async () => {
    if (busy) return;
    const old = threadId;
    threadId = newId();
    log.replaceChildren();
    setStatus("idle");
    try {
      await api.resetChat(old);
    } catch {
      // a fresh threadId is a fresh conversation either way
    }
  });
  setStatus("idle");
}
