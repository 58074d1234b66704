// The skills runtime: a host library (see `IsolateContext.execute(library=...)`), compiled once
// per process. Loaded by python/codemode/skills/sandbox.py, which puts the replay prelude of
// python/codemode/approvals/replay.py (`DETERMINISTIC_JS`) in place of __CM_DETERMINISTIC__.
// The text is one expression (no statement, no trailing semicolon): every engine evaluates it
// as the value of the library.
//
// The engine calls it with the execution's report channel `R` (undefined when it is not open)
// and `C`, the engine's JSON Schema validator: `C(i, value)` is null when `value` is valid by
// the execution's i-th schema (`library_checks`), else `[path, message]` (`[".n", "must be
// integer"]`); a promise of that on V8 and Workers (the validator is in the host there).
// Line 1 of the program calls what it returns, `skills(bodies, names, schemas, detail, max)`,
// with the body function of each skill (null for one refused), `[name, why refused or null]`
// per skill, `[index of the input schema, index of the output schema or null, [key, default]
// of each top-level property with a default, or null]` per skill, whether to report details
// and how many calls may carry them, and gets the `skill_*` functions.
//
// Reports (one line each): `h` (the runtime took the channel); `c<i>:<n>` call `n` (the
// execution's count of skill calls) of skill `i` (`c<i>:<n> <input JSON>` with details);
// `x<i>:<n>` its input was refused (not a run); `r<i>:<n>` it returned (`r<i>:<n> <ms>
// <result JSON>`); `f<i>:<n>` it failed (`f<i>:<n> <ms> <message>`). Before the skills, the
// replay prelude's `d <ms>` (a clock reading) and `t <k>` (a timer fired).
(function (R, C) {
  "use strict";
  const stringify = JSON.stringify, parse = JSON.parse;
  const isArray = Array.isArray, prototypeOf = Object.getPrototypeOf, apply = Reflect.apply;
  const promises = Promise.prototype, then = Promise.prototype.then;
  const now = Date.now;  // the real clock: a replayed run's program sees a recorded one
  let detailed = 0, calls = 0;
  let V, D, M;
  function fail(name, message) {
    const e = new Error(message);
    Object.defineProperty(e, "name", { value: name, writable: true, configurable: true });
    return e;
  }
  function json(v) {
    try { const t = stringify(v); return t === undefined ? "null" : t; } catch (x) { return "null"; }
  }
  function describe(e) {
    try { return e instanceof Error ? e.name + ": " + e.message : String(e); } catch (x) { return "error"; }
  }
  function refuse(name, why) {
    const message = "skill_" + name + ": " + why;
    const refused = function (input) { return Promise.reject(fail("SkillError", message)); };
    return { ["skill_" + name]: refused }["skill_" + name];
  }
  // What is wrong with `value` by schema `index`, as `<name><path> <message>`, or null; a
  // promise of that where the validator answers with one (no await on QuickJS).
  function check(index, value, name) {
    const word = function (bad) { return bad === null ? null : name + bad[0] + " " + bad[1]; };
    const unchecked = function (e) { return name + " cannot be checked (" + describe(e) + ")"; };
    let bad;
    try { bad = C(index, value); } catch (e) { return unchecked(e); }
    if (bad !== null && prototypeOf(bad) === promises) return apply(then, bad, [word, unchecked]);
    return word(bad);
  }
  // `input` with the default of each missing top-level property (a copy, when it has some).
  function fill(input, defaults) {
    if (input === null || typeof input !== "object" || isArray(input)) return input;
    input = parse(stringify(input));
    for (let j = 0; j < defaults.length; j++)
      if (!(defaults[j][0] in input)) input[defaults[j][0]] = parse(stringify(defaults[j][1]));
    return input;
  }
  function wrap(i, name, body) {
    const schemas = V[i];
    return { ["skill_" + name]: async function (input) {
      if (input === undefined) input = {};
      const k = i + ":" + (++calls);  // the skill's index and the call's number, in each report
      const d = D && detailed < M;
      if (d) detailed++;
      if (R) R(d ? "c" + k + " " + json(input) : "c" + k);
      const t = d ? now() : 0;
      let bad = check(schemas[0], input, "input");
      if (bad !== null && typeof bad !== "string") bad = await bad;
      if (bad !== null) {
        const m = "skill_" + name + ": invalid input: " + bad;
        if (R) R(d ? "x" + k + " " + m : "x" + k);
        throw fail("InvalidArgumentsError", m);
      }
      if (schemas[2] !== null) input = fill(input, schemas[2]);
      let out;
      try { out = await body(input); } catch (e) {
        if (R) R(d ? "f" + k + " " + (now() - t) + " " + describe(e) : "f" + k);
        throw e;
      }
      let wrong = schemas[1] === null ? null : check(schemas[1], out, "output");
      if (wrong !== null && typeof wrong !== "string") wrong = await wrong;
      if (wrong !== null) {
        const m = "skill_" + name + " returned an invalid result: " + wrong;
        if (R) R(d ? "f" + k + " " + (now() - t) + " " + m : "f" + k);
        throw fail("SkillError", m);
      }
      if (R) R(d ? "r" + k + " " + (now() - t) + " " + json(out) : "r" + k);
      return out;
    } }["skill_" + name];
  }
  function skills(bodies, names, schemas, detail, max) {
    V = schemas; D = detail; M = max;
    if (R) R("h");
    const made = {};
    for (let i = 0; i < names.length; i++) {
      const [name, why] = names[i];
      made["skill_" + name] = why === null ? wrap(i, name, bodies[i]) : refuse(name, why);
    }
    return made;
  }
  // A run that may pause calls this first (line 1, before the skills), see approvals/replay.py.
  skills.deterministic = (__CM_DETERMINISTIC__)(R || function () {});
  return skills;
})
