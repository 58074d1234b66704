// A program's error as the contract words it, shared by the V8 engine (host.mjs) and the
// Cloudflare Worker (inlined there by codemode.cloudflare.bundle): its kind, its message, and
// its frames at positions in the program's own text (the engine compiles the program after a
// prefix on its line 1, and reports frames of the file "program.ts").
const PROGRAM_FILE = "program.ts";

// V8's own limits that are the program's memory (a stack overflow is reported as `memory` and
// keeps its message); an invalid length asked for (`new Array(-1)`) is the program's error.
export const ENGINE_LIMITS =
  /^(Maximum call stack size exceeded|Invalid string length|Array buffer allocation failed)|^memory limit exceeded/;

// V8 counts lines at \n, \r, \r\n, U+2028 and U+2029 and columns in UTF-16 units; the
// contract counts lines at \n only and columns in characters. Positions in the wrapper
// (line 1 starts with prefix) become positions in the program's own text.
const ODD_TEXT = /[\r\u2028\u2029\ud800-\udbff]/;

export function positionIn(code, prefix) {
  if (!ODD_TEXT.test(code)) {
    return (line, column) => [line, line === 1 ? Math.max(1, column - prefix.length) : column];
  }
  const text = prefix + code;
  const starts = [0];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 13 && text.charCodeAt(i + 1) === 10) continue; // \r\n ends at the \n
    if (c === 10 || c === 13 || c === 0x2028 || c === 0x2029) starts.push(i + 1);
  }
  return (line, column) => {
    const at = Math.min(text.length, (starts[line - 1] ?? 0) + column - 1) - prefix.length;
    if (at < 0) return [1, 1];
    const lineStart = code.lastIndexOf("\n", at - 1) + 1;
    let newlines = 0;
    for (let i = code.indexOf("\n"); i >= 0 && i < lineStart; i = code.indexOf("\n", i + 1)) newlines++;
    let characters = 1;
    for (let i = lineStart; i < at; i++) {
      const c = code.charCodeAt(i);
      if (c < 0xd800 || c > 0xdbff || i + 1 >= at) characters++;
    }
    return [newlines + 1, characters];
  };
}

export function programFrames(stack, position) {
  const frames = [];
  for (const raw of stack.split("\n")) {
    let text = raw.trim();
    if (!text.startsWith("at ")) continue;
    text = text.slice(3);
    if (text.startsWith("async ")) text = text.slice(6);
    const at = text.indexOf(PROGRAM_FILE + ":");
    if (at < 0) continue;
    let fn = text.slice(0, at).trim();
    if (fn.endsWith("(")) fn = fn.slice(0, -1).trim();
    const m = /^(\d+)(?::(\d+))?/.exec(text.slice(at + PROGRAM_FILE.length + 1));
    if (!m) continue;
    const [line, column] = position(Number(m[1]), m[2] ? Number(m[2]) : 1);
    if (fn === "" || fn === "<anonymous>" || fn === "eval") fn = "<program>";
    frames.push([fn, line, column]);
  }
  return frames;
}

// [kind, name, message, frames] of a failure the sandbox described: JSON {kind (a host
// error's, "result" with its cause, "library", "syntax") or null, name, message, stack or
// null}. `run`: {position, names, memoryExceeded, memoryMessage, say}.
export function describeFailure(description, run) {
  const { say } = run;
  let kind, name, message, stack;
  try {
    ({ kind, name, message, stack } = JSON.parse(description));
  } catch {
    return ["runtime", "Error", say("undescribable"), []];
  }
  name = String(name);
  message = String(message);
  if (kind === "result") message = say("result_not_json_because", { cause: message });
  if (kind === "library") return ["runtime", "InternalError", say("library_failed", { cause: message }), []];
  const frames = typeof stack === "string" ? programFrames(stack, run.position) : [];
  if (kind === "syntax") {
    return ["syntax", "SyntaxError", message, frames.slice(0, 1).map((f) => ["<program>", f[1], f[2]])];
  } else if (run.memoryExceeded) {
    // The limit was hit (an allocation or a value for the host refused): the run is a memory
    // error whatever the program made of the refusal, as on QuickJS.
    kind = "memory";
  } else if (kind === "tool" || kind === "invalid_args" || kind === "result") {
    // as tagged by the prelude
  } else if (name === "RangeError" && ENGINE_LIMITS.test(message)) {
    // The stack, or one of V8's own size caps: catchable inside, memory when uncaught.
    kind = "memory";
  } else if (name === "ReferenceError" && /^external_\S+ is not defined$/.test(message)) {
    const missing = message.slice(0, -" is not defined".length);
    const available = run.names.map((n) => "external_" + n);
    message = say("unknown_tool", {
      name: missing,
      available: available.length ? available.join(", ") : say("no_tools"),
    });
    kind = "invalid_args";
  } else {
    kind = "runtime";
  }
  if (kind === "memory" && !ENGINE_LIMITS.test(message)) message = run.memoryMessage;
  return [kind, name, message, frames];
}
