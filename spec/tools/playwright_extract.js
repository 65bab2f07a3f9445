#!/usr/bin/env node
// The independent extraction spec/playwright_spec.lua checks
// empirical.playwright against: written apart from it, in another language,
// with Node's own JSON.parse and ANSI stripper (util.stripVTControlCharacters)
// instead of cjson and Lua patterns. It implements the rules of the
// lua/empirical/playwright.lua header as read from that text, not its code.
//
//   node spec/tools/playwright_extract.js spec/fixtures/playwright > spec/fixtures/playwright-expected.json
//
// prints, for every *.json report in the directory, {stats, counted, tests,
// failed, flaky, errors} as the Lua module returns them (its `passed` and
// `skipped` are the entries of `tests` with those outcomes: the spec checks
// them against `tests`, so they are not printed twice).
"use strict";
const fs = require("fs");
const path = require("path");
const { stripVTControlCharacters } = require("util");

const CAP = 4096;
const KINDS = ["expected", "unexpected", "flaky", "skipped"];

function capBytes(text) {
  const buf = Buffer.from(text, "utf8");
  if (buf.length <= CAP) return text;
  let end = CAP;
  while (end > 0 && (buf[end] & 0xc0) === 0x80) end--;   // buf[end] is the first byte dropped
  return buf.subarray(0, end).toString("utf8");
}

function textOf(e) {
  if (!e) return undefined;
  for (const key of ["message", "value", "stack"]) if (e[key]) return e[key];
  return undefined;
}

function resultText(r) {
  const many = (r.errors || []).filter((e) => e !== null).map(textOf).filter((t) => t !== undefined);
  return many.length ? many.join("\n\n") : textOf(r.error);
}

function explain(raw) {
  if (raw === undefined) return {};
  const text = stripVTControlCharacters(raw);
  const first = text.split("\n").map((l) => l.trim()).find((l) => l !== "");
  return first === undefined ? {} : { message: capBytes(first), error: capBytes(text) };
}

function extract(report) {
  const out = { counted: {}, tests: [], failed: [], flaky: [], errors: [] };
  KINDS.forEach((k) => { out.counted[k] = 0; });
  const visit = (suite, describes, isFile) => {
    const inside = !isFile && suite.title ? describes.concat([suite.title]) : describes;
    for (const spec of suite.specs || []) {
      for (const test of spec.tests || []) {
        if (out.counted[test.status] !== undefined) out.counted[test.status]++;
        const results = test.results || [];
        const explained = results.map((r) => explain(resultText(r))).filter((x) => x.message !== undefined);
        const last = results[results.length - 1];
        const durations = results.map((r) => r.duration).filter((d) => typeof d === "number" && d >= 0 && isFinite(d));
        const entry = Object.assign({
          title: spec.title,
          path: inside.concat([spec.title]),
          file: spec.file,
          line: spec.line,
          column: spec.column,
          project: test.projectName,
          outcome: test.status,
          status: last && last.status,
          retries: Math.max(results.length - 1, 0),
          duration: durations.length ? durations.reduce((a, b) => a + b, 0) : undefined,
        }, explained[explained.length - 1] || {});
        out.tests.push(entry);
        const list = { unexpected: out.failed, flaky: out.flaky }[test.status];
        if (list) list.push(entry);
      }
    }
    for (const child of suite.suites || []) visit(child, inside, false);
  };
  for (const file of report.suites) visit(file, [], true);
  for (const e of report.errors || []) {
    const x = explain(textOf(e));
    if (x.message !== undefined) out.errors.push(x);
  }
  out.stats = {};
  KINDS.forEach((k) => { out.stats[k] = report.stats ? report.stats[k] : out.counted[k]; });
  return out;
}

const dir = process.argv[2] || path.join(__dirname, "..", "fixtures", "playwright");
const all = {};
for (const name of fs.readdirSync(dir).filter((n) => n.endsWith(".json")).sort()) {
  all[name] = extract(JSON.parse(fs.readFileSync(path.join(dir, name), "utf8")));
}
process.stdout.write(JSON.stringify(all, null, 1) + "\n");
