// CURVE on the bus: key files (format, modes, atomic writes), and admission through our ZAP
// handler with real sockets: an allowed subscriber receives, everyone else receives nothing.
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { capability, curveKeyPair } from "zeromq";
import { BusClient, type BusEvent } from "../../src/bus/client/index.ts";
import { parseCertificate, readPublicKey, readSecretKeyFile, writeKeyPair, type ZapDecision } from "../../src/bus/curve.ts";
import { BusPublisher } from "../../src/bus/publisher.ts";
import { isZ85Key, z85Decode, z85Encode } from "../../src/bus/z85.ts";

let dir: string;
let n = 0;
const freshDir = (): string => join(dir, `k${++n}`);
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "perceptd-curve-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const mode = async (p: string): Promise<number> => (await stat(p)).mode & 0o777;

describe("z85", () => {
  it("matches the RFC 32 test vector and round-trips CURVE keys", () => {
    const hello = Uint8Array.from([0x86, 0x4f, 0xd2, 0x6f, 0xb5, 0x59, 0xf7, 0x5b]);
    expect(z85Encode(hello)).toBe("HelloWorld");
    expect(z85Decode("HelloWorld")).toEqual(hello);
    const { publicKey, secretKey } = curveKeyPair();
    for (const k of [publicKey, secretKey]) {
      expect(isZ85Key(k)).toBe(true);
      expect(z85Decode(k)).toHaveLength(32);
      expect(z85Encode(z85Decode(k))).toBe(k);
    }
    expect(() => z85Decode("Hello Worl")).toThrow(/" " at 5 is not a Z85 character/);
    expect(isZ85Key("x".repeat(39))).toBe(false);
  });
});

