// SPDX-License-Identifier: MIT
// Golden tokenizations for moewb's C++ tokenizer.json implementation, made by an independent
// implementation: @lenml/tokenizers, the JavaScript port of Hugging Face tokenizers.
//
//   cd tests/tokenizer && npm install && node make_golden.mjs [COUNT=2000] [SEED=1]
//
// Writes into tests/data/tokenizer/:
//   inputs.jsonl       the fixture strings, shared by all tokenizers, one per line:
//                      {"text": "..."}, or {"hex": "...", "text": "..."} for byte strings that are not valid UTF-8
//                      (JS strings cannot hold those: the reference tokenizes what TextDecoder makes
//                      of the bytes, U+FFFD per maximal invalid subpart, and so must moewb).
//   NAME.ids.jsonl     line 1: {"tokenizer": NAME, "tokenizer_json": path, "prefix": [...], "suffix": [...]}
//                      (the ids add_special_tokens puts around the text); then one line per input:
//                      the JSON array of ids without special tokens, or an object
//                      {"ids": [...], "special": [...ids with special tokens, when not prefix+ids+suffix],
//                       "decoded": "what decode(ids) gives, when that is not the input text"}.
//
// Inputs (deterministic, splitmix64): prose (the GPL-3 text on this machine), code (pcre2.h and two
// Python modules on this machine) with tabs and long space runs, numbers in many scripts, CJK / Hangul / Cyrillic / Arabic /
// Devanagari, emoji and other 4-byte UTF-8, combining marks (decomposed and precomposed), contractions,
// Unicode spaces, control characters, every tokenizer's special tokens embedded in text, invalid UTF-8,
// the empty string, long words without spaces and one 100 KB text.
//
// Avoided on purpose (JavaScript's regex engine and Hugging Face's disagree, so no reference exists):
// U+0085 and U+FEFF, which only one of them counts as \s; lone surrogates.
import fs from "node:fs";
import path from "node:path";
import { TokenizerLoader } from "@lenml/tokenizers";

const here = path.dirname(new URL(import.meta.url).pathname);
const root = path.resolve(here, "../..");
const outDir = path.join(root, "tests/data/tokenizer");
const count = Number(process.argv[2] || 2000);
let state = BigInt(Number(process.argv[3] || 1)) * 0x9e3779b97f4a7c15n;

function rand() { // splitmix64 → [0, 1)
  state = (state + 0x9e3779b97f4a7c15n) & 0xffffffffffffffffn;
  let z = state;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & 0xffffffffffffffffn;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & 0xffffffffffffffffn;
  z = z ^ (z >> 31n);
  return Number(z >> 11n) / 2 ** 53;
}
const int = (n) => Math.floor(rand() * n);
const pick = (a) => a[int(a.length)];
const repeat = (s, n) => Array.from({ length: n }, () => s).join("");
const cp = (lo, hi) => String.fromCodePoint(lo + int(hi - lo + 1));

// ---- tokenizers under test ----------------------------------------------------------------------
// Our own random byte-level tokenizer (committed) and the npm packages (Apache-2.0 packaging; the
// vocabularies are the models' own: installed, not committed).
const pkg = (name) => `tests/tokenizer/node_modules/@lenml/tokenizer-${name}/models/tokenizer.json`;
const TOKENIZERS = {
  "random-bytelevel": "tests/data/tokenizer/random-bytelevel.json",
  gpt2: pkg("gpt2"),
  llama2: pkg("llama2"),
  llama3: pkg("llama3"),
  qwen3: pkg("qwen3"),
  deepseek_v3: pkg("deepseek_v3"),
};

function loadTokenizer(rel) {
  const file = path.join(root, rel);
  const tokenizerJSON = JSON.parse(fs.readFileSync(file, "utf8"));
  const cfgPath = path.join(path.dirname(file), "tokenizer_config.json");
  const tokenizerConfig = fs.existsSync(cfgPath) ? JSON.parse(fs.readFileSync(cfgPath, "utf8")) : {};
  return { json: tokenizerJSON, tok: TokenizerLoader.fromPreTrained({ tokenizerJSON, tokenizerConfig }) };
}

// ---- text sources -------------------------------------------------------------------------------
const cps = (s) => Array.from(s); // code points: never split a surrogate pair
const prose = fs.readFileSync("/usr/share/common-licenses/GPL-3", "utf8").split("\n").filter((l) => l.trim());
// Code from files that stay put on this Debian image (not from this repo, which changes).
const codeFiles = ["/usr/include/pcre2.h", "/usr/lib/python3.11/textwrap.py", "/usr/lib/python3.11/json/encoder.py"]
  .filter((f) => fs.existsSync(f));
const code = codeFiles.flatMap((f) => fs.readFileSync(f, "utf8").split("\n"));
const words = [...new Set(prose.join(" ").split(/\s+/).filter((w) => w))];

