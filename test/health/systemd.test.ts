import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  SystemdNotifier,
  WatchdogFeeder,
  nativeTransport,
  parseNotifySocket,
  shouldFeedWatchdog,
  watchdogIntervalMs,
  type NotifyTransport,
} from "../../src/health/systemd.ts";
import { PYTHON, startNotifyListener, type NotifyListener } from "../../src/soak/notify-socket.ts";

function recording(): NotifyTransport & { sent: string[] } {
  const sent: string[] = [];
  return { sent, send: (m) => void sent.push(m) };
}

describe("parseNotifySocket", () => {
  it("reads path and abstract sockets, and nothing when unset", () => {
    expect(parseNotifySocket(undefined)).toBeNull();
    expect(parseNotifySocket("")).toBeNull();
    expect(parseNotifySocket("/run/systemd/notify")).toEqual({ kind: "path", path: "/run/systemd/notify" });
    expect(parseNotifySocket("@/org/freedesktop/systemd1/notify/123")).toEqual({ kind: "abstract", name: "/org/freedesktop/systemd1/notify/123" });
  });

  it("rejects what systemd would never set", () => {
    expect(() => parseNotifySocket("relative/notify")).toThrow(/expected an absolute socket path or @abstract-name/);
    expect(() => parseNotifySocket("@")).toThrow(RangeError);
  });
});

describe("watchdogIntervalMs", () => {
  it("is half of WATCHDOG_USEC, in ms", () => {
    expect(watchdogIntervalMs({ WATCHDOG_USEC: "10000000" }, 42)).toBe(5000);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: "3000" }, 42)).toBe(1.5);
  });

  it("is null when no pings are expected or the value is not a positive integer", () => {
    expect(watchdogIntervalMs({}, 42)).toBeNull();
    expect(watchdogIntervalMs({ WATCHDOG_USEC: "0" }, 42)).toBeNull();
    expect(watchdogIntervalMs({ WATCHDOG_USEC: "-5" }, 42)).toBeNull();
    expect(watchdogIntervalMs({ WATCHDOG_USEC: "5s" }, 42)).toBeNull();
    expect(watchdogIntervalMs({ WATCHDOG_USEC: "99999999999999999999" }, 42)).toBeNull();
  });

  it("honours WATCHDOG_PID: the pings are for that process only", () => {
    expect(watchdogIntervalMs({ WATCHDOG_USEC: "2000000", WATCHDOG_PID: "42" }, 42)).toBe(1000);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: "2000000", WATCHDOG_PID: "41" }, 42)).toBeNull();
  });
});

describe("SystemdNotifier", () => {
  it("is a silent no-op when NOTIFY_SOCKET is unset", () => {
    const t = recording();
    const n = SystemdNotifier.fromEnv({ env: { WATCHDOG_USEC: "1000000" }, transport: t });
    expect(n.enabled).toBe(false);
    expect(n.watchdogMs).toBeNull();
    expect(n.ready("up")).toBe(false);
    expect(n.watchdog()).toBe(false);
    expect(t.sent).toEqual([]);
  });

  it("refuses to run under Type=notify without a way to notify", () => {
    expect(() => SystemdNotifier.fromEnv({ env: { NOTIFY_SOCKET: "/run/systemd/notify" }, transport: null })).toThrow(/sd-notify native module is not available/);
  });

  it("sends one datagram per call, fields in order, values on one line", () => {
    const t = recording();
    const n = SystemdNotifier.fromEnv({ env: { NOTIFY_SOCKET: "@x", WATCHDOG_USEC: "4000000" }, pid: 1, transport: t });
    expect(n.enabled).toBe(true);
    expect(n.watchdogMs).toBe(2000);
    n.ready("ok");
    n.status("degraded: camera_stall (front)\nREADY=1");
    n.extendTimeout(90_000);
    n.stopping();
    expect(t.sent).toEqual(["READY=1\nSTATUS=ok", "STATUS=degraded: camera_stall (front) READY=1", "EXTEND_TIMEOUT_USEC=90000000", "STOPPING=1"]);
    expect(() => n.notify({ "bad key": 1 })).toThrow(RangeError);
    expect(() => n.notify({})).toThrow(RangeError);
  });

  it("has no watchdog interval when the config turns it off", () => {
    const n = SystemdNotifier.fromEnv({ env: { NOTIFY_SOCKET: "@x", WATCHDOG_USEC: "4000000" }, transport: recording(), watchdog: false });
    expect(n.watchdogMs).toBeNull();
  });
});

