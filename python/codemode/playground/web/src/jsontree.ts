// A collapsible JSON tree: objects and arrays are <details> (open to `openDepth`), leaves are
// coloured spans; collapsed parts stay in the DOM, so textContent holds every value.

import { h } from "./dom";

function leaf(value: unknown): HTMLElement {
  if (value === null) return h("span", { class: "j-null" }, "null");
  switch (typeof value) {
    case "string":
      return h("span", { class: "j-str" }, JSON.stringify(value));
    case "number":
      return h("span", { class: "j-num" }, String(value));
    case "boolean":
      return h("span", { class: "j-bool" }, String(value));
    case "undefined":
      return h("span", { class: "j-null" }, "undefined");
    default:
      return h("span", {}, String(value));
  }
}

function node(value: unknown, depth: number, openDepth: number): HTMLElement {
  if (value === null || typeof value !== "object") return leaf(value);
  const isArray = Array.isArray(value);
  const entries: [string, unknown][] = isArray
    ? (value as unknown[]).map((v, i) => [String(i), v])
    : Object.entries(value as Record<string, unknown>);
  const [open, close] = isArray ? ["[", "]"] : ["{", "}"];
  if (entries.length === 0) return h("span", { class: "j-punct" }, open + close);
  const count = isArray ? `${entries.length} item${entries.length === 1 ? "" : "s"}` : `${entries.length} key${entries.length === 1 ? "" : "s"}`;
  const list = h("ul", { class: "j-list" });
  for (const [key, child] of entries) {
    list.append(
      h(
        "li",
        {},
        isArray ? h("span", { class: "j-index" }, key) : h("span", { class: "j-key" }, key),
        h("span", { class: "j-punct" }, ": "),
        node(child, depth + 1, openDepth),
      ),
    );
  }
  const details = h(
    "details",
    { class: "j-node", open: depth < openDepth },
    h("summary", {}, h("span", { class: "j-punct" }, open), h("span", { class: "j-count" }, count)),
    list,
    h("span", { class: "j-punct" }, close),
  );
  return details;
}

export function jsonTree(value: unknown, openDepth = 3): HTMLElement {
  return h("div", { class: "json-tree" }, node(value, 0, openDepth));
}
