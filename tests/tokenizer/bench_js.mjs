// SPDX-License-Identifier: MIT
// Encode throughput of the JavaScript port of Hugging Face tokenizers (@lenml/tokenizers), the
// reference moewb's bench_tokenizer compares itself against in the same run.
//
//   node bench_js.mjs TOKENIZER_JSON DOCS_JSONL [REPS=3]
//
// DOCS_JSONL: one JSON string per line (a document). Every document is encoded without special
// tokens, REPS times over; prints one JSON line:
//   {"bytes": UTF-8 bytes per pass, "tokens": ids per pass, "checksum": FNV-1a of all ids,
//    "best_s": fastest pass in seconds, "mb_per_s": bytes / best_s / 1e6}
import fs from "node:fs";
import path from "node:path";
import { TokenizerLoader } from "@lenml/tokenizers";

const [tokPath, docsPath, repsArg] = process.argv.slice(2);
const reps = Number(repsArg || 3);
const tokenizerJSON = JSON.parse(fs.readFileSync(tokPath, "utf8"));
const cfgPath = path.join(path.dirname(tokPath), "tokenizer_config.json");
const tokenizerConfig = fs.existsSync(cfgPath) ? JSON.parse(fs.readFileSync(cfgPath, "utf8")) : {};
const tok = TokenizerLoader.fromPreTrained({ tokenizerJSON, tokenizerConfig });

const docs = fs.readFileSync(docsPath, "utf8").split("\n").filter((l) => l).map((l) => JSON.parse(l));
const bytes = docs.reduce((n, d) => n + Buffer.byteLength(d, "utf8"), 0);

let best = Infinity, tokens = 0, checksum = 0;
for (let r = 0; r < reps; ++r) {
  let n = 0, h = 0x811c9dc5;
  const t0 = process.hrtime.bigint();
  for (const d of docs) {
    const ids = tok.encode(d, { add_special_tokens: false });
    n += ids.length;
    if (r === 0) for (const id of ids) h = Math.imul(h ^ id, 0x01000193) >>> 0;
  }
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  best = Math.min(best, s);
  if (r === 0) { tokens = n; checksum = h; }
}
console.log(JSON.stringify({ bytes, tokens, checksum, best_s: best, mb_per_s: bytes / best / 1e6 }));