describe("WatchdogFeeder", () => {
  it("pings at the interval while not FAULT, withholds pings while FAULT", () => {
    const t = recording();
    const clock = { t: 0 };
    const n = SystemdNotifier.fromEnv({ env: { NOTIFY_SOCKET: "@x", WATCHDOG_USEC: "2000000" }, pid: 1, transport: t });
    const f = new WatchdogFeeder(n, { clock: () => clock.t });
    expect(f.intervalMs).toBe(1000);
    expect(f.feed("starting")).toBe("fed");
    clock.t = 999;
    expect(f.feed("ok")).toBe("idle");
    clock.t = 1000;
    expect(f.feed("degraded")).toBe("fed");
    clock.t = 2100;
    expect(f.feed("fault")).toBe("withheld");
    clock.t = 2200;
    expect(f.feed("fault")).toBe("withheld");
    clock.t = 2300;
    expect(f.feed("stopping")).toBe("fed");
    expect(t.sent).toEqual(["WATCHDOG=1", "WATCHDOG=1", "WATCHDOG=1"]);
    expect([f.fed, f.withheld]).toEqual([3, 2]);
    expect(["starting", "ok", "degraded", "stopping"].every((s) => shouldFeedWatchdog(s as "ok"))).toBe(true);
    expect(shouldFeedWatchdog("fault")).toBe(false);
  });

  it("does nothing without a watchdog", () => {
    const t = recording();
    const f = new WatchdogFeeder(SystemdNotifier.fromEnv({ env: { NOTIFY_SOCKET: "@x" }, transport: t }));
    expect(f.intervalMs).toBeNull();
    expect(f.feed("ok")).toBe("idle");
    f.start(() => "ok");
    f.stop();
    expect(t.sent).toEqual([]);
  });
});

// The real thing: libsystemd's sd_notify() (the sd-notify package) sending to a socket
// bound the way systemd binds NOTIFY_SOCKET. sd_notify() reads process.env, so the test
// sets it there.
describe.skipIf(PYTHON === null)("sd_notify datagrams on a real NOTIFY_SOCKET", () => {
  let saved: Record<string, string | undefined>;
  let listener: NotifyListener | undefined;
  let dir: string | undefined;

  beforeEach(() => {
    saved = { NOTIFY_SOCKET: process.env.NOTIFY_SOCKET, WATCHDOG_USEC: process.env.WATCHDOG_USEC, WATCHDOG_PID: process.env.WATCHDOG_PID };
  });

  afterEach(async () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await listener?.close();
    listener = undefined;
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it("the native transport is built (libsystemd-dev and sd-notify, see scripts/setup.sh)", () => {
    expect(nativeTransport(), "sd-notify did not load: apt-get install libsystemd-dev && npm rebuild sd-notify").not.toBeNull();
  });

  async function exercise(address: string): Promise<void> {
    listener = await startNotifyListener(address);
    process.env.NOTIFY_SOCKET = address;
    process.env.WATCHDOG_USEC = "2000000";
    process.env.WATCHDOG_PID = String(process.pid);
    const n = SystemdNotifier.fromEnv();
    expect(n.enabled).toBe(true);
    expect(n.watchdogMs).toBe(1000);
    const clock = { t: 0 };
    const f = new WatchdogFeeder(n, { clock: () => clock.t });

    n.ready("ok");
    f.feed("ok");
    clock.t = 1000;
    f.feed("fault"); // withheld: no datagram
    n.status("fault: inference_hang (worker:shared)\nREADY=1");
    clock.t = 1500;
    f.feed("degraded");
    n.stopping("stopping: signal");

    expect(await listener.waitFor(5)).toEqual([
      "READY=1\nSTATUS=ok",
      "WATCHDOG=1",
      "STATUS=fault: inference_hang (worker:shared) READY=1",
      "WATCHDOG=1",
      "STOPPING=1\nSTATUS=stopping: signal",
    ]);
    // Nothing else trickles in afterwards.
    await new Promise((r) => setTimeout(r, 100));
    expect(listener.received).toHaveLength(5);
  }

  it("reaches a path socket", async () => {
    dir = await mkdtemp(join(tmpdir(), "perceptd-notify-"));
    await exercise(join(dir, "notify"));
  });

  it("reaches an abstract socket (@name)", async () => {
    await exercise(`@perceptd-test-${process.pid}-${Math.random().toString(36).slice(2)}`);
  });

  it("sends nothing once NOTIFY_SOCKET is unset", async () => {
    const address = `@perceptd-test-${process.pid}-${Math.random().toString(36).slice(2)}`;
    listener = await startNotifyListener(address);
    delete process.env.NOTIFY_SOCKET;
    const n = SystemdNotifier.fromEnv();
    expect(n.ready()).toBe(false);
    // Even the raw transport sends nothing: libsystemd itself finds no socket.
    nativeTransport()?.send("READY=1");
    await new Promise((r) => setTimeout(r, 200));
    expect(listener.received).toEqual([]);
  });
});
