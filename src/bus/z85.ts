// Z85 (ZeroMQ RFC 32), the text form of CURVE keys: 32 bytes <-> 40 characters. zeromq.js
// hands keys out as Z85 but cannot convert them, and the ZAP handler receives a client's key
// as 32 raw bytes. Pure, no native imports: the config schema uses the pattern too.

const ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
const DECODE = new Map([...ALPHABET].map((c, i) => [c, i]));

/** A CURVE key in Z85: exactly 40 characters of the Z85 alphabet. */
export const Z85_KEY_PATTERN = /^[0-9a-zA-Z.\-:+=^!/*?&<>()[\]{}@%$#]{40}$/;

export function isZ85Key(s: string): boolean {
  return Z85_KEY_PATTERN.test(s);
}

/** Encodes bytes whose length is a multiple of 4. */
export function z85Encode(data: Uint8Array): string {
  if (data.length % 4 !== 0) throw new Error(`z85: ${data.length} bytes is not a multiple of 4`);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let out = "";
  for (let i = 0; i < data.length; i += 4) {
    let v = view.getUint32(i, false);
    const chunk = new Array<string>(5);
    for (let k = 4; k >= 0; k--) {
      chunk[k] = ALPHABET[v % 85];
      v = Math.floor(v / 85);
    }
    out += chunk.join("");
  }
  return out;
}

/** Decodes a Z85 string whose length is a multiple of 5; throws on anything else. */
export function z85Decode(s: string): Uint8Array {
  if (s.length % 5 !== 0) throw new Error(`z85: ${s.length} characters is not a multiple of 5`);
  const out = new Uint8Array((s.length / 5) * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < s.length; i += 5) {
    let v = 0;
    for (let k = 0; k < 5; k++) {
      const d = DECODE.get(s[i + k]);
      if (d === undefined) throw new Error(`z85: ${JSON.stringify(s[i + k])} at ${i + k} is not a Z85 character`);
      v = v * 85 + d;
    }
    if (v > 0xffff_ffff) throw new Error(`z85: group at ${i} exceeds 32 bits`);
    view.setUint32((i / 5) * 4, v, false);
  }
  return out;
}
