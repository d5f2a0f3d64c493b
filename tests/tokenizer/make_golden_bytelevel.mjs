// SPDX-License-Identifier: MIT
// Writes golden tokenizations made by @lenml/tokenizers (the JavaScript port of Hugging Face
// tokenizers) for moewb's C++ tokenizer tests.
//
//   node make_golden_bytelevel.mjs TOKENIZER_JSON OUT_JSONL [COUNT=2000] [SEED=1]
//
// Each output line: {"text": ..., "ids": [...with special tokens...], "ids_plain": [...without...]}.
// Inputs are built deterministically from a seeded PRNG: prose, code with tabs and space runs,
// numbers, CJK, emoji and other 4-byte UTF-8, combining marks, special tokens inside text, the empty
// string and one ~100 KB text. JS strings cannot hold invalid UTF-8, so such inputs are not here.
import fs from "node:fs";
import path from "node:path";
import { TokenizerLoader } from "@lenml/tokenizers";

const [tokPath, outPath, countArg, seedArg] = process.argv.slice(2);
const count = Number(countArg || 2000);
let state = BigInt(Number(seedArg || 1)) * 0x9e3779b97f4a7c15n + 1n;
function rand() { // splitmix64 → [0, 1)
  state = (state + 0x9e3779b97f4a7c15n) & 0xffffffffffffffffn;
  let z = state;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & 0xffffffffffffffffn;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & 0xffffffffffffffffn;
  z = z ^ (z >> 31n);
  return Number(z >> 11n) / 2 ** 53;
}
const pick = (a) => a[Math.floor(rand() * a.length)];

const tokenizerJSON = JSON.parse(fs.readFileSync(tokPath, "utf8"));
const cfgPath = path.join(path.dirname(tokPath), "tokenizer_config.json");
const tokenizerConfig = fs.existsSync(cfgPath) ? JSON.parse(fs.readFileSync(cfgPath, "utf8")) : {};
const tok = TokenizerLoader.fromPreTrained({ tokenizerJSON, tokenizerConfig });

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..");
const prose = fs.readFileSync("/usr/share/common-licenses/GPL-3", "utf8").split("\n").filter((l) => l.trim());
const code = fs.readFileSync(path.join(root, "engine/model/forward.cpp"), "utf8").split("\n");
const specials = (tokenizerJSON.added_tokens || []).map((t) => t.content).slice(0, 8);
const cjk = ["你好，世界", "日本語のテキスト", "한국어 문장", "中文分词测试", "東京都", "漢字かなカナ"];
const emoji = ["😀", "🚀🚀", "👩‍💻", "🇩🇪", "🧪x", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "🏳️‍🌈"];
const combining = ["e\u0301", "a\u0308\u0304", "n\u0303o", "\u0915\u094d\u0937", "o\u0332\u0332"];
const spaces = [" ", "  ", "\t", "\t\t", "    ", "\n", "\r\n", "\n\n", "   \n  ", "\u00a0", "\u3000"];
const numbers = () => [String(Math.floor(rand() * 1e9)), (rand() * 1000).toFixed(3), "1,234,567", "0x1F", "3.14e-10", "2024-11-24"];

function piece() {
  switch (Math.floor(rand() * 9)) {
    case 0: case 1: return pick(prose);
    case 2: return pick(code);
    case 3: return pick(numbers());
    case 4: return pick(cjk);
    case 5: return pick(emoji);
    case 6: return pick(combining);
    case 7: return specials.length ? pick(specials) : "<|x|>";
    default: return pick(spaces);
  }
}

const texts = ["", " ", "  ", "\n", "Hello world", "hello  world", "I'm  can't WON'T they'LL", "a\tb\t\tc"];
while (texts.length < count - 1) {
  const n = 1 + Math.floor(rand() * 6);
  let s = "";
  for (let i = 0; i < n; ++i) s += (i && rand() < 0.5 ? pick(spaces) : "") + piece();
  texts.push(s);
}
let big = "";
while (big.length < 100000) big += piece() + pick(spaces);
texts.push(big);

const lines = texts.map((text) => JSON.stringify({
  text,
  ids: tok.encode(text, { add_special_tokens: true }),
  ids_plain: tok.encode(text, { add_special_tokens: false }),
}));
fs.writeFileSync(outPath, lines.join("\n") + "\n");
console.log(`wrote ${lines.length} golden tokenizations to ${outPath}`);
