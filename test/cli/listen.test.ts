// `perceptd listen` against the real daemon (test/daemon/harness.ts): what an integrator
// sees on the command line, plain and with CURVE.
import { PERCEPTD_ARGV } from "../../src/soak/daemon-process.ts";
import { spawn, type ChildProcess } from "node:child_process";
import { chmod, copyFile, mkdir, mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { capability } from "zeromq";
import { writeKeyPair } from "../../src/bus/curve.ts";
import { baseConfig, DEFAULT_MODEL, freePort, REPO, runDaemon, writeConfig, type RunningDaemon } from "../daemon/harness.ts";

interface Cli {
  child: ChildProcess;
  lines: string[];
  stderr: () => string;
  exited: Promise<number | string>;
  waitForLines(n: number, pred?: (l: string) => boolean, timeoutMs?: number): Promise<string[]>;
}

function perceptd(args: string[]): Cli {
  const child = spawn(PERCEPTD_ARGV[0], [...PERCEPTD_ARGV.slice(1), ...args], { cwd: REPO, stdio: ["ignore", "pipe", "pipe"] });
  const lines: string[] = [];
  let buf = "";
  let err = "";
  child.stdout!.setEncoding("utf8").on("data", (s: string) => {
    buf += s;
    const parts = buf.split("\n");
    buf = parts.pop() ?? "";
    lines.push(...parts);
  });
  child.stderr!.setEncoding("utf8").on("data", (s: string) => (err += s));
  const exited = new Promise<number | string>((res) => child.on("exit", (code, sig) => res(code ?? sig ?? -1)));
  cleanups.push(() => child.exitCode === null && child.kill("SIGKILL"));
  return {
    child,
    lines,
    stderr: () => err,
    exited,
    async waitForLines(n, pred = () => true, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (lines.filter(pred).length < n) {
        if (Date.now() > deadline) throw new Error(`fewer than ${n} matching lines in ${timeoutMs} ms; stdout: ${lines.slice(-5).join("\n")}; stderr: ${err.slice(-2000)}`);
        if (child.exitCode !== null) throw new Error(`listen exited (${child.exitCode}) with fewer than ${n} matching lines; stderr: ${err.slice(-2000)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      return lines.filter(pred);
    },
  };
}

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface JsonLine {
  topic: string;
  e2e: string;
  detail?: string;
  header?: Record<string, unknown>;
  payload?: Record<string, unknown>;
}

const parse = (lines: string[]): JsonLine[] => lines.map((l) => JSON.parse(l) as JsonLine);
const isDetections = (l: string): boolean => l.includes('"topic":"detections"') && !l.includes("NO_NEW_DATA");

async function startDaemon(extra: (port: number) => Record<string, unknown> = () => ({})): Promise<{ d: RunningDaemon; port: number; config: string }> {
  const port = await freePort();
  const config = await writeConfig({ ...baseConfig(port, { type: "testsrc", pattern: "ball", width: 320, height: 240, framerate: 30 }), ...extra(port) });
  const d = runDaemon(["run", "--config", config]);
  cleanups.push(async () => {
    if (d.child.exitCode === null) {
      d.child.kill("SIGINT");
      await d.exited;
    }
  });
  await d.ready();
  return { d, port, config };
}

describe("perceptd listen", () => {
  it("--json prints the daemon's detections, one object per line, with e2e OK and 64-bit values as strings", async () => {
    const { port, config } = await startDaemon();
    const byEndpoint = perceptd(["listen", "--endpoint", `tcp://127.0.0.1:${port}`, "--topic", "detections", "--json", "--count", "6"]);
    // the endpoint from the daemon's own config, as with config/default.yaml
    const byConfig = perceptd(["listen", "--config", config, "--topic", "detections", "--json", "--count", "3"]);
    expect(await byEndpoint.exited, byEndpoint.stderr()).toBe(0);
    expect(await byConfig.exited, byConfig.stderr()).toBe(0);

    const msgs = parse(byEndpoint.lines.filter(isDetections));
    expect(msgs).toHaveLength(6);
    for (const m of msgs) {
      expect(Object.keys(m)).toEqual(["topic", "e2e", "header", "payload"]);
      expect(m.e2e).toBe("OK");
      expect(m.header).toMatchObject({ schemaVersion: 1, dataId: 1, cameraId: "cam0" });
      for (const k of ["counter", "frameSeq", "tIngestMonoNs", "tPublishMonoNs", "wallTimeUnixNs"]) expect(m.header?.[k], `header.${k}`).toMatch(/^\d+$/);
      expect(BigInt(String(m.header?.tPublishMonoNs)) >= BigInt(String(m.header?.tIngestMonoNs))).toBe(true);
      expect(m.payload).toMatchObject({ model: DEFAULT_MODEL, frameWidthPx: 320, frameHeightPx: 240, detections: expect.any(Array) });
    }
    const counters = msgs.map((m) => BigInt(String(m.header?.counter)));
    expect(counters.map((c) => c - counters[0])).toEqual([0n, 1n, 2n, 3n, 4n, 5n]);
    expect(parse(byConfig.lines.filter(isDetections)).map((m) => m.e2e)).toEqual(["OK", "OK", "OK"]);
  });

  it("prints readable lines, and a NO_NEW_DATA line for a topic nobody publishes; SIGINT ends it with exit 0", async () => {
    const { port } = await startDaemon();
    const cli = perceptd(["listen", "-e", `tcp://127.0.0.1:${port}`]);
    // Nobody on this port: the topic goes stale after its 1000 ms.
    const nobody = perceptd(["listen", "-e", `tcp://127.0.0.1:${await freePort()}`, "-t", "alerts"]);
    const [stale] = await nobody.waitForLines(1, (l) => /\balerts\s+NO_NEW_DATA\s+no new data for \d+ ms \(stale after 1000 ms\)$/.test(l));
    expect(stale).toMatch(/^\d\d:\d\d:\d\d\.\d{3}  alerts /);
    nobody.child.kill("SIGINT");
    expect(await nobody.exited).toBe(0);
    // The daemon's alert set, re-sent as state: empty (this camera has no corridor).
    const [alerts] = await cli.waitForLines(1, (l) => /\balerts\s+OK\s+#\d+  no alerts/.test(l));
    expect(alerts).toMatch(/^\d\d:\d\d:\d\d\.\d{3}  alerts /);
    const [health] = await cli.waitForLines(1, (l) => /\bhealth\s+OK\s/.test(l));
    expect(health).toMatch(/health/);
    const [det] = await cli.waitForLines(2, (l) => /\bdetections\s+OK\s+#\d+  cam0 frame \d+  \d+ objects?/.test(l));
    expect(det).toMatch(/age \d+\.\d ms since ingest$/);
    expect(cli.stderr()).toMatch(/listening on tcp:\/\/127\.0\.0\.1:\d+ to detections, health, alerts/);
    cli.child.kill("SIGINT");
    expect(await cli.exited).toBe(0);
  });

  it("says where the endpoint comes from and what is wrong with a flag", async () => {
    const bad = perceptd(["listen", "--topic", "detection"]);
    expect(await bad.exited).toBe(1);
    expect(bad.stderr()).toMatch(/unknown bus topic "detection" \(known: detections, health, alerts\)/);
    const noKeyFile = perceptd(["listen", "-e", "tcp://127.0.0.1:1", "--curve-server-key", "x".repeat(40)]);
    expect(await noKeyFile.exited).toBe(1);
    expect(noKeyFile.stderr()).toMatch(/--curve-server-key needs --curve-key-file/);
  });
});

describe.skipIf(!capability.curve)("perceptd listen with CURVE", () => {
  async function keyFiles(): Promise<{ dir: string; server: Awaited<ReturnType<typeof writeKeyPair>>; client: Awaited<ReturnType<typeof writeKeyPair>> }> {
    const dir = await mkdtemp(join(tmpdir(), "perceptd-listen-keys-"));
    return { dir, server: await writeKeyPair(dir, "server"), client: await writeKeyPair(dir, "client") };
  }

  it("receives with an allowed key pair; without keys, or with a key not listed, it receives nothing", async () => {
    const k = await keyFiles();
    const other = await writeKeyPair(k.dir, "other");
    const { d, port } = await startDaemon((p) => ({
      bus: { endpoints: [`tcp://127.0.0.1:${p}`], curve: { enabled: true, serverSecretKeyFile: k.server.secretFile, allowedClientKeys: [k.client.publicKey] } },
    }));
    const ep = `tcp://127.0.0.1:${port}`;
    const allowed = perceptd(["listen", "-e", ep, "-t", "detections", "--json", "-n", "3", "--curve-server-key", k.server.publicFile, "--curve-key-file", k.client.secretFile]);
    const notListed = perceptd(["listen", "-e", ep, "-t", "detections", "--json", "--curve-server-key", k.server.publicKey, "--curve-key-file", other.secretFile]);
    const plain = perceptd(["listen", "-e", ep, "-t", "detections", "--json"]);
    expect(await allowed.exited, allowed.stderr()).toBe(0);
    expect(parse(allowed.lines.filter(isDetections)).map((m) => m.e2e)).toEqual(["OK", "OK", "OK"]);
    // the others have had as long, and then some
    await new Promise((r) => setTimeout(r, 1000));
    for (const cli of [notListed, plain]) {
      expect(cli.lines.filter(isDetections), "detections received without an allowed key").toEqual([]);
      expect(parse(cli.lines).map((m) => m.e2e), "only the staleness line").toEqual(["NO_NEW_DATA"]);
      cli.child.kill("SIGTERM");
      expect(await cli.exited).toBe(0);
    }
    expect(d.logs).toContainEqual(expect.objectContaining({ msg: "bus: subscriber admitted", client: k.client.publicKey }));
    expect(d.logs).toContainEqual(expect.objectContaining({ msg: "bus: subscriber refused", client: other.publicKey, reason: "client key not allowed" }));
  });

  it("the vehicle config's way: subscribers admitted from a folder of their public .key files (allowedClientKeysDir), nobody else", async () => {
    const k = await keyFiles();
    const clients = join(k.dir, "clients");
    await mkdir(clients);
    await copyFile(k.client.publicFile, join(clients, "planner.key"));
    const other = await writeKeyPair(k.dir, "other");
    const { d, port } = await startDaemon((p) => ({
      bus: { endpoints: [`tcp://127.0.0.1:${p}`], curve: { enabled: true, serverSecretKeyFile: k.server.secretFile, allowedClientKeysDir: clients } },
    }));
    const ep = `tcp://127.0.0.1:${port}`;
    const allowed = perceptd(["listen", "-e", ep, "-t", "detections", "--json", "-n", "2", "--curve-server-key", k.server.publicFile, "--curve-key-file", k.client.secretFile]);
    const notListed = perceptd(["listen", "-e", ep, "-t", "detections", "--json", "--curve-server-key", k.server.publicKey, "--curve-key-file", other.secretFile]);
    expect(await allowed.exited, allowed.stderr()).toBe(0);
    expect(parse(allowed.lines.filter(isDetections)).map((m) => m.e2e)).toEqual(["OK", "OK"]);
    await new Promise((r) => setTimeout(r, 1000));
    expect(notListed.lines.filter(isDetections), "detections received with a key not in the folder").toEqual([]);
    notListed.child.kill("SIGTERM");
    expect(await notListed.exited).toBe(0);
    expect(d.logs).toContainEqual(expect.objectContaining({ msg: "bus: subscriber refused", client: other.publicKey, reason: "client key not allowed" }));
  });

  it("the daemon refuses to start while allowedClientKeysDir holds no key, or holds a secret key", async () => {
    const k = await keyFiles();
    const clients = join(k.dir, "clients");
    await mkdir(clients);
    const port = await freePort();
    const config = await writeConfig({
      ...baseConfig(port, { type: "testsrc" }),
      bus: { endpoints: [`tcp://127.0.0.1:${port}`], curve: { enabled: true, serverSecretKeyFile: k.server.secretFile, allowedClientKeysDir: clients } },
    });
    const empty = runDaemon(["run", "--config", config]);
    expect(await empty.exited).toBe(1);
    expect(empty.stderr()).toContain(`bus.curve.allowedClientKeysDir (${clients}) holds no NAME.key file: no subscriber could connect`);
    await copyFile(k.client.secretFile, join(clients, "client.key_secret"));
    const secret = runDaemon(["run", "--config", config]);
    expect(await secret.exited).toBe(1);
    expect(secret.stderr()).toContain(`bus.curve.allowedClientKeysDir ${clients}: holds a secret key file (client.key_secret)`);
  });

  it("names the missing keys when the config it reads has CURVE on", async () => {
    const k = await keyFiles();
    const port = await freePort();
    const config = await writeConfig({
      ...baseConfig(port, { type: "testsrc" }),
      bus: { endpoints: [`tcp://0.0.0.0:${port}`], curve: { enabled: true, serverSecretKeyFile: k.server.secretFile, allowedClientKeys: [k.client.publicKey] } },
    });
    const cli = perceptd(["listen", "--config", config]);
    expect(await cli.exited).toBe(1);
    expect(cli.stderr()).toMatch(/turns CURVE on \(bus\.curve\.enabled\): pass --curve-server-key .* and --curve-key-file/);
  });

  it("refuses a subscriber key file others can read", async () => {
    const k = await keyFiles();
    await chmod(k.client.secretFile, 0o644);
    const cli = perceptd(["listen", "-e", "tcp://127.0.0.1:1", "--curve-server-key", k.server.publicFile, "--curve-key-file", k.client.secretFile]);
    expect(await cli.exited).toBe(1);
    expect(cli.stderr()).toContain(`--curve-key-file ${k.client.secretFile} has mode 0644: group or others may read or change the secret key; run chmod 600`);
  });

  it("the daemon refuses to start with a server key file others can read, naming it and its mode", async () => {
    const k = await keyFiles();
    await chmod(k.server.secretFile, 0o640);
    const port = await freePort();
    const config = await writeConfig({
      ...baseConfig(port, { type: "testsrc" }),
      bus: { endpoints: [`tcp://127.0.0.1:${port}`], curve: { enabled: true, serverSecretKeyFile: k.server.secretFile, allowedClientKeys: [k.client.publicKey] } },
    });
    const d = runDaemon(["run", "--config", config]);
    expect(await d.exited).toBe(1);
    expect(d.stderr()).toContain(`bus.curve.serverSecretKeyFile ${k.server.secretFile} has mode 0640`);
  });
});