const specialSet = new Set(["<s>", "</s>", "<unk>", "<|endoftext|>"]);
for (const rel of Object.values(TOKENIZERS)) {
  const file = path.join(root, rel);
  if (!fs.existsSync(file)) continue;
  const added = JSON.parse(fs.readFileSync(file, "utf8")).added_tokens || [];
  for (const t of added.slice(0, 12)) specialSet.add(t.content);
  for (let k = 0; k < 6 && added.length; ++k) specialSet.add(added[(k * 7919) % added.length].content);
}
const specials = [...specialSet].sort();
const nearSpecials = ["<|endoftext", "<s", "s>", "</s", "<|im_start", "<｜begin▁of", "<|", "|>", "<<s>>", "<s><s>", "<0x41>"];

const cjk = ["你好，世界！", "日本語のテキストです。", "한국어 문장입니다", "中文分词测试", "東京都渋谷区", "漢字かなカナ交じり文",
  "「引用」と『二重』", "我们在2024年发布了v3.1版本", "価格は１，２３４円", "𠀀𠀁𪚥", "ｆｕｌｌｗｉｄｔｈ　ｔｅｘｔ"];
const scripts = [[0x4e00, 0x9fff], [0x3040, 0x309f], [0x30a0, 0x30ff], [0xac00, 0xd7a3], [0x0410, 0x044f], [0x0391, 0x03c9],
  [0x0621, 0x064a], [0x0905, 0x0939], [0x0e01, 0x0e30], [0x05d0, 0x05ea], [0x20000, 0x2a6df], [0x1d400, 0x1d6a5]];
const emoji = ["😀", "🚀🚀🚀", "👩‍💻", "👨‍👩‍👧‍👦", "🇩🇪🇯🇵", "👍🏽", "❤️", "☕️", "🧪x", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "🏳️‍🌈", "🙂🙃", "𓀀", "🀄"];
const combining = ["e\u0301", "a\u0308\u0304", "n\u0303o", "\u0915\u094d\u0937", "o\u0332\u0332", "Å", "A\u030a",
  "\u1100\u1161\u11a8", "\u1112\u1161\u11ab", "Ａ\u0301", "ệ", "e\u0323\u0302", "q\u0307\u0323", "\u0301start", "ﬁ", "Ⅻ",
  "ǅ", "ẛ\u0323", "\u00c5\u0327", "\u0344", "\u0f73", "ḱ", "ｶﾞ", "①②", "ℌ", "㎒"];
const spaces = [" ", "  ", "   ", "\t", "\t\t", "    ", "\n", "\r\n", "\n\n", "   \n  ", "\u00a0", "\u3000", "\u2009",
  "\u200b", " \t ", "\v", "\f", "\u2028"];
const contractions = ["I'm", "can't", "WON'T", "they'LL", "we'Re", "She's", "you'VE", "he'd", "'s", "o'clock", "rock'n'roll"];

function number() {
  switch (int(10)) {
    case 0: return String(int(1e9));
    case 1: return (rand() * 1000).toFixed(int(6));
    case 2: return "1,234,567.89";
    case 3: return "0x" + int(2 ** 31).toString(16).toUpperCase();
    case 4: return repeat("9", 1 + int(25));
    case 5: return "٠١٢٣٤٥٦٧٨٩".slice(0, 1 + int(10));
    case 6: return "１２３４５";
    case 7: return "x²+y³=z⁴ ½ ¾ ⅓";
    case 8: return `${int(3000)}-${1 + int(12)}-${1 + int(28)}`;
    default: return "3.14e-10";
  }
}

function randomScript() {
  const [lo, hi] = pick(scripts);
  let s = "";
  const n = 1 + int(12);
  for (let i = 0; i < n; ++i) s += (rand() < 0.15 ? " " : "") + cp(lo, hi);
  return s;
}

function longWord() {
  switch (int(6)) {
    case 0: return repeat("a", 200 + int(1000));
    case 1: return cps(prose.join("")).slice(0, 300 + int(1500)).join("").replace(/\s/g, "");
    case 2: return repeat(pick(emoji), 50 + int(200));
    case 3: return repeat(" ", 30 + int(300)) + "x";
    case 4: return repeat("\t", 5 + int(60)) + repeat("\n", 1 + int(9));
    default: return repeat(pick(["ab", "the", "ing", "▁", "00", "é"]), 100 + int(400));
  }
}

function piece() {
  switch (int(14)) {
    case 0: case 1: return pick(prose).trim();
    case 2: return words.slice(int(words.length - 12)).slice(0, 1 + int(10)).join(" ");
    case 3: return pick(code);
    case 4: return number();
    case 5: return pick(cjk);
    case 6: return randomScript();
    case 7: return pick(emoji);
    case 8: return pick(combining);
    case 9: return pick(specials);
    case 10: return pick(nearSpecials);
    case 11: return pick(contractions);
    case 12: return String.fromCharCode(1 + int(31));
    default: return pick(spaces);
  }
}