describe("key files", () => {
  it("writes a pair: NAME.key_secret with mode 0600 and NAME.key with 0644, in the czmq/pyzmq certificate format", async () => {
    const d = freshDir();
    await mkdir(d);
    const w = await writeKeyPair(d, "server");
    expect(w.secretFile).toBe(join(d, "server.key_secret"));
    expect(w.publicFile).toBe(join(d, "server.key"));
    expect(await mode(w.secretFile)).toBe(0o600);
    expect(await mode(w.publicFile)).toBe(0o644);
    const secretText = await readFile(w.secretFile, "utf8");
    expect(secretText).toMatch(/^metadata\ncurve\n {4}public-key = "[^"]{40}"\n {4}secret-key = "[^"]{40}"\n$/m);
    expect(await readFile(w.publicFile, "utf8"), "the public file holds no secret").not.toMatch(/secret-key/);
    const pub = parseCertificate(await readFile(w.publicFile, "utf8"), "f");
    expect(pub).toEqual({ publicKey: w.publicKey });
    const pair = await readSecretKeyFile(w.secretFile);
    expect(pair.publicKey).toBe(w.publicKey);
    expect(isZ85Key(pair.secretKey)).toBe(true);
    expect(await readPublicKey(w.publicFile)).toBe(w.publicKey);
    expect(await readPublicKey(w.secretFile), "either file of the pair names the public key").toBe(w.publicKey);
    expect(await readPublicKey(w.publicKey)).toBe(w.publicKey);
    expect((await readdir(d)).sort(), "no temporary files left").toEqual(["server.key", "server.key_secret"]);
  });

  it("keeps 0600 whatever the umask, refuses to overwrite without force, replaces with it", async () => {
    const d = freshDir();
    await mkdir(d);
    const old = process.umask(0o000);
    try {
      const first = await writeKeyPair(d, "a");
      expect(await mode(first.secretFile)).toBe(0o600);
      await expect(writeKeyPair(d, "a")).rejects.toThrow(/a\.key_secret exists; pass --force/);
      expect((await readSecretKeyFile(first.secretFile)).publicKey, "untouched").toBe(first.publicKey);
      const second = await writeKeyPair(d, "a", { force: true });
      expect(second.publicKey).not.toBe(first.publicKey);
      expect((await readSecretKeyFile(second.secretFile)).publicKey).toBe(second.publicKey);
      expect(await mode(second.secretFile)).toBe(0o600);
    } finally {
      process.umask(old);
    }
    await expect(writeKeyPair(d, "../evil")).rejects.toThrow(/key name/);
  });

  it.each(["640", "604", "660", "644", "610", "601"])("refuses a secret key file with mode 0%s, naming the file and its mode", async (octal) => {
    const m = parseInt(octal, 8);
    const d = freshDir();
    await mkdir(d);
    const w = await writeKeyPair(d, "s");
    await chmod(w.secretFile, m);
    const shown = `0${octal}`;
    await expect(readSecretKeyFile(w.secretFile, "bus.curve.serverSecretKeyFile")).rejects.toThrow(
      `bus.curve.serverSecretKeyFile ${w.secretFile} has mode ${shown}: group or others may read or change the secret key; run chmod 600 ${w.secretFile}`,
    );
  });

  it("accepts a secret key file only its owner can use (0400, 0600, 0700)", async () => {
    const d = freshDir();
    await mkdir(d);
    const w = await writeKeyPair(d, "s");
    for (const m of [0o400, 0o600, 0o700]) {
      await chmod(w.secretFile, m);
      expect((await readSecretKeyFile(w.secretFile)).publicKey).toBe(w.publicKey);
    }
  });

  it("says what is wrong with a missing file, a public key file, or a malformed key", async () => {
    const d = freshDir();
    await mkdir(d);
    await expect(readSecretKeyFile(join(d, "none.key_secret"))).rejects.toThrow(/none\.key_secret does not exist \(perceptd keys/);
    const w = await writeKeyPair(d, "p");
    await chmod(w.publicFile, 0o600);
    await expect(readSecretKeyFile(w.publicFile)).rejects.toThrow(/has no secret-key line/);
    const bad = join(d, "bad.key_secret");
    await writeFile(bad, 'curve\n    public-key = "short"\n', { mode: 0o600 });
    await expect(readSecretKeyFile(bad)).rejects.toThrow(/public-key is not a Z85 CURVE key/);
    await expect(readPublicKey("neither-a-key-nor-a-file")).rejects.toThrow(/is neither a Z85 key \(40 characters\) nor a readable key file/);
  });
});

describe.skipIf(!capability.curve)("CURVE bus", () => {
  interface Keys {
    serverFile: string;
    serverPublic: string;
    allowed: { publicKey: string; secretKey: string };
  }
  async function keys(): Promise<Keys> {
    const d = freshDir();
    await mkdir(d);
    const server = await writeKeyPair(d, "server");
    return { serverFile: server.secretFile, serverPublic: server.publicKey, allowed: curveKeyPair() };
  }

  function consume(client: BusClient): BusEvent[] {
    cleanups.push(() => client.close());
    const events: BusEvent[] = [];
    void (async () => {
      for await (const ev of client) if (ev.kind === "message") events.push(ev);
    })();
    return events;
  }

  it("delivers to an allowed subscriber only: a refused key, a wrong server key and no CURVE at all receive nothing", async () => {
    const k = await keys();
    const decisions: ZapDecision[] = [];
    const pub = await BusPublisher.bind(["tcp://127.0.0.1:0"], {
      sendHighWaterMark: 1000,
      lingerMs: 0,
      curve: { enabled: true, serverSecretKeyFile: k.serverFile, allowedClientKeys: [k.allowed.publicKey] },
      onAuth: (d) => decisions.push(d),
    });
    cleanups.push(() => pub.close());
    expect(pub.curvePublicKey).toBe(k.serverPublic);
    const ep = pub.endpoints;
    const refused = curveKeyPair();
    const allowed = consume(new BusClient({ endpoints: ep, topics: ["detections"], curve: { serverPublicKey: k.serverPublic, ...k.allowed } }));
    const notListed = consume(new BusClient({ endpoints: ep, topics: ["detections"], curve: { serverPublicKey: k.serverPublic, ...refused } }));
    const wrongServer = consume(new BusClient({ endpoints: ep, topics: ["detections"], curve: { serverPublicKey: curveKeyPair().publicKey, ...k.allowed } }));
    const plain = consume(new BusClient({ endpoints: ep, topics: ["detections"] }));

    const timer = setInterval(() => pub.publishMessage("detections", { model: "m", frameWidthPx: 1, frameHeightPx: 1, detections: [] }), 20);
    cleanups.push(() => clearInterval(timer));
    await vi.waitFor(() => expect(allowed.length).toBeGreaterThan(10), { timeout: 10_000 });
    // Every other subscriber has had as long, and then more, to get anything.
    await new Promise((r) => setTimeout(r, 500));
    expect(allowed.every((e) => e.e2e === "OK" || e === allowed[0])).toBe(true);
    expect(notListed, "key not in allowedClientKeys").toHaveLength(0);
    expect(wrongServer, "wrong server key").toHaveLength(0);
    expect(plain, "no CURVE").toHaveLength(0);

    expect(decisions).toContainEqual(expect.objectContaining({ clientKey: k.allowed.publicKey, allowed: true, reason: "OK" }));
    expect(decisions).toContainEqual(expect.objectContaining({ clientKey: refused.publicKey, allowed: false, reason: "client key not allowed", address: "127.0.0.1" }));
    const refusals = decisions.filter((d) => d.clientKey === refused.publicKey);
    expect(refusals.length, "a retrying refused client is reported once a minute, not per retry").toBe(1);
  });

  it("refuses to start with a key file others can read, naming the file and its mode", async () => {
    const k = await keys();
    await chmod(k.serverFile, 0o644);
    await expect(
      BusPublisher.bind(["tcp://127.0.0.1:0"], { sendHighWaterMark: 10, curve: { enabled: true, serverSecretKeyFile: k.serverFile, allowedClientKeys: [k.allowed.publicKey] } }),
    ).rejects.toThrow(`bus.curve.serverSecretKeyFile ${k.serverFile} has mode 0644`);
  });

  it("refuses to start with nobody admitted or a malformed client key", async () => {
    const k = await keys();
    const bind = (allowedClientKeys: string[]) =>
      BusPublisher.bind(["tcp://127.0.0.1:0"], { sendHighWaterMark: 10, curve: { enabled: true, serverSecretKeyFile: k.serverFile, allowedClientKeys } });
    await expect(bind([])).rejects.toThrow(/allowedClientKeys is empty: no subscriber could connect/);
    await expect(bind(["not-a-key"])).rejects.toThrow(/"not-a-key" is not a Z85 CURVE public key/);
  });

  it("runs two CURVE publishers in one process, each with its own ZAP handler", async () => {
    const [a, b] = [await keys(), await keys()];
    const bind = (k: Keys) =>
      BusPublisher.bind(["tcp://127.0.0.1:0"], { sendHighWaterMark: 10, lingerMs: 0, curve: { enabled: true, serverSecretKeyFile: k.serverFile, allowedClientKeys: [k.allowed.publicKey] } });
    const pa = await bind(a);
    cleanups.push(() => pa.close());
    const pb = await bind(b);
    cleanups.push(() => pb.close());
    // a's client key is not on b's list
    const onB = consume(new BusClient({ endpoints: pb.endpoints, topics: ["alerts"], curve: { serverPublicKey: b.serverPublic, ...a.allowed } }));
    const onA = consume(new BusClient({ endpoints: pa.endpoints, topics: ["alerts"], curve: { serverPublicKey: a.serverPublic, ...a.allowed } }));
    const timer = setInterval(() => {
      pa.publishMessage("alerts", { alerts: [] });
      pb.publishMessage("alerts", { alerts: [] });
    }, 20);
    cleanups.push(() => clearInterval(timer));
    await vi.waitFor(() => expect(onA.length).toBeGreaterThan(3), { timeout: 10_000 });
    await new Promise((r) => setTimeout(r, 300));
    expect(onB).toHaveLength(0);
  });
});
