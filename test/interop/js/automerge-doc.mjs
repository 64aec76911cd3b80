// Opens an Automerge document saved by the Go SDK, prints it as JSON, makes
// a change to it and saves the result, for test/interop's agent-state test.
//
//   node automerge-doc.mjs IN.automerge OUT.automerge
//
// Output: one line, {"json": <the document as loaded>}.
import { readFileSync, writeFileSync } from "node:fs";
import * as A from "@automerge/automerge";

const [input, output] = process.argv.slice(2);
const doc = A.load(new Uint8Array(readFileSync(input)));
console.log(JSON.stringify({ json: doc }));

const changed = A.change(doc, (d) => {
  d.tags.push("from-js");
  A.splice(d, ["bio"], 0, 0, "js: ");
  d.visits.increment(10);
  d.js = { ok: true, n: 2 };
});
writeFileSync(output, A.save(changed));