// Byte strings with invalid UTF-8 (lone continuation, truncated, overlong, surrogate, > U+10FFFF).
const invalidBits = [[0x80], [0xbf, 0x80], [0xc0, 0x80], [0xc3], [0xe2, 0x82], [0xed, 0xa0, 0x80], [0xf0, 0x9f, 0x98],
  [0xf4, 0x90, 0x80, 0x80], [0xf5], [0xff, 0xfe], [0xe0, 0x80, 0xaf], [0xc3, 0x28], [0xf0, 0x28, 0x8c, 0xbc]];
function invalidBytes() {
  const enc = new TextEncoder();
  const parts = [];
  const n = 1 + int(5);
  for (let i = 0; i < n; ++i) {
    if (rand() < 0.5) parts.push(...pick(invalidBits));
    else parts.push(...enc.encode(rand() < 0.5 ? pick(words) : piece()));
    if (rand() < 0.3) parts.push(0x20);
  }
  return Uint8Array.from(parts);
}

// ---- the fixture set ----------------------------------------------------------------------------
const inputs = [];
const texts = ["", " ", "  ", "\n", "\t", "Hello world", "hello  world", " leading space", "trailing space ",
  "I'm  can't WON'T they'LL", "a\tb\t\tc", "x\r\ny", repeat(" ", 17), "▁", "▁▁a", "<0x41>", "a\u0000b"];
for (const s of specials) texts.push(s, ` ${s} `, `x${s}y`, `${s}${s}`, `${s}\n`);
for (const t of texts) inputs.push({ text: t });
for (let k = 0; k < 60; ++k) inputs.push({ hex: Buffer.from(invalidBytes()).toString("hex") });
for (let k = 0; k < 16; ++k) inputs.push({ text: longWord() });
while (inputs.length < count - 1) {
  const n = 1 + int(4);
  let s = "";
  for (let i = 0; i < n; ++i) s += (i && rand() < 0.5 ? pick(spaces) : "") + piece();
  inputs.push({ text: s });
}
let big = "";
while (big.length < 100000) big += piece() + pick(spaces);
inputs.push({ text: big });

const decoder = new TextDecoder("utf-8");
const textOf = (inp) => (inp.hex !== undefined ? decoder.decode(Buffer.from(inp.hex, "hex")) : inp.text);
for (const inp of inputs)
  for (const c of textOf(inp))
    if (/[\u0085\ufeff]|[\ud800-\udfff]/u.test(c)) throw new Error("fixture holds a character we avoid");

fs.mkdirSync(outDir, { recursive: true });
// A byte string's line also carries, as "text", what TextDecoder makes of it (the expected decode).
fs.writeFileSync(path.join(outDir, "inputs.jsonl"),
  inputs.map((i) => JSON.stringify(i.hex !== undefined ? { hex: i.hex, text: textOf(i) } : i)).join("\n") + "\n");
console.log(`inputs.jsonl: ${inputs.length} strings`);

// ---- expected ids per tokenizer -----------------------------------------------------------------
const eq = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
for (const [name, rel] of Object.entries(TOKENIZERS)) {
  if (!fs.existsSync(path.join(root, rel))) {
    console.log(`${name}: ${rel} missing (npm install), skipped`);
    continue;
  }
  const { tok } = loadTokenizer(rel);
  const empty = tok.encode("", { add_special_tokens: true });
  // prefix/suffix: what add_special_tokens puts around a plain word.
  const probePlain = tok.encode("moewb", { add_special_tokens: false });
  const probeFull = tok.encode("moewb", { add_special_tokens: true });
  const at = probeFull.findIndex((_, i) => eq(probeFull.slice(i, i + probePlain.length), probePlain));
  const prefix = probeFull.slice(0, at), suffix = probeFull.slice(at + probePlain.length);
  const lines = [JSON.stringify({ tokenizer: name, tokenizer_json: rel, prefix, suffix, empty_with_special: empty })];
  let odd = 0;
  for (const inp of inputs) {
    const text = textOf(inp);
    const ids = tok.encode(text, { add_special_tokens: false });
    const full = tok.encode(text, { add_special_tokens: true });
    const decoded = ids.length ? tok.decode(ids, { skip_special_tokens: false, clean_up_tokenization_spaces: false }) : "";
    const o = { ids };
    if (!eq(full, [...prefix, ...ids, ...suffix])) o.special = full;
    if (decoded !== text) o.decoded = decoded;
    if (Object.keys(o).length === 1) lines.push(JSON.stringify(ids));
    else { lines.push(JSON.stringify(o)); ++odd; }
  }
  const out = path.join(outDir, `${name}.ids.jsonl`);
  fs.writeFileSync(out, lines.join("\n") + "\n");
  console.log(`${name}.ids.jsonl: ${inputs.length} tokenizations (${odd} with special/decoded notes), ${fs.statSync(out).size} bytes`);
}
