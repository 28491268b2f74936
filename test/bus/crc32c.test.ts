import { describe, expect, it } from "vitest";
import { crc32c } from "../../src/bus/crc32c.ts";

describe("crc32c", () => {
  it("gives the CRC-32C check value and the RFC 3720 (iSCSI) vectors", () => {
    expect(crc32c(Buffer.from("123456789", "ascii"))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(0))).toBe(0);
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i))).toBe(0x46dd794e);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i))).toBe(0x113fdb5c);
  });

  it("continues over a second buffer", () => {
    const all = Buffer.from("The quick brown fox jumps over the lazy dog", "ascii");
    for (const cut of [0, 1, 9, all.length - 1, all.length]) expect(crc32c(all.subarray(cut), crc32c(all.subarray(0, cut)))).toBe(crc32c(all));
  });
});
