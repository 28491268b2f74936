// `perceptd keys` as a user runs it: files, modes, refusal to overwrite.
import { mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readPublicKey, readSecretKeyFile } from "../../src/bus/curve.ts";
import { perceptd } from "./run-cli.ts";



let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "perceptd-keys-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("perceptd keys", () => {
  it("writes NAME.key_secret (0600) and NAME.key (0644) into a new folder (0700) and prints the public key", async () => {
    const out = join(dir, "new", "keys");
    const r = await perceptd("keys", "--out-dir", out, "--name", "logger");
    expect(r.code, r.stderr).toBe(0);
    const publicKey = /^public key: (\S{40})$/m.exec(r.stdout)?.[1];
    expect(publicKey).toBeDefined();
    expect(r.stdout).toContain(`wrote ${join(out, "logger.key_secret")} (secret, mode 0600`);
    expect((await readdir(out)).sort()).toEqual(["logger.key", "logger.key_secret"]);
    expect((await stat(out)).mode & 0o777).toBe(0o700);
    expect((await stat(join(out, "logger.key_secret"))).mode & 0o777).toBe(0o600);
    expect((await stat(join(out, "logger.key"))).mode & 0o777).toBe(0o644);
    expect((await readSecretKeyFile(join(out, "logger.key_secret"))).publicKey).toBe(publicKey);
    expect(await readPublicKey(join(out, "logger.key"))).toBe(publicKey);
  });

  it("refuses to replace a key pair unless --force", async () => {
    const out = join(dir, "again");
    const first = await perceptd("keys", "--out-dir", out);
    expect(first.code, first.stderr).toBe(0);
    const again = await perceptd("keys", "--out-dir", out);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/perceptd\.key_secret exists; pass --force/);
    const forced = await perceptd("keys", "--out-dir", out, "--force");
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stdout.split("\n")[0]).not.toBe(first.stdout.split("\n")[0]);
  });

  it("refuses a name that is a path", async () => {
    const r = await perceptd("keys", "--out-dir", dir, "--name", "../escape");
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/key name "\.\.\/escape" must be letters, digits/);
  });
});
