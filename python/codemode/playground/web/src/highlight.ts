// Static TypeScript highlighting (no editor) for code shown in chat cards and skill cards:
// the same parser and token classes (`tok-*`) as the editors, so the colours match.

import { typescriptLanguage } from "@codemirror/lang-javascript";
import { classHighlighter, highlightCode } from "@lezer/highlight";
import { h } from "./dom";

export function highlightedCode(code: string, attrs: Record<string, string> = {}): HTMLPreElement {
  const pre = h("pre", { class: "code", ...attrs });
  const tree = typescriptLanguage.parser.parse(code);
  highlightCode(
    code,
    tree,
    classHighlighter,
    (text, classes) => pre.append(classes ? h("span", { class: classes }, text) : text),
    () => pre.append("\n"),
  );
  return pre;
}
