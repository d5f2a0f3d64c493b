// Cross-check datasets/tokenizer-v2/tokenizer.json with an independent implementation
// (@lenml/tokenizers, a dependency-free fork of transformers.js' tokenizers).
//
//   npm install --prefix /tmp/lenml @lenml/tokenizers@3.7.2     # scratch dir, not the repo
//   /usr/bin/python3 datasets/train_bpe.py --encode datasets/tokenizer-v2/tokenizer.json \
//       datasets/corpus-v2/eval.jsonl /tmp/eval_ids.jsonl
//   LENML_NODE_MODULES=/tmp/lenml/node_modules node datasets/check_tokenizer.mjs \
//       datasets/tokenizer-v2/tokenizer.json datasets/corpus-v2/eval.jsonl /tmp/eval_ids.jsonl
//
// Compares, document by document, the ids produced by the JS tokenizer with the ids
// of the Python encoder (one {"ids":[...]} line per document), checks that the JS
// decoder round-trips each document, and prints agreement statistics.
// Exit status 0 only when every document agrees exactly.
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [tokPath, corpusPath, idsPath] = process.argv.slice(2);
if (!tokPath || !corpusPath || !idsPath) {
  console.error("usage: node check_tokenizer.mjs TOKENIZER_JSON CORPUS_JSONL PY_IDS_JSONL");
  process.exit(2);
}
const nm = process.env.LENML_NODE_MODULES || "/tmp/lenml/node_modules";
const entry = path.join(nm, "@lenml", "tokenizers", "dist", "main.mjs");
const { TokenizerLoader } = await import(pathToFileURL(entry).href);

const tokenizerJSON = JSON.parse(fs.readFileSync(tokPath, "utf8"));
const tokenizer = TokenizerLoader.fromPreTrained({
  tokenizerJSON,
  tokenizerConfig: {
    tokenizer_class: "PreTrainedTokenizer",
    clean_up_tokenization_spaces: false,
    add_bos_token: false,
    add_eos_token: false,
    eos_token: "<|endoftext|>",
    bos_token: "<|endoftext|>",
    unk_token: null,
  },
});

const readLines = (p) => fs.readFileSync(p, "utf8").split("\n").filter((l) => l.trim() !== "");
const docs = readLines(corpusPath).map((l) => JSON.parse(l));
const pyIds = readLines(idsPath).map((l) => JSON.parse(l).ids);
if (docs.length !== pyIds.length) {
  console.error(`document count differs: corpus ${docs.length}, python ids ${pyIds.length}`);
  process.exit(1);
}

let docsEqual = 0, tokensJs = 0, tokensPy = 0, tokensPosEqual = 0, roundTrip = 0, bytes = 0;
const perDomain = {};
const t0 = Date.now();
for (let i = 0; i < docs.length; i++) {
  const { text, domain } = docs[i];
  const js = tokenizer.encode(text, { add_special_tokens: false });
  const py = pyIds[i];
  const d = (perDomain[domain] ??= { docs: 0, equal: 0, tokens: 0, bytes: 0 });
  d.docs++;
  d.tokens += py.length;
  d.bytes += Buffer.byteLength(text, "utf8");
  bytes += Buffer.byteLength(text, "utf8");
  tokensJs += js.length;
  tokensPy += py.length;
  let same = js.length === py.length;
  const n = Math.min(js.length, py.length);
  for (let k = 0; k < n; k++) {
    if (js[k] === py[k]) tokensPosEqual++;
    else same = false;
  }
  if (same) { docsEqual++; d.equal++; }
  else if (docsEqual + 5 > i) {
    let k = 0;
    while (k < n && js[k] === py[k]) k++;
    console.log(`MISMATCH doc ${i} (${domain} ${docs[i].source}) at token ${k}: ` +
      `js ${JSON.stringify(js.slice(k, k + 8))} py ${JSON.stringify(py.slice(k, k + 8))}`);
  }
  const dec = tokenizer.decode(js, { skip_special_tokens: false, clean_up_tokenization_spaces: false });
  if (dec === text) roundTrip++;
}
const secs = (Date.now() - t0) / 1000;
console.log(`documents: ${docs.length}, identical id sequences: ${docsEqual}`);
console.log(`tokens: js ${tokensJs}, python ${tokensPy}, equal at same position ${tokensPosEqual}`);
console.log(`JS decode(encode(text)) == text: ${roundTrip}/${docs.length}`);
console.log(`bytes ${bytes}, bytes/token ${(bytes / tokensPy).toFixed(3)}, js time ${secs.toFixed(1)}s`);
for (const [dom, d] of Object.entries(perDomain).sort()) {
  console.log(`  ${dom.padEnd(10)} docs ${d.docs}  equal ${d.equal}  tokens ${d.tokens}  ` +
    `bytes/token ${(d.bytes / d.tokens).toFixed(3)}`);
}
process.exit(docsEqual === docs.length && roundTrip === docs.length ? 0 : 1);
