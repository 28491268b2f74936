// bin/perceptd.js, the installed command, as a shell pipeline runs it.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, realpathSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { connect } from "node:net";
import { dirname, join, resolve } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { projectRuntime } from "../../bin/runtime.js";
import { baseConfig, freePort, removeConfig, writeConfig } from "../daemon/harness.ts";

describe("bin/perceptd.js", () => {
  it("ends quietly with status 0 when the reader of its stdout goes away (perceptd run --help | head -1)", async () => {
    const child = spawn(process.execPath, ["bin/perceptd.js", "run", "--help"], { stdio: ["ignore", "pipe", "pipe"] });
    // Closed before the CLI has started, so its first write meets a pipe nobody reads.
    child.stdout.destroy();
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on("close", (c) => resolve(c)));
    expect(stderr, "no stack trace on stderr").not.toMatch(/EPIPE|Error/);
    expect(code, `exit status; stderr: ${stderr}`).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------
// The runtime it runs on, and SIGUSR1 (Node opens its inspector on it unless told not to).

const REPO = resolve(import.meta.dirname, "../..");
const RUNTIME = projectRuntime(REPO);
/** Another node on this machine (Debian 12's system Node 20), when there is one. */
const SYSTEM_NODE = ["/usr/bin/node", "/usr/local/bin/node"].find((p) => existsSync(p) && (RUNTIME === null || realpathSync(p) !== realpathSync(RUNTIME)));

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Started {
  child: ChildProcess;
  logs: Record<string, unknown>[];
  stderr: () => string;
  exited: Promise<number | string>;
}

/** `cmd args` from the repository root with JSON logs collected; killed after the test. */
function startCli(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Started {
  const child = spawn(cmd, args, { cwd: REPO, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  const logs: Record<string, unknown>[] = [];
  let err = "";
  let buf = "";
  child.stdout!.setEncoding("utf8").on("data", (s: string) => {
    buf += s;
    const lines = buf.split("\n");
    buf = lines.pop() ?? "";
    for (const l of lines) {
      try {
        logs.push(JSON.parse(l) as Record<string, unknown>);
      } catch {
        // not a log line
      }
    }
  });
  child.stderr!.setEncoding("utf8").on("data", (s: string) => (err += s));
  const exited = new Promise<number | string>((r) => child.on("exit", (c, s) => r(c ?? s ?? -1)));
  cleanups.push(() => child.exitCode === null && child.signalCode === null && child.kill("SIGKILL"));
  return { child, logs, stderr: () => err, exited };
}

async function waitFor(pred: () => boolean, ms: number, what: () => string): Promise<void> {
  const deadline = performance.now() + ms;
  while (!pred()) {
    if (performance.now() > deadline) throw new Error(`not within ${ms} ms: ${what()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function listening(port: number): Promise<boolean> {
  return new Promise((res) => {
    const c = connect({ host: "127.0.0.1", port });
    c.once("connect", () => (c.destroy(), res(true)));
    c.once("error", () => res(false));
  });
}

async function demoConfig(): Promise<string> {
  return writeConfig(baseConfig(await freePort(), { type: "testsrc", pattern: "ball", width: 160, height: 120, framerate: 5 }, { metrics: { enabled: false } }));
}

const ways: [string, () => [string, string[]]][] = [
  ["run directly (the shell line execs the runtime)", () => [join(REPO, "bin/perceptd.js"), []]],
  ["started as `node bin/perceptd.js` by the runtime without the flag", () => [RUNTIME ?? process.execPath, [join(REPO, "bin/perceptd.js")]]],
  ...(SYSTEM_NODE === undefined ? [] : [["started by the system's node", () => [SYSTEM_NODE, [join(REPO, "bin/perceptd.js")]]] as [string, () => [string, string[]]]]),
];

describe("the runtime bin/perceptd.js runs on", () => {
  it.each(ways)("%s: the daemon runs on the project's runtime, and SIGUSR1 opens no inspector", async (_what, how) => {
    const [cmd, pre] = how();
    const config = await demoConfig();
    cleanups.push(() => removeConfig(config));
    const inspectPort = await freePort();
    // The port the inspector would open on, so the test can look there.
    const d = startCli(cmd, [...pre, "run", "--config", config], { NODE_OPTIONS: `--inspect-port=127.0.0.1:${inspectPort}`, UV_THREADPOOL_SIZE: undefined });
    await waitFor(() => d.logs.some((l) => l.msg === "camera cam0: running"), 90_000, () => `camera running; stderr: ${d.stderr()}`);
    const starting = d.logs.find((l) => l.msg === "perceptd starting");
    if (RUNTIME !== null) expect(starting?.node, "the Node.js the daemon runs on").toBe(`v${(JSON.parse(await readFile(join(dirname(RUNTIME), "../package.json"), "utf8")) as { version: string }).version}`);

    for (const pid of pidsOf(d.child.pid!)) process.kill(pid, "SIGUSR1");
    await new Promise((r) => setTimeout(r, 1500));
    expect(await listening(inspectPort), `an inspector listens on ${inspectPort}; stderr: ${d.stderr()}`).toBe(false);
    expect(d.stderr()).not.toMatch(/Debugger listening/);
    expect(d.child.exitCode, "still running after SIGUSR1").toBeNull();

    // Signals reach the daemon, and its exit status comes back.
    d.child.kill("SIGTERM");
    expect(await d.exited, `exit; stderr: ${d.stderr()}`).toBe(0);
    expect(d.logs.some((l) => l.msg === "stopped")).toBe(true);
  });

  it.skipIf(SYSTEM_NODE === undefined)("started by the system's node: argv and exit status pass through (exit 78 for a bad config)", async () => {
    const d = startCli(SYSTEM_NODE!, [join(REPO, "bin/perceptd.js"), "run", "--config", "/nonexistent/perceptd.yaml"]);
    expect(await d.exited).toBe(78);
    expect(d.stderr()).toContain("/nonexistent/perceptd.yaml");
  });
});

describe("the daemon started through the wrapper", () => {
  it.skipIf(SYSTEM_NODE === undefined)("stops by itself when the wrapper is SIGKILLed, instead of living on orphaned with its ports", async () => {
    const config = await demoConfig();
    cleanups.push(() => removeConfig(config));
    const d = startCli(SYSTEM_NODE!, [join(REPO, "bin/perceptd.js"), "run", "--config", config], { UV_THREADPOOL_SIZE: undefined });
    await waitFor(() => d.logs.some((l) => l.msg === "camera cam0: running"), 90_000, () => `camera running; stderr: ${d.stderr()}`);
    const daemons = pidsOf(d.child.pid!).filter((p) => p !== d.child.pid);
    expect(daemons.length, "bin/ ran the daemon in a child of the wrapper").toBeGreaterThan(0);
    cleanups.push(() => daemons.forEach((p) => alive(p) && process.kill(p, "SIGKILL")));

    d.child.kill("SIGKILL");
    await waitFor(() => !daemons.some(alive), 30_000, () => `daemon processes ${daemons.filter(alive).join(", ")} still running after their wrapper was killed`);
    expect(d.logs.some((l) => l.msg === "stopped"), "an orderly stop, not a crash").toBe(true);
  });
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The process and its descendants (bin/ may run the daemon in a child). */
function pidsOf(pid: number): number[] {
  const out = spawnSync("ps", ["-e", "-o", "pid=,ppid="], { encoding: "utf8" }).stdout;
  const rows = out.trim().split("\n").map((l) => l.trim().split(/\s+/).map(Number));
  const all = [pid];
  for (let i = 0; i < all.length; i++) for (const [p, pp] of rows) if (pp === all[i] && !all.includes(p)) all.push(p);
  return all;
}
