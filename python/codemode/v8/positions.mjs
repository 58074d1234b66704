// Positions in a program's own text, shared by the V8 engine (host.mjs) and the Cloudflare
// Worker (inlined there by codemode.cloudflare.bundle): the engine compiles the program after
// a prefix on its line 1, and reports frames of the file "program.ts".
const PROGRAM_FILE = "program.ts";

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
