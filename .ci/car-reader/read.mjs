// An independent reader of the CAR v1 files `amb export` writes: @ipld/car parses
// the file; every block's CID is checked against its bytes (BLAKE3-256, the
// multihash 0x1e of our CIDs; codec dag-cbor 0x71). Prints one JSON line
// {"version", "roots", "blocks", "mismatches"} and exits 1 on any mismatch.
// Usage: node read.mjs FILE.car
import { readFile } from 'node:fs/promises';
import { CarReader } from '@ipld/car';
import { blake3 } from '@noble/hashes/blake3.js';

const file = process.argv[2];
if (!file) {
  console.error('usage: node read.mjs FILE.car');
  process.exit(2);
}
const reader = await CarReader.fromBytes(await readFile(file));
const roots = (await reader.getRoots()).map((cid) => cid.toString());
const blocks = [];
const mismatches = [];
const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
for await (const { cid, bytes } of reader.blocks()) {
  const ok = cid.version === 1 && cid.code === 0x71 && cid.multihash.code === 0x1e
    && equal(cid.multihash.digest, blake3(bytes));
  blocks.push({ cid: cid.toString(), bytes: bytes.length });
  if (!ok) mismatches.push(cid.toString());
}
console.log(JSON.stringify({ version: reader.version, roots, blocks, mismatches }));
process.exit(mismatches.length === 0 ? 0 : 1);
