// CRC-32C (Castagnoli), the checksum of every bus frame (proto/perceptd.proto says what it
// covers). Castagnoli rather than zlib's CRC-32: better error detection at these message
// sizes, and the same polynomial as iSCSI, ext4 and SCTP, so C and Python consumers have
// hardware-backed implementations at hand (SSE4.2 crc32, ARMv8 crc32c).
//
// Table-driven, one byte per step: a bus frame is a few kilobytes at most, so the 1 KiB
// table beats pulling in a package for slicing-by-8.

/** Reflected form of the Castagnoli polynomial 0x1EDC6F41. */
const POLY_REFLECTED = 0x82f63b78;

const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY_REFLECTED : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/**
 * CRC-32C of `data`: init 0xFFFFFFFF, reflected, final XOR 0xFFFFFFFF, as an unsigned
 * 32-bit number. Pass a previous result as `crc` to continue over a second buffer:
 * crc32c(b, crc32c(a)) === crc32c(a ++ b).
 */
export function crc32c(data: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < data.length; i++) c = TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}
